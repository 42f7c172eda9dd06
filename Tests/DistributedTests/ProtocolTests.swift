import Distributed
import TensorCore
import Training
import XCTest

final class ProtocolTests: XCTestCase {
    // MARK: Header layout

    func testHeaderBytesAtDocumentedOffsets() throws {
        var header = MessageHeader(kind: .gradients)
        header.payloadType = .float16
        header.flags = 0x0102_0304
        header.step = 0x0A0B
        header.rank = 3
        header.attempt = 2
        header.bucketIndex = 5
        header.bucketCount = 6
        header.elementOffset = 0x0100_0000
        header.elementCount = 7
        header.totalCount = 0x0200_0000
        header.values = (-1, 9, 10, 11)
        let bytes = header.encoded()
        XCTAssertEqual(bytes.count, 112)
        XCTAssertEqual(Array(bytes[0..<4]), Array("SWDT".utf8))
        XCTAssertEqual(Array(bytes[4..<8]), [1, 0, 6, 2])  // version 1, kind gradients, F16
        XCTAssertEqual(Array(bytes[8..<16]), [4, 3, 2, 1, 0, 0, 0, 0])
        XCTAssertEqual(Array(bytes[16..<24]), [0x0B, 0x0A, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(bytes[24], 3)
        XCTAssertEqual(bytes[32], 2)
        XCTAssertEqual(bytes[40], 5)
        XCTAssertEqual(bytes[48], 6)
        XCTAssertEqual(Array(bytes[56..<64]), [0, 0, 0, 1, 0, 0, 0, 0])
        XCTAssertEqual(bytes[64], 7)
        XCTAssertEqual(Array(bytes[72..<80]), [0, 0, 0, 2, 0, 0, 0, 0])
        XCTAssertEqual(Array(bytes[80..<88]), [UInt8](repeating: 0xFF, count: 8))
        XCTAssertEqual([bytes[88], bytes[96], bytes[104]], [9, 10, 11])
        let decoded = try bytes.withUnsafeBytes { try MessageHeader(decoding: $0) }
        XCTAssertEqual(decoded, header)
    }

    // MARK: Round trips

    private func roundTrip(_ message: WireMessage) throws -> WireMessage {
        try WireMessage(frames: message.frames())
    }

    func testHelloRoundTrip() throws {
        let hello = Hello(configHash: "1a2b\"3c\\", tokenizerHash: nil, name: "wörker\n\u{1}é", threads: 2)
        guard case .hello(let back) = try roundTrip(.hello(hello)) else { return XCTFail("not a hello") }
        XCTAssertEqual(back, hello)
        let frames = WireMessage.hello(hello).frames()
        XCTAssertEqual(frames.count, 2)
        XCTAssertEqual(
            String(decoding: frames[1].bytes, as: UTF8.self),
            #"{"config_hash":"1a2b\"3c\\","tokenizer_hash":null,"name":"wörker\n\u0001é","threads":2}"#)
    }

    func testWelcomeRoundTrip() throws {
        let welcome = Welcome(rank: 2, worldSize: 3, step: 60, dataCursor: 240, config: #"{"name": "copy"}"#)
        guard case .welcome(let back) = try roundTrip(.welcome(welcome)) else { return XCTFail("not a welcome") }
        XCTAssertEqual(back, welcome)
        guard case .welcome(let bare) = try roundTrip(.welcome(Welcome(rank: 0, worldSize: 1, step: 0, dataCursor: 0)))
        else {
            return XCTFail("not a welcome")
        }
        XCTAssertNil(bare.config)
    }

    func testTextMessagesRoundTrip() throws {
        let reason = "config hash differs: worker 1a2b, coordinator 3c4d"
        guard case .refuse(let back) = try roundTrip(.refuse(reason: reason)) else { return XCTFail("not a refuse") }
        XCTAssertEqual(back, reason)
        guard case .shutdown(let bye) = try roundTrip(.shutdown(reason: "")) else { return XCTFail("not a shutdown") }
        XCTAssertEqual(bye, "")
    }

    func testWorkRoundTrip() throws {
        let order = WorkOrder(
            step: 7, rank: 1, attempt: 1, gradientMultiplier: 1024, firstPosition: 6,
            microBatches: [28, 29, 3_000_000_000])
        guard case .work(let back) = try roundTrip(.work(order)) else { return XCTFail("not work") }
        XCTAssertEqual(back, order)
        let frames = WireMessage.work(order).frames()
        XCTAssertEqual(frames[1].bytes.count, 24)
        XCTAssertEqual(Array(frames[1].bytes[0..<8]), [28, 0, 0, 0, 0, 0, 0, 0])
    }

    func testValidationMessagesRoundTrip() throws {
        let order = ValidationOrder(step: 200, rank: 2, translating: true, units: [1, 4, 7])
        guard case .validate(let back) = try roundTrip(.validate(order)) else { return XCTFail("not validate") }
        XCTAssertEqual(back, order)
        let plain = ValidationOrder(step: 1, rank: 0, translating: false, units: [])
        guard case .validate(let plainBack) = try roundTrip(.validate(plain)) else { return XCTFail("not validate") }
        XCTAssertEqual(plainBack, plain)
        let loss = ValidationPartMessage(
            step: 200, rank: 2, unit: 4,
            part: .loss(LossStatistics(lossSum: 1.25, nllSum: -0.0, tokens: 900, correct: 870), exact: 120))
        guard case .validationPart(let lossBack) = try roundTrip(.validationPart(loss)) else {
            return XCTFail("not a part")
        }
        XCTAssertEqual(lossBack, loss)
        guard case .loss(let stats, _) = lossBack.part else { return XCTFail("not a loss part") }
        XCTAssertEqual(stats.nllSum.sign, .minus)  // bit pattern preserved
        let text = ValidationPartMessage(step: 3, rank: 0, unit: 9, part: .translations([[5, 6, Int32.max], [], [4]]))
        guard case .validationPart(let textBack) = try roundTrip(.validationPart(text)) else {
            return XCTFail("not a part")
        }
        XCTAssertEqual(textBack, text)
        // unit, tag, count, then each length and its ids.
        XCTAssertEqual(WireMessage.validationPart(text).frames()[1].bytes.count, 8 * (3 + 4 + 1 + 2))
    }

    func testMalformedValidationPartsAreRejected() {
        func part(_ words: [Int64]) -> [Frame] {
            var bytes: [UInt8] = []
            for w in words { withUnsafeBytes(of: w.littleEndian) { bytes += $0 } }
            return [
                header(.validationPart) {
                    $0.payloadType = .int64
                    $0.elementCount = Int64(words.count)
                }, Frame(bytes),
            ]
        }
        func field(_ name: String, _ value: Int64, _ reason: String) -> ProtocolError {
            .invalidField(kind: .validationPart, field: name, value: value, reason: reason)
        }
        assertRejected(part([0]), field("payload words", 1, "is fewer than 2 (unit, tag)"))
        assertRejected(part([-1, 0, 1, 1, 0, 0, 0]), field("unit", -1, "is negative"))
        assertRejected(part([0, 2]), field("tag", 2, "is neither 0 (loss chunk) nor 1 (translation batch)"))
        assertRejected(part([0, 0, 1, 1, 0, 0]), field("payload words", 6, "is not 7 for a loss chunk"))
        assertRejected(part([0, 0, -5, 1, 0, 0, 0]), field("tokens", -5, "is negative"))
        assertRejected(part([0, 1, 3, 1, 4]), field("translations", 3, "does not fit the payload"))
        assertRejected(part([0, 1, 1, 5, 4]), field("translation length", 5, "does not fit the payload"))
        assertRejected(part([0, 1, 2, 1, 4, 1]), field("translation length", 1, "does not fit the payload"))
        assertRejected(part([0, 1, 1, 1, 4, 9]), field("payload words", 6, "has 1 word(s) after the last translation"))
        assertRejected(part([0, 1, 1, 1, 1 << 40]), field("token id", 1 << 40, "is not a 32-bit token id"))
        assertRejected(
            [
                header(.validate) {
                    $0.payloadType = .int64
                    $0.elementCount = 1
                }, Frame([UInt8](repeating: 0xFF, count: 8)),
            ],
            .invalidField(kind: .validate, field: "unit", value: -1, reason: "is negative"))
    }

    func testStepStatsAndHeartbeatRoundTrip() throws {
        let stats = StepStatistics(
            step: 9, rank: 2, attempt: 1,
            loss: LossStatistics(lossSum: 1234.5678901234, nllSum: -0.0, tokens: 4096, correct: 4000), finite: true)
        guard case .stepStats(let back) = try roundTrip(.stepStats(stats)) else { return XCTFail("not stepStats") }
        XCTAssertEqual(back, stats)
        XCTAssertEqual(back.loss.nllSum.sign, .minus)  // bit pattern preserved
        let nan = StepStatistics(
            step: 1, rank: 0, loss: LossStatistics(lossSum: .nan, nllSum: .infinity, tokens: 1, correct: 0),
            finite: false)
        guard case .stepStats(let nanBack) = try roundTrip(.stepStats(nan)) else { return XCTFail("not stepStats") }
        XCTAssertTrue(nanBack.loss.lossSum.isNaN)
        XCTAssertEqual(nanBack.loss.nllSum, .infinity)
        XCTAssertFalse(nanBack.finite)
        XCTAssertEqual(WireMessage.stepStats(stats).frames().count, 1)

        let beat = Heartbeat(step: 5, rank: 1, nanoseconds: UInt64.max - 1)
        guard case .heartbeat(let beatBack) = try roundTrip(.heartbeat(beat)) else { return XCTFail("not a heartbeat") }
        XCTAssertEqual(beatBack, beat)
    }

    func testFloat32BucketRoundTripIsBitExact() throws {
        let values: [Float] = [1, -2.5, .nan, .infinity, -0.0, .leastNonzeroMagnitude, 3.4e38, 0.1, 7, 8]
        let arena = FloatBuffer(values)
        let plan = BucketPlan(elementCount: values.count, maxBucketBytes: 16)  // 4 values per bucket
        let bucket = TensorBucket(
            step: 3, rank: 1, attempt: 2, node: TreeNode(start: 4, count: 2), bucket: plan.bucket(1), of: plan,
            from: arena.pointer, as: .float32)
        guard case .gradients(let back) = try roundTrip(.gradients(bucket)) else { return XCTFail("not gradients") }
        XCTAssertEqual(
            [
                back.step, back.rank, back.attempt, back.index, back.bucketCount, back.elementOffset, back.elementCount,
                back.totalCount,
            ],
            [3, 1, 2, 1, 3, 4, 4, 10])
        XCTAssertEqual(back.node, TreeNode(start: 4, count: 2))
        // Gradients must name an aligned power-of-two node of the step's tree.
        for (start, count) in [(0, 0), (1, 2), (0, 3), (-2, 1)] {
            var frames = WireMessage.gradients(bucket).frames()
            var header = try frames[0].withUnsafeBytes { raw in try MessageHeader(decoding: raw) }
            header.values.0 = Int64(start)
            header.values.1 = Int64(count)
            frames[0] = Frame(header.encoded())
            XCTAssertThrowsError(try WireMessage(frames: frames), "node start \(start) count \(count)")
        }
        XCTAssertEqual(back.elementType, .float32)
        let target = FloatBuffer(count: values.count)
        try back.copyValues(into: target.pointer, arenaCount: values.count)
        XCTAssertEqual(
            target.array.map(\.bitPattern),
            [
                0, 0, 0, 0, (-0.0 as Float).bitPattern, Float.leastNonzeroMagnitude.bitPattern,
                Float(3.4e38).bitPattern, Float(0.1).bitPattern, 0, 0,
            ])
    }

    func testFloat16BucketRoundsToHalfPrecision() throws {
        let values: [Float] = [1, 0.5, -2, 65504, 1e-8, 0.1, 1.0 + 1.0 / 2048, 1.0 + 3.0 / 2048]
        let arena = FloatBuffer(values)
        let plan = BucketPlan(elementCount: values.count)
        let bucket = TensorBucket(step: 1, bucket: plan.bucket(0), of: plan, from: arena.pointer, as: .float16)
        XCTAssertEqual(bucket.payload.count, 16)
        guard case .weights(let back) = try roundTrip(.weights(bucket)) else { return XCTFail("not weights") }
        XCTAssertEqual(back.elementType, .float16)
        let scratch = FloatBuffer()
        let decoded = back.withFloat32Values(scratch: scratch) { Array($0) }
        // 1e-8 is below half's smallest subnormal (5.96e-8): 0. 0.1 -> 0.0999755859375. Half's ulp at 1 is
        // 2^-10, so 1 + 2^-11 and 1 + 3 * 2^-11 are ties, rounded to even: 1 and 1 + 2^-9.
        XCTAssertEqual(decoded, [1, 0.5, -2, 65504, 0, 0.0999755859375, 1, 1.001953125])
    }

    func testFloat32ValuesAreReadInPlaceWhenAligned() throws {
        let arena = FloatBuffer((0..<8).map { Float($0) })
        let plan = BucketPlan(elementCount: 8)
        guard
            case .weights(let back) = try roundTrip(
                .weights(
                    TensorBucket(
                        step: 1, bucket: plan.bucket(0), of: plan,
                        from: arena.pointer, as: .float32)))
        else {
            return XCTFail("not weights")
        }
        let scratch = FloatBuffer()
        let payloadAddress = back.payload.withUnsafeBytes { $0.baseAddress }
        let (sum, address) = back.withFloat32Values(scratch: scratch) {
            ($0.reduce(0, +), $0.baseAddress.map(UnsafeRawPointer.init))
        }
        XCTAssertEqual(sum, 28)
        XCTAssertEqual(address, payloadAddress)
        XCTAssertEqual(scratch.count, 0)
    }

    func testBucketPlan() {
        let plan = BucketPlan(elementCount: 10, maxBucketBytes: 16)
        XCTAssertEqual(plan.bucketCount, 3)
        XCTAssertEqual(plan.map { [$0.index, $0.offset, $0.count] }, [[0, 0, 4], [1, 4, 4], [2, 8, 2]])
        let big = BucketPlan(elementCount: 16 << 20)
        XCTAssertEqual(big.elementsPerBucket, 1 << 20)
        XCTAssertEqual(big.bucketCount, 16)
        XCTAssertEqual(BucketPlan(elementCount: (1 << 20) + 1).bucketCount, 2)
        XCTAssertEqual(BucketPlan(elementCount: 0).bucketCount, 0)
        XCTAssertEqual(Array(BucketPlan(elementCount: 0)).count, 0)
    }

    func testCopyIntoArenaOfAnotherSizeIsRefused() throws {
        let arena = FloatBuffer(count: 8)
        let plan = BucketPlan(elementCount: 8)
        let bucket = TensorBucket(step: 1, bucket: plan.bucket(0), of: plan, from: arena.pointer, as: .float32)
        XCTAssertThrowsError(try bucket.copyValues(into: arena.pointer, arenaCount: 9)) { error in
            XCTAssertEqual(error as? ProtocolError, .arenaSizeMismatch(message: 8, local: 9))
            XCTAssertEqual("\(error)", "the tensor bucket belongs to an arena of 8 values, this model has 9")
        }
    }

    // MARK: Malformed frames

    private func header(_ kind: MessageKind, _ edit: (inout MessageHeader) -> Void = { _ in }) -> Frame {
        var h = MessageHeader(kind: kind)
        edit(&h)
        return Frame(h.encoded())
    }

    private func assertRejected(_ frames: [Frame], _ expected: ProtocolError, line: UInt = #line) {
        XCTAssertThrowsError(try WireMessage(frames: frames), line: line) { error in
            XCTAssertEqual(error as? ProtocolError, expected, line: line)
        }
    }

    func testMalformedHeadersAreRejected() {
        assertRejected([], .noFrames)
        assertRejected([Frame([1, 2, 3])], .headerSize(actual: 3, expected: 112))
        var wrongMagic = MessageHeader(kind: .heartbeat).encoded()
        wrongMagic[0] = UInt8(ascii: "X")
        assertRejected([Frame(wrongMagic)], .badMagic(0x5444_5758))
        assertRejected([header(.heartbeat) { $0.version = 2 }], .unsupportedVersion(received: 2, supported: 1))
        XCTAssertEqual(
            ProtocolError.unsupportedVersion(received: 2, supported: 1).description,
            "protocol version 2 is not supported (this program speaks version 1)")
        let truncated = Array(MessageHeader(kind: .heartbeat).encoded().prefix(100))
        assertRejected([Frame(truncated)], .headerSize(actual: 100, expected: 112))
        var unknownKind = MessageHeader(kind: .heartbeat).encoded()
        unknownKind[6] = 42
        assertRejected([Frame(unknownKind)], .unknownKind(42))
        var unknownType = MessageHeader(kind: .heartbeat).encoded()
        unknownType[7] = 9
        assertRejected([Frame(unknownType)], .unknownPayloadType(9))
    }

    func testMalformedPayloadsAreRejected() {
        let tensorHeader = header(.weights) {
            $0.payloadType = .float32
            $0.elementCount = 10
            $0.totalCount = 100
            $0.bucketCount = 1
        }
        assertRejected(
            [tensorHeader, Frame([UInt8](repeating: 0, count: 36))],
            .payloadSize(kind: .weights, expectedBytes: 40, actualBytes: 36))
        assertRejected([tensorHeader], .frameCount(kind: .weights, expected: 2, actual: 1))
        assertRejected(
            [
                header(.weights) {
                    $0.payloadType = .int64
                    $0.elementCount = 0
                }, Frame([]),
            ],
            .wrongPayloadType(kind: .weights, expected: [.float32, .float16], actual: .int64))
        assertRejected(
            [
                header(.gradients) {
                    $0.payloadType = .float16
                    $0.elementCount = 2
                    $0.totalCount = 4
                    $0.bucketCount = 2
                    $0.bucketIndex = 2
                },
                Frame([0, 0, 0, 0]),
            ],
            .invalidField(kind: .gradients, field: "bucketIndex", value: 2, reason: "is not below bucketCount 2"))
        assertRejected(
            [
                header(.gradients) {
                    $0.payloadType = .float32
                    $0.elementCount = 2
                    $0.elementOffset = 3
                    $0.totalCount = 4
                    $0.bucketCount = 1
                },
                Frame([UInt8](repeating: 0, count: 8)),
            ],
            .invalidField(
                kind: .gradients, field: "elementOffset + elementCount", value: 5, reason: "exceeds totalCount 4"))
        assertRejected(
            [header(.heartbeat) { $0.step = -1 }],
            .invalidField(kind: .heartbeat, field: "step", value: -1, reason: "is negative"))
        assertRejected([header(.heartbeat), Frame([1])], .frameCount(kind: .heartbeat, expected: 1, actual: 2))
        assertRejected(
            [
                header(.refuse) {
                    $0.payloadType = .utf8
                    $0.elementCount = 2
                }, Frame([0xC3, 0x28]),
            ], .invalidText(kind: .refuse))
        assertRejected(
            [
                header(.work) {
                    $0.payloadType = .int64
                    $0.elementCount = 1
                }, Frame([UInt8](repeating: 0xFF, count: 8)),
            ],
            .invalidField(kind: .work, field: "micro-batch index", value: -1, reason: "is negative"))
    }

    func testMalformedHandshakeJSONIsRejected() {
        func hello(_ json: String) -> [Frame] {
            [
                header(.hello) {
                    $0.payloadType = .json
                    $0.elementCount = Int64(json.utf8.count)
                }, Frame(Array(json.utf8)),
            ]
        }
        assertRejected(hello("{"), .invalidJSON(kind: .hello, reason: "not JSON"))
        assertRejected(hello("[1]"), .invalidJSON(kind: .hello, reason: "not a JSON object"))
        assertRejected(hello(#"{"threads": 1}"#), .invalidJSON(kind: .hello, reason: "missing field name"))
        assertRejected(
            hello(#"{"name": "w", "threads": 1.5}"#), .invalidJSON(kind: .hello, reason: "threads is not an integer"))
        assertRejected(
            hello(#"{"name": "w", "threads": "2"}"#), .invalidJSON(kind: .hello, reason: "threads is not an integer"))
        assertRejected(
            hello(#"{"name": "w", "threads": true}"#), .invalidJSON(kind: .hello, reason: "threads is not an integer"))
        assertRejected(hello(#"{"name": 3, "threads": 2}"#), .invalidJSON(kind: .hello, reason: "name is not a string"))
        guard case .hello(let minimal)? = try? WireMessage(frames: hello(#"{"name": "w", "threads": 1, "extra": [1]}"#))
        else {
            return XCTFail("a hello with only the required fields (and an unknown one) is accepted")
        }
        XCTAssertEqual(minimal, Hello(configHash: nil, tokenizerHash: nil, name: "w", threads: 1))
    }
}
