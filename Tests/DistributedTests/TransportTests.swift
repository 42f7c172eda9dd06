import Distributed
import Foundation
import TensorCore
import Training
import XCTest

struct DeadlineExceeded: Error, CustomStringConvertible {
    let what: String
    var description: String { "deadline exceeded: \(what)" }
}

/// Runs `body`, failing with `DeadlineExceeded` if it takes longer than `seconds` (waiting on a
/// socket's events is cancelled then, so nothing hangs).
func withDeadline<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T)
    async throws -> T
{
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded(what: what) }
        return value
    }
}

struct UnexpectedEvent: Error, CustomStringConvertible {
    let description: String
}

/// The next message on a socket thread's event stream.
func nextMessage(_ events: inout AsyncStream<SocketEvent>.Iterator) async throws -> ReceivedMessage {
    guard let event = await events.next() else { throw UnexpectedEvent(description: "event stream ended") }
    guard case .message(let message) = event else {
        throw UnexpectedEvent(description: "expected a message, got \(event)")
    }
    return message
}

/// Stops the socket threads on another thread and fails (instead of hanging) if that takes longer
/// than `seconds`. Returns the time it took.
@discardableResult
func assertStops(_ sockets: [SocketThread], within seconds: Double, file: StaticString = #filePath, line: UInt = #line)
    -> Double
{
    let done = DispatchSemaphore(value: 0)
    let started = DispatchTime.now()
    DispatchQueue.global().async {
        for socket in sockets { socket.stop() }
        done.signal()
    }
    if done.wait(timeout: started + seconds) == .timedOut {
        XCTFail("stop() did not return within \(seconds) s", file: file, line: line)
        return .infinity
    }
    return Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
}

func uniqueIPCEndpoint(_ tag: String) -> String {
    "ipc:///tmp/swift-transformer-test-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max))"
}

final class TransportTests: XCTestCase {
    // MARK: Handshake

    private func handshake(endpoint: String, context: ZMQContext? = nil) async throws {
        let router = try SocketThread(.router(bind: endpoint), context: context)
        defer { router.stop() }
        let dealer = try SocketThread(
            .dealer(connect: router.endpoint, routingID: PeerID("worker-7")), context: context)
        defer { dealer.stop() }
        try await withDeadline(5, "hello -> welcome over \(endpoint)") {
            var routerEvents = router.events.makeAsyncIterator()
            var dealerEvents = dealer.events.makeAsyncIterator()
            let hello = Hello(configHash: "1a2b", tokenizerHash: "3c4d", name: "w7", threads: 1)
            XCTAssertTrue(dealer.send(.hello(hello)))
            let request = try await nextMessage(&routerEvents)
            XCTAssertEqual(request.peer, PeerID("worker-7"))
            guard case .hello(let received) = try request.decoded() else {
                throw UnexpectedEvent(description: "not a hello")
            }
            XCTAssertEqual(received, hello)
            let welcome = Welcome(rank: 1, worldSize: 2, step: 10, dataCursor: 40)
            guard let peer = request.peer else { throw UnexpectedEvent(description: "no peer") }
            XCTAssertTrue(router.send(.welcome(welcome), to: peer))
            let reply = try await nextMessage(&dealerEvents)
            XCTAssertNil(reply.peer)
            guard case .welcome(let back) = try reply.decoded() else {
                throw UnexpectedEvent(description: "not a welcome")
            }
            XCTAssertEqual(back, welcome)
        }
        // Counters are final once the threads have stopped (a send is counted after libzmq took it).
        assertStops([router, dealer], within: 2)
        XCTAssertEqual(router.statistics.messagesReceived, 1)
        XCTAssertEqual(router.statistics.messagesSent, 1)
        XCTAssertEqual(dealer.statistics.messagesSent, 1)
        XCTAssertEqual(dealer.statistics.messagesReceived, 1)
        XCTAssertEqual(dealer.statistics.bytesSent, router.statistics.bytesReceived)
        XCTAssertEqual(router.statistics.bytesSent, dealer.statistics.bytesReceived)
    }

    func testHelloWelcomeOverTCP() async throws {
        try await handshake(endpoint: "tcp://127.0.0.1:*")
    }

    func testHelloWelcomeOverIPC() async throws {
        try await handshake(endpoint: uniqueIPCEndpoint("handshake"))
    }

    func testHelloWelcomeOverInprocWithSharedContext() async throws {
        try await handshake(endpoint: "inproc://handshake", context: ZMQContext())
    }

    func testRouterResolvesWildcardPort() throws {
        let router = try SocketThread(.router(bind: "tcp://127.0.0.1:*"))
        defer { router.stop() }
        XCTAssertTrue(router.endpoint.hasPrefix("tcp://127.0.0.1:"))
        let port = Int(router.endpoint.dropFirst("tcp://127.0.0.1:".count)) ?? 0
        XCTAssertGreaterThan(port, 0)
    }

    // MARK: Errors

    func testBindingAnEndpointInUseIsAClearError() throws {
        let first = try SocketThread(.router(bind: "tcp://127.0.0.1:*"))
        defer { first.stop() }
        XCTAssertThrowsError(try SocketThread(.router(bind: first.endpoint))) { error in
            XCTAssertEqual("\(error)", "cannot bind \(first.endpoint): Address already in use")
            XCTAssertTrue((error as? TransportError)?.isAddressInUse ?? false)
        }
        let ipc = uniqueIPCEndpoint("busy")
        let owner = try SocketThread(.router(bind: ipc))
        defer { owner.stop() }
        XCTAssertThrowsError(try SocketThread(.router(bind: ipc))) { error in
            XCTAssertEqual("\(error)", "cannot bind \(ipc): Address already in use")
        }
    }

    func testMalformedEndpointsAreClearErrors() {
        XCTAssertThrowsError(try SocketThread(.dealer(connect: "tcp://no-port-here"))) { error in
            XCTAssertEqual("\(error)", "cannot connect to tcp://no-port-here: Invalid argument")
        }
        XCTAssertThrowsError(try SocketThread(.router(bind: "carrier-pigeon://roof"))) { error in
            XCTAssertEqual("\(error)", "cannot bind carrier-pigeon://roof: Protocol not supported")
        }
        XCTAssertThrowsError(try SocketThread(.dealer(connect: "tcp://127.0.0.1:1", routingID: PeerID([0, 1])))) {
            error in
            XCTAssertEqual(
                "\(error)",
                "cannot set socket option ZMQ_ROUTING_ID: a routing id needs 1 to 255 bytes and must not start with a zero byte"
            )
        }
    }

    func testMessageToUnknownPeerIsReportedUndeliverable() async throws {
        let router = try SocketThread(.router(bind: "tcp://127.0.0.1:*"))
        defer { router.stop() }
        XCTAssertTrue(router.send(.shutdown(reason: "bye"), to: PeerID("ghost")))
        XCTAssertTrue(router.send(.shutdown(reason: "no peer")))
        try await withDeadline(5, "undeliverable events") {
            var events = router.events.makeAsyncIterator()
            guard case .undeliverable(let peer, let error) = await events.next() else {
                throw UnexpectedEvent(description: "expected undeliverable")
            }
            XCTAssertEqual(peer, PeerID("ghost"))
            XCTAssertEqual("\(error)", "peer ghost is not connected")
            guard case .undeliverable(nil, .missingPeer) = await events.next() else {
                throw UnexpectedEvent(description: "expected missingPeer")
            }
        }
    }

    // MARK: Shutdown

    func testStopWithMessagesInFlightReturnsAndReleasesFrames() async throws {
        // Nobody listens on the port: the DEALER queues up to its high-water mark inside libzmq
        // and the rest waits in the socket thread's own queue.
        let port = try SocketThread(.router(bind: "tcp://127.0.0.1:*"))
        let endpoint = port.endpoint
        port.stop()
        var options = SocketOptions()
        options.sendHighWaterMark = 4
        let dealer = try SocketThread(.dealer(connect: endpoint), options: options)
        var frame = Frame(byteCount: 4 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 7) }
        for _ in 0..<100 { XCTAssertTrue(dealer.send([Frame([1]), frame])) }
        try await Task.sleep(nanoseconds: 20_000_000)
        assertStops([dealer], within: 2)
        assertStops([dealer], within: 1)  // idempotent
        XCTAssertFalse(dealer.send([Frame([1])]))  // refused after stop
        // Every reference libzmq and the queue took has been given back.
        XCTAssertTrue(isKnownUniquelyReferenced(&frame))
        try await withDeadline(2, "event stream finishes after stop") {
            for await _ in dealer.events {}
        }
    }

    func testStopWhileTransferringDoesNotHang() async throws {
        let router = try SocketThread(.router(bind: "tcp://127.0.0.1:*"))
        let dealer = try SocketThread(.dealer(connect: router.endpoint))
        dealer.send(.heartbeat(Heartbeat(step: 0, rank: 0, nanoseconds: 0)))
        let peer = try await withDeadline(5, "first heartbeat") {
            var events = router.events.makeAsyncIterator()
            return try await nextMessage(&events).peer
        }
        let frame = Frame(byteCount: 4 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
        for _ in 0..<64 { router.send([Frame([2]), frame], to: peer) }
        for _ in 0..<64 { dealer.send([Frame([3]), frame]) }
        assertStops([router, dealer], within: 2)
    }

    func testDiscardQueuedDropsMessagesWaitingForAStalledPeer() async throws {
        var options = SocketOptions()
        options.sendHighWaterMark = 1
        let router = try SocketThread(.router(bind: "tcp://127.0.0.1:*"), options: options)
        // A peer that stops reading: a bare DEALER nobody polls, with a queue of one message.
        let stalled = try ZMQSocket(.dealer, context: ZMQContext())
        var stalledOptions = SocketOptions()
        stalledOptions.receiveHighWaterMark = 1
        try stalled.apply(stalledOptions)
        try stalled.connect(router.endpoint)
        XCTAssertEqual(try stalled.send([Frame([1])]), .sent)
        let peer = try await withDeadline(5, "stalled peer says hello") {
            var events = router.events.makeAsyncIterator()
            return try await nextMessage(&events).peer
        }
        let big = Frame(byteCount: 4 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        for i in 0..<100 { router.send([Frame([UInt8(i)]), big], to: peer) }
        try await Task.sleep(nanoseconds: 50_000_000)
        if let peer { router.discardQueued(for: peer) }
        try await Task.sleep(nanoseconds: 20_000_000)
        var received: [UInt8] = []
        while try stalled.poll(timeoutMilliseconds: 300).socket, let message = try stalled.receive() {
            received.append(message.frames[0].bytes[0])
        }
        // What libzmq and the kernel had already taken arrives, in order; the rest was dropped.
        XCTAssertGreaterThan(received.count, 0)
        XCTAssertLessThan(received.count, 50)
        XCTAssertEqual(received, Array(0..<UInt8(received.count)))
        assertStops([router], within: 2)
    }

    // MARK: Arena transfer

    private enum Direction: String { case weights, gradients }

    /// 64 MiB of Float32 with varied bit patterns: finite, both signs, within Float16's normal range.
    private static func fillArena(_ buffer: FloatBuffer) {
        let p = buffer.pointer
        for i in 0..<buffer.count {
            let bits = UInt32(truncatingIfNeeded: i &* 2_654_435_761)
            p[i] = Float(bitPattern: 0x3C00_0000 | (bits & 0x07FF_FFFF) | (UInt32(i & 1) << 31))
        }
    }

    /// Sends a 64 MiB arena in 4 MiB buckets (coordinator -> worker for weights, worker ->
    /// coordinator for gradients), reassembles it, checks it and returns the best seconds of `repeats`.
    private func transferArena(
        over endpoint: String, _ elementType: TensorElementType, _ direction: Direction,
        repeats: Int = 2
    ) async throws -> Double {
        let router = try SocketThread(.router(bind: endpoint))
        defer { router.stop() }
        let dealer = try SocketThread(.dealer(connect: router.endpoint))
        defer { dealer.stop() }
        return try await withDeadline(20, "64 MiB \(elementType) \(direction) over \(endpoint)") {
            var routerEvents = router.events.makeAsyncIterator()
            var dealerEvents = dealer.events.makeAsyncIterator()
            dealer.send(.heartbeat(Heartbeat(step: 0, rank: 1, nanoseconds: 0)))
            guard let peer = try await nextMessage(&routerEvents).peer else {
                throw UnexpectedEvent(description: "no peer")
            }

            let count = 16 << 20
            let source = FloatBuffer(count: count, zeroed: false)
            Self.fillArena(source)
            let plan = BucketPlan(elementCount: count)
            XCTAssertEqual(plan.bucketCount, 16)
            let pool = FramePool(frameCapacity: BucketPlan.defaultMaxBucketBytes, maxRetained: 32)
            let target = FloatBuffer(count: count)
            var best = Double.infinity
            for attempt in 0..<repeats {
                target.zero()
                let started = DispatchTime.now().uptimeNanoseconds
                for bucket in plan {
                    let tensor = TensorBucket(
                        step: attempt, rank: 1, node: TreeNode(start: 0, count: 1), bucket: bucket, of: plan,
                        from: source.pointer, as: elementType, pool: pool)
                    if direction == .weights {
                        router.send(.weights(tensor), to: peer)
                    } else {
                        dealer.send(.gradients(tensor))
                    }
                }
                for _ in 0..<plan.bucketCount {
                    let message =
                        direction == .weights
                        ? try await nextMessage(&dealerEvents) : try await nextMessage(&routerEvents)
                    switch try message.decoded() {
                    case .weights(let bucket) where direction == .weights,
                        .gradients(let bucket) where direction == .gradients:
                        XCTAssertEqual(bucket.step, attempt)
                        try bucket.copyValues(into: target.pointer, arenaCount: count)
                    default: throw UnexpectedEvent(description: "unexpected message")
                    }
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }

            let bytes = count * 4
            switch elementType {
            case .float32:
                XCTAssertEqual(memcmp(source.pointer, target.pointer, bytes), 0, "F32 arena is reassembled bit-exactly")
            case .float16:
                let expected = FloatBuffer(count: count, zeroed: false)
                let half = [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if let base = buffer.baseAddress { Half.encode(source.pointer, base, count: count) }
                    initialized = count
                }
                half.withUnsafeBufferPointer {
                    if let base = $0.baseAddress { Half.decode(base, expected.pointer, count: count) }
                }
                XCTAssertEqual(
                    memcmp(expected.pointer, target.pointer, bytes), 0, "F16 arena equals the F16C round trip")
                var worst: Float = 0
                for i in stride(from: 0, to: count, by: 997) {
                    worst = max(worst, abs(target[i] - source[i]) / abs(source[i]))
                }
                XCTAssertLessThanOrEqual(worst, 1.0 / 2048, "within half-precision rounding (2^-11 relative)")
                XCTAssertGreaterThan(worst, 0, "values were actually rounded")
            }
            // Sent frames go back to the pool once libzmq has written them, and are reused.
            for _ in 0..<100 where pool.framesInUse > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
            XCTAssertEqual(pool.framesInUse, 0)
            XCTAssertGreaterThan(pool.idleCount, 0)
            XCTAssertLessThanOrEqual(pool.idleCount, plan.bucketCount * repeats)
            return best
        }
    }

    private func reportThroughput(_ transport: String, _ label: String, seconds: Double, wireBytes: Int) {
        let line = String(
            format: "transport throughput: %@ %@: 64 MiB arena in %.1f ms = %.2f GB/s of arena (%.2f GB/s on the wire)",
            transport, label, seconds * 1e3, Double(64 << 20) / seconds / 1e9, Double(wireBytes) / seconds / 1e9)
        print(line)
    }

    func testArenaOverTCP() async throws {
        let endpoint = "tcp://127.0.0.1:*"
        let w = try await transferArena(over: endpoint, .float32, .weights)
        reportThroughput("tcp", "F32 weights (ROUTER -> DEALER)", seconds: w, wireBytes: 64 << 20)
        let g = try await transferArena(over: endpoint, .float32, .gradients)
        reportThroughput("tcp", "F32 gradients (DEALER -> ROUTER)", seconds: g, wireBytes: 64 << 20)
        let h = try await transferArena(over: endpoint, .float16, .weights)
        reportThroughput("tcp", "F16 weights (ROUTER -> DEALER)", seconds: h, wireBytes: 32 << 20)
    }

    func testArenaOverIPC() async throws {
        let w = try await transferArena(over: uniqueIPCEndpoint("arena-w"), .float32, .weights)
        reportThroughput("ipc", "F32 weights (ROUTER -> DEALER)", seconds: w, wireBytes: 64 << 20)
        let g = try await transferArena(over: uniqueIPCEndpoint("arena-g"), .float32, .gradients)
        reportThroughput("ipc", "F32 gradients (DEALER -> ROUTER)", seconds: g, wireBytes: 64 << 20)
        let h = try await transferArena(over: uniqueIPCEndpoint("arena-h"), .float16, .gradients)
        reportThroughput("ipc", "F16 gradients (DEALER -> ROUTER)", seconds: h, wireBytes: 32 << 20)
    }
}
