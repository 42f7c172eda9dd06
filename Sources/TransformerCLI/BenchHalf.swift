import ArgumentParser
import Foundation
import TensorCore
import Training

/// `transformer bench half`: Float32 <-> Float16 conversion throughput (F16C), the cost of every
/// Float16 storage and wire option. Prints one JSON line; GB/s count the Float32 side (4 bytes per
/// value), best of `--repeats`.
struct BenchHalf: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "half", abstract: "Time Float32 <-> Float16 conversion.")
    /// The default is one 4 MiB wire bucket, the unit the Float16 options convert at a time; much
    /// larger arrays measure DRAM bandwidth instead (about 3.3 GB/s for 64M values here).
    @Option(help: "Values converted per repetition (default 1M: one 4 MiB wire bucket).") var count = 1 << 20
    @Option(help: "Repetitions; the fastest counts.") var repeats = 50

    func run() throws {
        try reportingErrors {
            guard count > 0, repeats > 0 else { throw ValidationError("--count and --repeats must be positive") }
            let floats = FloatBuffer(count: count)
            for i in 0..<count { floats.pointer[i] = Float(i % 4093) * 0.37 - 700 }
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
            defer { halves.deallocate() }
            let back = FloatBuffer(count: count)
            var encode = Double.infinity, decode = Double.infinity
            for _ in 0..<repeats {
                var t = DispatchTime.now().uptimeNanoseconds
                Half.encode(floats.pointer, halves, count: count)
                encode = Swift.min(encode, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
                t = DispatchTime.now().uptimeNanoseconds
                Half.decode(halves, back.pointer, count: count)
                decode = Swift.min(decode, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
            }
            // The values are exactly representable or rounded once: a round trip must be within half an ulp of Float16.
            var worst: Float = 0
            for i in stride(from: 0, to: count, by: 997) {
                worst = Swift.max(
                    worst, abs(back.pointer[i] - floats.pointer[i]) / Swift.max(abs(floats.pointer[i]), 1e-3))
            }
            let bytes = Double(count * 4)
            FileHandle.standardOutput.write(
                RunLog.jsonLine([
                    "values": count, "encode_gigabytes_per_second": bytes / encode / 1e9,
                    "decode_gigabytes_per_second": bytes / decode / 1e9, "encode_seconds": encode,
                    "decode_seconds": decode,
                    "max_relative_round_trip_error": Double(worst), "threads": 1,
                ]))
        }
    }
}
