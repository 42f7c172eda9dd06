import Distributed
import Foundation
import Synchronization
import XCTest

/// CURVE keys, allow lists, the ZAP handler's answers, and CURVE sockets in this process.
final class CurveTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "curve")
    }

    // MARK: Keys

    func testKeyPairWritesTwoFilesSecretOwnerOnlyAndRefusesToOverwrite() throws {
        let pair = try CurveKeyPair.generate()
        let base = dir.appendingPathComponent("keys/sub/w1").path  // missing directories are created
        let (publicPath, secretPath) = try pair.write(to: base)
        XCTAssertEqual(publicPath, base + ".public")
        XCTAssertEqual(try String(contentsOfFile: publicPath, encoding: .utf8), pair.publicKey.z85 + "\n")
        XCTAssertEqual(try String(contentsOfFile: secretPath, encoding: .utf8), pair.secretKey.z85 + "\n")
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try CurveKeyPair.load(secretFile: secretPath), pair)
        XCTAssertEqual(try CurveKeyPair.load(publicFile: publicPath), pair.publicKey)
        XCTAssertThrowsError(try CurveKeyPair.generate().write(to: base)) {
            XCTAssertEqual($0 as? CurveKeyError, .exists(path: base + ".public"))
        }
        // Either file existing is enough to refuse, and the other one is left alone.
        try FileManager.default.removeItem(atPath: publicPath)
        XCTAssertThrowsError(try CurveKeyPair.generate().write(to: base)) {
            XCTAssertEqual($0 as? CurveKeyError, .exists(path: base + ".secret"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: publicPath))
        XCTAssertEqual(try CurveKeyPair.load(secretFile: secretPath), pair)
    }

    func testThePublicKeyIsDerivedFromTheSecret() throws {
        let pair = try CurveKeyPair.generate()
        XCTAssertEqual(try CurveKeyPair(secret: pair.secretKey).publicKey, pair.publicKey)
        XCTAssertNotEqual(pair.publicKey, pair.secretKey)
        XCTAssertEqual(pair.publicKey.bytes.count, 32)
        XCTAssertFalse("\(pair)".contains(pair.secretKey.z85))
    }

    func testZ85KeysAreChecked() throws {
        let z85 = try CurveKeyPair.generate().publicKey.z85
        XCTAssertEqual(CurveKey(z85: z85)?.z85, z85)
        XCTAssertNil(CurveKey(z85: String(z85.dropLast())))  // 39 characters
        XCTAssertNil(CurveKey(z85: z85 + "0"))  // 41
        XCTAssertNil(CurveKey(z85: String(z85.dropLast()) + "~"))  // not in the alphabet
        XCTAssertNil(CurveKey(z85: String(z85.dropLast()) + " "))
        XCTAssertNil(CurveKey(bytes: [UInt8](repeating: 1, count: 31)))
        // The RFC 32 test vector: 8 bytes <-> "HelloWorld" (a key is the same code, 32 bytes).
        let vector = [UInt8]([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]) + [UInt8](repeating: 0, count: 24)
        XCTAssertTrue(try XCTUnwrap(CurveKey(bytes: vector)).z85.hasPrefix("HelloWorld"))
    }

    func testMalformedKeyFilesNameTheFile() throws {
        let key = try CurveKeyPair.generate().publicKey.z85
        for (name, contents) in [
            ("short", "abc\n"), ("two-lines", key + "\n" + key + "\n"), ("spaces", " " + key + "\n"),
            ("binary", String(repeating: "\u{1}", count: 40)), ("empty", ""),
        ] {
            let path = dir.appendingPathComponent(name + ".public").path
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try CurveKeyPair.load(publicFile: path), name) { error in
                guard case .malformed(let p, _)? = error as? CurveKeyError else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(p, path)
                XCTAssertTrue("\(error)".contains(path))
            }
        }
        let crlf = dir.appendingPathComponent("crlf.public").path
        try (key + "\r\n").write(toFile: crlf, atomically: true, encoding: .utf8)
        XCTAssertEqual(try CurveKeyPair.load(publicFile: crlf).z85, key)
        let missing = dir.appendingPathComponent("missing.public").path
        XCTAssertThrowsError(try CurveKeyPair.load(publicFile: missing)) { XCTAssertTrue("\($0)".contains(missing)) }
    }

    func testASecretOthersCanReadIsRefused() throws {
        let (_, secretPath) = try CurveKeyPair.generate().write(to: dir.appendingPathComponent("c").path)
        for mode in [0o640, 0o604, 0o644] {
            XCTAssertEqual(chmod(secretPath, mode_t(mode)), 0)
            XCTAssertThrowsError(try CurveKeyPair.load(secretFile: secretPath)) { error in
                XCTAssertEqual(error as? CurveKeyError, .unprotected(path: secretPath, mode: mode))
                XCTAssertTrue("\(error)".contains("chmod 600 \(secretPath)"), "\(error)")
            }
        }
        XCTAssertEqual(chmod(secretPath, 0o400), 0)
        XCTAssertNoThrow(try CurveKeyPair.load(secretFile: secretPath))
    }

    func testAllowListFromFileAndDirectory() throws {
        let keys = try (0..<3).map { _ in try CurveKeyPair.generate().publicKey }
        let file = dir.appendingPathComponent("allowed.txt").path
        try "# workers\n\(keys[0].z85)\n\n  \(keys[1].z85)  \r\n# \(keys[2].z85) (retired)\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try CurveAllowList.load(file).keys, [keys[0], keys[1]])

        let folder = dir.appendingPathComponent("workers")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (i, key) in keys.enumerated() {
            try (key.z85 + "\n").write(
                to: folder.appendingPathComponent("w\(i).public"), atomically: true, encoding: .utf8)
        }
        try "not a key".write(to: folder.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try CurveAllowList.load(folder.path).keys, Set(keys))

        try "\(keys[0].z85)\nnot-a-key\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CurveAllowList.load(file)) { error in
            guard case .malformed(let p, _)? = error as? CurveKeyError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, "\(file):2")
        }
        try "# nobody\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CurveAllowList.load(file)) {
            guard case .emptyAllowList? = $0 as? CurveKeyError else { return XCTFail("\($0)") }
        }
        let empty = dir.appendingPathComponent("none")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try CurveAllowList.load(empty.path)) {
            guard case .emptyAllowList? = $0 as? CurveKeyError else { return XCTFail("\($0)") }
        }
    }

    // MARK: Bind rule

    func testLoopbackRule() throws {
        for local in [
            "tcp://127.0.0.1:5555", "tcp://127.3.4.5:1", "tcp://localhost:5555", "tcp://[::1]:5555", "tcp://::1:5555",
            "ipc:///tmp/x", "inproc://x", "tcp://127.0.0.1:*",
        ] {
            XCTAssertTrue(BindSecurity.isLocal(local), local)
            XCTAssertNoThrow(try BindSecurity.check(bind: local, curve: false, insecure: false))
        }
        for remote in [
            "tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.1:5555", "tcp://eth0:5555", "tcp://[::]:5555",
            "tcp://128.0.0.1:5555", "tcp://127.0.0.1.example.com:5555", "tcp://1270.0.0.1:5", "tcp://127.0.0.256:5",
            "tcp://127.0.0.1;10.0.0.1:5555", "udp://127.0.0.1:5", "tcp://lo:5555",
        ] {
            XCTAssertFalse(BindSecurity.isLocal(remote), remote)
            XCTAssertThrowsError(try BindSecurity.check(bind: remote, curve: false, insecure: false)) {
                XCTAssertEqual($0 as? BindSecurityError, .insecure(endpoint: remote))
                XCTAssertTrue("\($0)".contains("--insecure") && "\($0)".contains("transformer keygen"))
            }
            XCTAssertNoThrow(try BindSecurity.check(bind: remote, curve: true, insecure: false))
            XCTAssertNoThrow(try BindSecurity.check(bind: remote, curve: false, insecure: true))
        }
    }

    // MARK: ZAP

    func testZAPAnswers() throws {
        let admitted = try CurveKeyPair.generate().publicKey, stranger = try CurveKeyPair.generate().publicKey
        let allowed = CurveAllowList(keys: [admitted])
        func request(domain: String = ZAPHandler.domain, mechanism: String = "CURVE", key: [UInt8]) -> [[UInt8]] {
            [
                Array("1.0".utf8), Array("7".utf8), Array(domain.utf8), Array("10.0.0.9".utf8), [],
                Array(mechanism.utf8), key,
            ]
        }
        func status(_ reply: [[UInt8]]) -> String { String(decoding: reply[2], as: UTF8.self) }

        let ok = ZAPHandler.answer(request(key: admitted.bytes), allowed: allowed)
        XCTAssertNil(ok.refusal)
        XCTAssertEqual(ok.reply.count, 6)
        XCTAssertEqual(ok.reply[0], Array("1.0".utf8))
        XCTAssertEqual(ok.reply[1], Array("7".utf8))  // the request id comes back
        XCTAssertEqual(status(ok.reply), "200")
        XCTAssertEqual(ok.reply[4], Array(admitted.z85.utf8))

        let no = ZAPHandler.answer(request(key: stranger.bytes), allowed: allowed)
        XCTAssertEqual(status(no.reply), "400")
        XCTAssertEqual(no.refusal?.publicKey, stranger)
        XCTAssertEqual(no.refusal?.address, "10.0.0.9")

        XCTAssertEqual(
            status(ZAPHandler.answer(request(domain: "other", key: admitted.bytes), allowed: allowed).reply), "400")
        XCTAssertEqual(
            status(ZAPHandler.answer(request(mechanism: "NULL", key: admitted.bytes), allowed: allowed).reply), "400")
        XCTAssertEqual(
            status(ZAPHandler.answer(request(key: Array(admitted.bytes.prefix(31))), allowed: allowed).reply), "400")
        XCTAssertEqual(
            status(ZAPHandler.answer(Array(request(key: admitted.bytes).prefix(5)), allowed: allowed).reply), "500")
        var wrongVersion = request(key: admitted.bytes)
        wrongVersion[0] = Array("2.0".utf8)
        XCTAssertEqual(status(ZAPHandler.answer(wrongVersion, allowed: allowed).reply), "500")
        XCTAssertEqual(ZAPHandler.answer([], allowed: allowed).reply.count, 6)
    }

    // MARK: Sockets

    func testCurveSocketsReportTheCurveMechanism() throws {
        let context = try ZMQContext()
        var options = SocketOptions()
        let server = try CurveKeyPair.generate(), client = try CurveKeyPair.generate()
        let plain = try ZMQSocket(.router, context: context)
        XCTAssertEqual(plain.mechanism, 0)  // ZMQ_NULL
        options.curve = .server(server)
        let router = try ZMQSocket(.router, context: context)
        try router.apply(options)
        XCTAssertEqual(router.mechanism, 2)  // ZMQ_CURVE
        options.curve = .client(client, serverPublicKey: server.publicKey)
        let dealer = try ZMQSocket(.dealer, context: context)
        try dealer.apply(options)
        XCTAssertEqual(dealer.mechanism, 2)
    }

    /// A listed worker talks; an unlisted one and one holding the wrong coordinator key get the
    /// typed errors, long before any timeout, and the refusal is logged once per key.
    func testAdmittedRefusedAndWrongServerKey() async throws {
        let coordinatorKeys = try CurveKeyPair.generate(), good = try CurveKeyPair.generate(),
            stranger = try CurveKeyPair.generate()
        let logged = LogLines()
        let (router, curveGuard) = try CoordinatorSocket.bind(
            "tcp://127.0.0.1:*",
            curve: CoordinatorCurve(
                keyPair: coordinatorKeys,
                allowedWorkers: CurveAllowList(keys: [good.publicKey])), context: nil, log: { logged.append($0) })
        defer {
            router.stop()
            curveGuard?.stop()
        }
        let endpoint = router.endpoint

        let admitted = try WorkerLink(
            endpoint: endpoint, routingID: PeerID("good"),
            curve: WorkerCurve(keyPair: good, coordinatorPublicKey: coordinatorKeys.publicKey), context: nil)
        defer { admitted.close() }
        admitted.socket.send([Frame(Array("hello".utf8))])
        let received = try await withDeadline(20, "the admitted worker's message") { [router] in
            var events = router.events.makeAsyncIterator()
            return try await nextMessage(&events)
        }
        XCTAssertEqual(received.frames.map(\.bytes), [Array("hello".utf8)])
        XCTAssertEqual(received.peer, PeerID("good"))

        let attempts: [(WorkerCurve?, String)] = [
            (WorkerCurve(keyPair: stranger, coordinatorPublicKey: coordinatorKeys.publicKey), "stranger"),
            (WorkerCurve(keyPair: good, coordinatorPublicKey: stranger.publicKey), "wrong server key"),
            (nil, "no CURVE"),
        ]
        for (curve, label) in attempts {
            let link = try WorkerLink(endpoint: endpoint, routingID: PeerID(label), curve: curve, context: nil)
            link.socket.send([Frame(Array("let me in".utf8))])
            // The monitor stops the socket on a definitive failure, which ends its events.
            try await withDeadline(30, "\(label): the handshake failure") {
                for await _ in link.socket.events {}
            }
            XCTAssertThrowsError(try link.checkHandshake(), label) { error in
                switch (label, error as? WorkerError) {
                case ("stranger", .curveKeyRefused(let key, let status)?):
                    XCTAssertEqual(key, stranger.publicKey.z85)
                    XCTAssertEqual(status, 400)
                case ("wrong server key", .curveHandshakeFailed(let e, let reason)?):
                    XCTAssertEqual(e, endpoint)
                    XCTAssertTrue(reason.contains("is --coordinator-public the coordinator's key?"), reason)
                case ("no CURVE", .curveHandshakeFailed(_, let reason)?):
                    XCTAssertTrue(reason.contains("the coordinator requires CURVE"), reason)
                default: XCTFail("\(label): \(error)")
                }
            }
            link.close()
        }
        let lines = logged.lines
        XCTAssertEqual(lines.filter { $0.contains(stranger.publicKey.z85) }.count, 1, "\(lines)")
        XCTAssertTrue(
            lines.contains {
                $0.contains("refused a worker at 127.0.0.1 with CURVE public key \(stranger.publicKey.z85)")
            }, "\(lines)")
        XCTAssertFalse(lines.contains { $0.contains(good.publicKey.z85) }, "\(lines)")
        // The handshakes that fail before ZAP are logged once per kind.
        XCTAssertEqual(
            lines.filter { $0.contains("cannot be decrypted (it holds another coordinator public key)") }.count, 1,
            "\(lines)")
        // (A NULL client's mismatch is not asserted here: libzmq does not always report it on the
        // server's side before the client has hung up; the client's side is checked above.)
        XCTAssertLessThanOrEqual(
            lines.filter { $0.contains("failed the CURVE handshake: it does not use CURVE") }.count, 1, "\(lines)")
        XCTAssertGreaterThanOrEqual(curveGuard?.zap.counts.refused ?? 0, 1)
        XCTAssertGreaterThanOrEqual(curveGuard?.zap.counts.admitted ?? 0, 1)
    }

    /// A CURVE worker meeting a coordinator without CURVE learns why at once.
    func testCurveWorkerAgainstAPlainCoordinator() async throws {
        let router = try SocketThread(.router(bind: "tcp://127.0.0.1:*"))
        defer { router.stop() }
        let keys = try CurveKeyPair.generate()
        let link = try WorkerLink(
            endpoint: router.endpoint, routingID: PeerID("w"),
            curve: WorkerCurve(keyPair: keys, coordinatorPublicKey: keys.publicKey), context: nil)
        defer { link.close() }
        try await withDeadline(30, "the mechanism mismatch") { for await _ in link.socket.events {} }
        XCTAssertThrowsError(try link.checkHandshake()) { error in
            guard case .curveHandshakeFailed(_, let reason)? = error as? WorkerError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("does not use CURVE"), reason)
        }
    }
}

/// Lines logged from another thread.
final class LogLines: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ line: String) { storage.withLock { $0.append(line) } }
    var lines: [String] { storage.withLock { $0 } }
}
