import Foundation
import Training
import XCTest

/// TensorBoard event files in pure Swift: CRC-32C, the TFRecord framing, the Event encoding
/// byte for byte, the file writer, and the rewrite a resumed run does.
final class TensorBoardEventTests: XCTestCase {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testCRC32CKnownValuesAndMask() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF.
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.masked(0xE306_9283), 0xC78A_B0E5)  // ((c >> 15) | (c << 17)) + 0xa282ead8 mod 2^32
    }

    /// Expected bytes computed independently (a bitwise CRC-32C and struct.pack in Python) and
    /// read back by the tensorboard package's own reader.
    static let smallRecord: [UInt8] = [
        0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE7, 0xCE, 0xF8, 0x1E, 0x09, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xF8, 0x3F, 0x10, 0x07, 0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0x00,
        0x00, 0x00, 0x3F, 0x6F, 0xD6, 0x4F, 0x8C,
    ]

    func testOneEventIsByteExact() throws {
        let event = TensorBoardEvent(wallTime: 1.5, step: 7, scalars: [.init(tag: "a", value: 0.5)])
        XCTAssertEqual(TFRecord.frame(event.encoded()), Self.smallRecord)
        let (records, problem) = TFRecord.records(in: Self.smallRecord)
        XCTAssertNil(problem)
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(try TensorBoardEvent(decoding: try XCTUnwrap(records.first)), event)
    }

    func testEncodingRoundTripsEdgeValues() throws {
        let events = [
            TensorBoardEvent(wallTime: 1_700_000_000.25, step: 0, fileVersion: TensorBoardEvent.version),
            TensorBoardEvent(
                wallTime: 2, step: 300,
                scalars: [
                    .init(tag: "train/loss", value: 2.75),
                    .init(tag: "workers/1/seconds", value: -0.0),
                    .init(tag: "ünïcode/tag", value: .greatestFiniteMagnitude),
                ]),
            TensorBoardEvent(wallTime: 3, step: Int64.max, scalars: [.init(tag: "", value: 1e-30)]),
            TensorBoardEvent(wallTime: 4, step: -1),
        ]
        var file: [UInt8] = []
        for e in events { file += TFRecord.frame(e.encoded()) }
        let (records, problem) = TFRecord.records(in: file)
        XCTAssertNil(problem)
        XCTAssertEqual(try records.map { try TensorBoardEvent(decoding: $0) }, events)
        // step 300 is the varint AC 02; step 0 is left out (proto3 default).
        XCTAssertEqual(Array(events[1].encoded()[9..<12]), [0x10, 0xAC, 0x02])
        XCTAssertEqual(events[0].encoded().count, 9 + 2 + TensorBoardEvent.version.utf8.count)
    }

    func testDamagedAndCutOffFilesAreRecognised() {
        let two = Self.smallRecord + Self.smallRecord
        var damaged = two
        damaged[39 + 20] ^= 0x01  // a bit of the second record's data
        XCTAssertEqual(TFRecord.records(in: damaged).records.count, 1)
        XCTAssertEqual(TFRecord.records(in: damaged).problem, .corrupt(offset: 39, reason: "data checksum mismatch"))
        var badLength = two
        badLength[39] = 0x18
        XCTAssertEqual(
            TFRecord.records(in: badLength).problem, .corrupt(offset: 39, reason: "length checksum mismatch"))
        for cut in [1, 11, 12, 30, 38] {
            let (records, problem) = TFRecord.records(in: Array(two.prefix(39 + cut)))
            XCTAssertEqual(records.count, 1, "cut \(cut)")
            XCTAssertEqual(problem, .truncated(offset: 39), "cut \(cut)")
        }
        // A length field claiming more than the file holds, with a valid checksum of its own.
        var huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]
        huge += withUnsafeBytes(of: CRC32C.maskedChecksum(huge).littleEndian) { Array($0) } + [0, 0, 0, 0]
        XCTAssertEqual(TFRecord.records(in: huge).problem, .truncated(offset: 0))
        // Garbage inside a valid frame is a malformed event, not a crash.
        XCTAssertThrowsError(try TensorBoardEvent(decoding: [0x0A, 0x05, 0x01][...]))
        XCTAssertThrowsError(try TensorBoardEvent(decoding: [0x10, 0xFF][...]))
        XCTAssertThrowsError(try TensorBoardEvent(decoding: [0x0B][...]))
    }

    private func events(_ path: String) throws -> [TensorBoardEvent] {
        let (records, problem) = TFRecord.records(in: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        XCTAssertNil(problem)
        return try records.map { try TensorBoardEvent(decoding: $0) }
    }

    func testWriterStartsWithTheVersionRecordAndNeverReusesAName() throws {
        let dir = try temporaryDirectory().appendingPathComponent("tensorboard").path
        let a = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000.5, host: "node-1")
        try a.write(TensorBoardEvent(wallTime: 1_700_000_001, step: 10, scalars: [.init(tag: "train/loss", value: 3)]))
        let b = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000.9, host: "node-1")
        XCTAssertEqual(a.path, dir + "/events.out.tfevents.1700000000.node-1")
        XCTAssertEqual(b.path, dir + "/events.out.tfevents.1700000000.node-1.1")
        let written = try events(a.path)
        XCTAssertEqual(
            written,
            [
                TensorBoardEvent(wallTime: 1_700_000_000.5, step: 0, fileVersion: "brain.Event:2"),
                TensorBoardEvent(wallTime: 1_700_000_001, step: 10, scalars: [.init(tag: "train/loss", value: 3)]),
            ])
        XCTAssertFalse(TensorBoardWriter.hostName().isEmpty)
        XCTAssertFalse(TensorBoardWriter.hostName().contains("/"))
    }

    func testResumeDropsLaterStepsFromOlderFilesOnly() throws {
        let dir = try temporaryDirectory().path
        let old = try TensorBoardWriter(directory: dir, wallTime: 100, host: "h")
        for step in [10, 20, 30] {
            try old.write(
                TensorBoardEvent(
                    wallTime: 100 + Double(step), step: Int64(step), scalars: [.init(tag: "t", value: Float(step))]))
        }
        try old.close()
        // A torn last record, as a kill during the write leaves it.
        let torn = TFRecord.frame(
            TensorBoardEvent(wallTime: 140, step: 40, scalars: [.init(tag: "t", value: 4)]).encoded())
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: old.path))
        try handle.seekToEnd()
        handle.write(Data(torn.prefix(20)))
        try handle.close()
        // A damaged file is left alone.
        var damaged = Self.smallRecord + Self.smallRecord
        damaged[50] ^= 0x10
        let damagedPath = dir + "/events.out.tfevents.50.h"
        try Data(damaged).write(to: URL(fileURLWithPath: damagedPath))
        let current = try TensorBoardWriter(directory: dir, wallTime: 200, host: "h")
        try current.write(TensorBoardEvent(wallTime: 201, step: 30, scalars: [.init(tag: "t", value: 30)]))

        let notes = try TensorBoardWriter.discardEvents(afterStep: 20, in: dir, keeping: current.path)
        XCTAssertEqual(notes.count, 2, "\(notes)")
        XCTAssertTrue(notes.contains { $0.hasPrefix(damagedPath) && $0.contains("left unchanged") }, "\(notes)")
        XCTAssertTrue(
            notes.contains {
                $0.hasPrefix(old.path)
                    && $0.hasSuffix(
                        "dropped 1 event(s) after step 20 and an incomplete last record (this run logs them again)")
            },
            "\(notes)")
        XCTAssertEqual(try events(old.path).map(\.step), [0, 10, 20])
        XCTAssertEqual(try events(current.path).map(\.step), [0, 30])
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: damagedPath))), damaged)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.contains("tfevents") }, [])
        // Nothing left to drop: no rewrite, no note.
        XCTAssertEqual(try TensorBoardWriter.discardEvents(afterStep: 20, in: dir, keeping: current.path).count, 1)
    }

    func testMetricsLinesBecomeTheDocumentedTags() {
        let step: [String: Any] = [
            "step": 40, "loss": Double.nan, "lr": 0.001, "grad_norm": 1.25, "tokens": 900,
            "tokens_per_second": 12345.5, "loss_scale": 1, "elapsed_seconds": 3.5,
            "worker_seconds": ["10": 0.5, "2": 0.25, "0": Double.infinity],
        ]
        let scalars = TensorBoardScalars.forStep(step)
        XCTAssertEqual(
            scalars.map(\.tag),
            [
                "train/lr", "train/grad_norm", "train/tokens_per_second", "train/loss_scale",
                "workers/2/seconds", "workers/10/seconds",
            ])
        XCTAssertEqual(scalars.map(\.value), [0.001, 1.25, 12345.5, 1, 0.25, 0.5])
        let valid: [String: Any] = [
            "step": 40, "loss": 2.5, "perplexity": 12.18, "token_accuracy": 0.5,
            "sequence_accuracy": 0.25, "bleu": 13.5, "chrf": 40.25,
        ]
        XCTAssertEqual(
            TensorBoardScalars.forValidation(valid).map(\.tag),
            [
                "valid/loss", "valid/perplexity", "valid/bleu", "valid/chrf", "valid/sequence_accuracy",
                "valid/token_accuracy",
            ])
        XCTAssertEqual(TensorBoardScalars.forValidation(["step": 1, "perplexity": 1e300]).count, 0)
    }

    /// RunLog writes the curves next to metrics.jsonl, and on resume drops later steps from both.
    func testRunLogResumeLeavesEachStepOnce() throws {
        let dir = try temporaryDirectory()
        do {
            let log = try RunLog(directory: dir)
            for step in [10, 20, 30] { log.logStep(["step": step, "loss": Double(step), "lr": 0.5]) }
            log.logValidation(["step": 20, "loss": 1.5])
            log.logValidation(["step": 30, "loss": 1.25])
        }
        try Data("not json\n".utf8).append(to: dir.appendingPathComponent("metrics.jsonl"))
        let log = try RunLog(directory: dir)
        try log.discardEntries(afterStep: 20)
        log.logStep(["step": 30, "loss": 3.5, "lr": 0.5])
        let metrics = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(
            metrics,
            "{\"loss\":10,\"lr\":0.5,\"step\":10}\n{\"loss\":20,\"lr\":0.5,\"step\":20}\nnot json\n"
                + "{\"loss\":3.5,\"lr\":0.5,\"step\":30}\n")
        XCTAssertEqual(
            try String(contentsOf: dir.appendingPathComponent("valid.jsonl"), encoding: .utf8),
            "{\"loss\":1.5,\"step\":20}\n")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tensorboard").path)
            .sorted()
        XCTAssertEqual(files.count, 2)
        var points: [String: [Int64: Float]] = [:]
        for file in files {
            for event in try events(dir.appendingPathComponent("tensorboard/\(file)").path) {
                for s in event.scalars {
                    XCTAssertNil(points[s.tag]?[event.step], "\(s.tag) step \(event.step) twice")
                    points[s.tag, default: [:]][event.step] = s.value
                }
            }
        }
        XCTAssertEqual(points["train/loss"], [10: 10, 20: 20, 30: 3.5])
        XCTAssertEqual(points["valid/loss"], [20: 1.5])
        XCTAssertEqual(points["train/lr"], [10: 0.5, 20: 0.5, 30: 0.5])
    }
}

private extension Data {
    func append(to url: URL) throws {
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        handle.write(self)
        try handle.close()
    }
}
