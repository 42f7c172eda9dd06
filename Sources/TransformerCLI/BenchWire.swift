import ArgumentParser
import Distributed
import Foundation
import Synchronization
import Training

/// `transformer bench wire`: how fast one connection moves gradient-bucket-sized frames over
/// tcp:// on loopback, with or without CURVE (encrypting on the sender's I/O thread, decrypting
/// on the receiver's). Prints one JSON line.
struct BenchWire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire", abstract: "Time large frames over tcp loopback, optionally with CURVE.")
    @Option(help: "Frame size in MiB (a 4 MiB gradient bucket is 1 Mi Float32 values).") var mebibytes: Double = 4
    @Option(help: "Timed frames.") var frames: Int = 100
    @Option(help: "Warm-up frames (not timed).") var warmup: Int = 10
    @Flag(help: "Authenticate and encrypt the connection with CURVE.") var curve = false

    func validate() throws {
        guard mebibytes > 0, frames >= 1, warmup >= 0 else {
            throw ValidationError("--mebibytes and --frames must be positive")
        }
    }

    func run() throws {
        try reportingErrors {
            let bytes = Int(mebibytes * 1_048_576)
            let serverKeys = try CurveKeyPair.generate(), clientKeys = try CurveKeyPair.generate()
            let serverCurve =
                curve
                ? CoordinatorCurve(keyPair: serverKeys, allowedWorkers: CurveAllowList(keys: [clientKeys.publicKey]))
                : nil
            let (router, curveGuard) = try CoordinatorSocket.bind(
                "tcp://127.0.0.1:*", curve: serverCurve, context: nil, log: { printError($0) })
            defer {
                router.stop()
                curveGuard?.stop()
            }
            let link = try WorkerLink(
                endpoint: router.endpoint, routingID: PeerID("bench"),
                curve: curve ? WorkerCurve(keyPair: clientKeys, coordinatorPublicKey: serverKeys.publicKey) : nil,
                context: nil)
            defer { link.close() }
            let payload = Frame(byteCount: bytes) { buffer in
                for i in stride(from: 0, to: buffer.count, by: 4096) { buffer[i] = UInt8(truncatingIfNeeded: i / 4096) }
                for i in 0..<buffer.count where i % 4096 != 0 { buffer[i] = 0x5A }
            }
            let semaphore = DispatchSemaphore(value: 0)
            let total = warmup + frames
            let times = Marks()
            Task.detached { [router] in
                var received = 0
                for await event in router.events {
                    guard case .message(let m) = event, m.frames.first?.count == bytes else { continue }
                    received += 1
                    if received == warmup || received == total { times.add(uptimeSeconds()) }
                    if received == total { break }
                }
                semaphore.signal()
            }
            let start = uptimeSeconds()
            for _ in 0..<total { link.socket.send([payload]) }
            if semaphore.wait(timeout: .now() + 600) == .timedOut {
                throw ValidationError("frames did not arrive within 600 s")
            }
            try link.checkHandshake()
            let marks = times.all
            let begin = warmup == 0 ? start : marks[0], end = marks[marks.count - 1]
            let seconds = end - begin
            let mb = Double(bytes * frames) / 1e6
            let line: [String: Any] = [
                "mechanism": curve ? "CURVE" : "NULL", "frame_bytes": bytes, "frames": frames,
                "seconds": (seconds * 1e4).rounded() / 1e4,
                "megabytes_per_second": (mb / seconds * 10).rounded() / 10,
                "milliseconds_per_frame": (seconds / Double(frames) * 1e5).rounded() / 100,
            ]
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            printLine(String(decoding: data, as: UTF8.self))
        }
    }
}

private func uptimeSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Arrival times, written by the receiving task and read after it signals.
private final class Marks: Sendable {
    private let storage = Mutex<[Double]>([])
    func add(_ t: Double) { storage.withLock { $0.append(t) } }
    var all: [Double] { storage.withLock { $0 } }
}
