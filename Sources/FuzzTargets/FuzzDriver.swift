import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a run of the mutation driver did.
package struct FuzzReport: Sendable, Equatable {
    package var inputs = 0
    package var accepted = 0
    package var rejected = 0
    /// Inputs that were seeds (run unmutated first).
    package var seedsAccepted = 0
    /// Peak resident memory of the whole process (getrusage), KiB.
    package var peakRSSKiB = 0
}

/// The seed inputs of a target: every regular file of a directory, in name order (so runs repeat).
package enum FuzzCorpus {
    package static func load(directory: String) -> [[UInt8]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { name -> [UInt8]? in
            var isDirectory: ObjCBool = false
            let path = directory + "/" + name
            guard !name.hasPrefix("."), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
                !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path)
            else { return nil }
            return Array(data)
        }
    }
}

/// The deterministic mutation fuzzer: every seed once, then mutants of seeds and of earlier
/// accepted mutants (accepted inputs reach deeper code, a cheap stand-in for coverage feedback).
package enum FuzzDriver {
    /// Runs `target` until `inputs` inputs were tried or `seconds` passed (whichever comes first;
    /// nil: no limit of that kind). `lastInput`, if given, is a file that always holds the input
    /// being decoded (a shared memory map, so it survives a crash or a kill): the input to keep
    /// when the process dies.
    package static func run(
        _ target: FuzzTarget, seeds: [[UInt8]], inputs: Int?, seconds: Double?, seed: UInt64 = 1,
        maxLength: Int = 1 << 16, lastInput: String? = nil
    ) -> FuzzReport {
        let recorder = lastInput.flatMap {
            LastInputFile(path: $0, capacity: maxLength + (seeds.map(\.count).max() ?? 0))
        }
        var report = FuzzReport()
        let start = DispatchTime.now().uptimeNanoseconds
        func budgetLeft() -> Bool {
            if let inputs, report.inputs >= inputs { return false }
            if let seconds, report.inputs % 64 == 0,
                Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 >= seconds
            {
                return false
            }
            return true
        }
        func runOne(_ input: [UInt8]) -> FuzzOutcome {
            recorder?.record(input)
            let outcome = target.run(input)
            report.inputs += 1
            if outcome == .accepted { report.accepted += 1 } else { report.rejected += 1 }
            return outcome
        }
        for input in seeds where budgetLeft() {
            if runOne(input) == .accepted { report.seedsAccepted += 1 }
        }
        var pool = seeds.isEmpty ? [[]] : seeds
        let poolLimit = pool.count + 256
        var mutator = Mutator(seed: seed, isJSON: target.isJSON, maxLength: maxLength)
        while budgetLeft() {
            let base = pool[mutator.random.below(pool.count)]
            let other = pool[mutator.random.below(pool.count)]
            let input = mutator.mutate(base, other: other)
            if runOne(input) == .accepted {
                if pool.count < poolLimit {
                    pool.append(input)
                } else {
                    pool[seeds.count + mutator.random.below(256)] = input
                }
            }
        }
        recorder?.remove()
        report.peakRSSKiB = peakRSSKiB()
        return report
    }

    /// The process's peak resident set size in KiB (Linux reports KiB, macOS bytes).
    package static func peakRSSKiB() -> Int {
        var usage = rusage()
        #if os(macOS)
            guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
            return Int(usage.ru_maxrss) / 1024
        #else
            guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
            return Int(usage.ru_maxrss)
        #endif
    }
}

/// A file mapped shared into memory holding "length (8 bytes LE) + bytes" of the current input.
/// Writing it is a memcpy; after a crash or a kill the page cache still has it.
private final class LastInputFile {
    private let path: String
    private let memory: UnsafeMutableRawPointer
    private let size: Int

    init?(path: String, capacity: Int) {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        size = 8 + capacity
        guard ftruncate(fd, off_t(size)) == 0 else { return nil }
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else { return nil }
        memory = address
        self.path = path
    }

    func record(_ input: [UInt8]) {
        let count = min(input.count, size - 8)
        memory.storeBytes(of: UInt64(count).littleEndian, as: UInt64.self)
        input.withUnsafeBytes { raw in
            if let base = raw.baseAddress { (memory + 8).copyMemory(from: base, byteCount: count) }
        }
    }

    /// The run ended normally: nothing to keep.
    func remove() {
        munmap(memory, size)
        unlink(path)
    }
}
