import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A checkpoint directory found by `CheckpointStore.list()`.
package struct CheckpointListing: Sendable, Equatable {
    package let step: Int
    package let directory: String

    package init(step: Int, directory: String) {
        self.step = step
        self.directory = directory
    }
}

/// What `CheckpointStore.write` did.
package struct WrittenCheckpoint: Sendable, Equatable {
    /// The final checkpoint directory (`RUN/checkpoints/step-NNNNNNNN`).
    package let directory: String
    package let step: Int
    /// CRC-32 of `model.safetensors` and `optimizer.safetensors`, as recorded in `state.json`.
    package let modelChecksum: UInt32
    package let optimizerChecksum: UInt32
    /// Older checkpoint directories deleted to honour `keep`.
    package let removed: [String]
    /// Clean-up that failed after the checkpoint was safely in place (for the caller to log).
    package let warnings: [String]
}

/// Checkpoints of one run: `RUN/checkpoints/step-NNNNNNNN/{model.safetensors,
/// optimizer.safetensors, state.json}` plus `RUN/checkpoints/latest` naming the newest one and
/// `RUN/checkpoints/best` naming the best one (written by the trainer, see `writeBestPointer`).
///
/// Writes are crash-safe: a checkpoint is assembled under a temporary name, every file and the
/// directory are fsynced, and only then is it renamed into place and `latest` replaced (itself
/// by write-fsync-rename). A crash at any point leaves either the previous state or the new
/// one, plus at most a `.tmp-*` leftover that readers ignore and later writes delete. A write that
/// fails (disk full, read-only file system) removes what it wrote and throws `cannotWrite` naming
/// the checkpoint and the system's reason; earlier checkpoints and `latest` stay as they were.
/// One process writes a run's checkpoints at a time.
package struct CheckpointStore: Sendable {
    /// The `format` value in `state.json`.
    package static let format = 1

    package let runDirectory: String
    package var checkpointsDirectory: String { runDirectory + "/checkpoints" }
    /// The pointer file holding the newest checkpoint's directory name.
    package var latestPath: String { checkpointsDirectory + "/latest" }
    /// The pointer file holding the best checkpoint's directory name (`best_metric`).
    package var bestPath: String { checkpointsDirectory + "/best" }

    /// The store of the run in `runDirectory` (created on the first write).
    package init(runDirectory: String) {
        var path = runDirectory.isEmpty ? "." : runDirectory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        self.runDirectory = path
    }

    /// `step-NNNNNNNN` (8 digits).
    package static func directoryName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: Swift.max(0, 8 - digits.count)) + digits
    }

    /// The step of a `step-NNNNNNNN` name; nil for any other name.
    package static func step(fromDirectoryName name: String) -> Int? {
        let utf8 = Array(name.utf8)
        guard utf8.count == 13, name.hasPrefix("step-"),
            utf8[5...].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return Int(name.dropFirst(5))
    }

    /// Writes a checkpoint for `step`, points `latest` at it and deletes older checkpoints so that
    /// `keep` remain (the new one and the newest `keep - 1` with a smaller step; checkpoints with a
    /// larger step, left by an abandoned continuation of the run, are not touched). Checkpoints
    /// whose step is in `preserving` (the best one) are never deleted and do not count towards
    /// `keep`. A checkpoint already present for `step` is replaced.
    ///
    /// - Parameter state: a JSON object (UTF-8) stored verbatim in `state.json`, which adds
    ///   `checksums`, `checksum_algorithm` and `format` (so those keys are reserved).
    @discardableResult
    package func write(
        step: Int, model: [TensorRecord], optimizer: [TensorRecord], state: Data,
        keep: Int, preserving: Set<Int> = []
    ) throws(CheckpointError) -> WrittenCheckpoint {
        guard (0...99_999_999).contains(step) else { throw .invalidArgument("step \(step) is not in 0...99999999") }
        guard keep >= 1 else { throw .invalidArgument("keep must be at least 1, got \(keep)") }
        let prepared = try CheckpointStateFile.prepare(state, step: step)
        let name = Self.directoryName(step: step)
        let final = checkpointsDirectory + "/" + name
        let pid = Posix.processID
        func attempt<T>(_ body: () throws(SystemCallFailure) -> T) throws(CheckpointError) -> T {
            do throws(SystemCallFailure) { return try body() } catch { throw .cannotWrite(final, error) }
        }
        try attempt { () throws(SystemCallFailure) in
            try Posix.makeDirectories(checkpointsDirectory)
            try Posix.syncDirectory(runDirectory)
        }
        let assembled = try Self.assemble(
            prepared, model: model, optimizer: optimizer, into: final,
            temporary: checkpointsDirectory + "/.tmp-\(name)-\(pid)",
            aside: checkpointsDirectory + "/.tmp-replaced-\(name)-\(pid)")
        var warnings = assembled.warnings
        do throws(CheckpointError) {
            try writePointer(name, to: latestPath, checkpoint: final)
        } catch {
            // `latest` still names the previous checkpoint: take the new one away again, so that a
            // failed write leaves the run as it was (and a full disk no fuller).
            if (try? Self.pointerName(latestPath, missingIsNil: true)) != name { try? Posix.removeTree(final) }
            throw error
        }
        let removed = prune(keep: keep, newest: step, preserving: preserving, warnings: &warnings)
        removeStaleTemporaries(warnings: &warnings)
        return WrittenCheckpoint(
            directory: final, step: step, modelChecksum: assembled.modelChecksum,
            optimizerChecksum: assembled.optimizerChecksum, removed: removed, warnings: warnings)
    }

    /// Writes a checkpoint directory outside any run's `checkpoints/` (e.g. an averaged model):
    /// assembled under `.tmp-NAME-PID` beside it, fsynced, then renamed to `directory`, which must
    /// not exist yet. `state` as for `write`; its "step" field is required, because the directory
    /// name does not carry one.
    @discardableResult
    package static func writeStandalone(
        directory: String, step: Int, model: [TensorRecord], optimizer: [TensorRecord],
        state: Data
    ) throws(CheckpointError) -> WrittenCheckpoint {
        var final = directory
        while final.count > 1 && final.hasSuffix("/") { final.removeLast() }
        let slash = final.lastIndex(of: "/")
        let parent = slash.map { $0 == final.startIndex ? "/" : String(final[..<$0]) } ?? "."
        let name = slash.map { String(final[final.index(after: $0)...]) } ?? final
        guard !name.isEmpty, name != ".", name != ".." else {
            throw .invalidArgument("\(directory) does not name a directory")
        }
        let prepared = try CheckpointStateFile.prepare(state, step: step)
        let exists: Bool
        do throws(SystemCallFailure) {
            exists = try Posix.fileType(final) != nil
            if !exists { try Posix.makeDirectories(parent) }
        } catch {
            throw .cannotWrite(final, error)
        }
        guard !exists else {
            throw .cannotWrite(path: final, reason: "it already exists (choose another directory or remove it)")
        }
        let pid = Posix.processID
        let assembled = try assemble(
            prepared, model: model, optimizer: optimizer, into: final,
            temporary: parent + "/.tmp-\(name)-\(pid)", aside: nil)
        return WrittenCheckpoint(
            directory: final, step: step, modelChecksum: assembled.modelChecksum,
            optimizerChecksum: assembled.optimizerChecksum, removed: [], warnings: assembled.warnings)
    }

    /// Writes the two tensor files and `state.json` into `temporary`, fsyncs them and renames the
    /// directory to `final`. An existing `final` is moved to `aside` and deleted (nil: refused).
    private static func assemble(
        _ prepared: CheckpointStateFile.Prepared, model: [TensorRecord], optimizer: [TensorRecord],
        into final: String, temporary: String, aside: String?
    )
        throws(CheckpointError) -> (modelChecksum: UInt32, optimizerChecksum: UInt32, warnings: [String])
    {
        func attempt<T>(_ body: () throws(SystemCallFailure) -> T) throws(CheckpointError) -> T {
            do throws(SystemCallFailure) { return try body() } catch { throw .cannotWrite(final, error) }
        }
        func writeTensors(_ tensors: [TensorRecord], _ file: String) throws(CheckpointError) -> UInt32 {
            do throws(SafetensorsError) {
                return try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: temporary + "/" + file)
            } catch {
                throw .cannotWrite(path: final, reason: error.description)
            }
        }
        try attempt { () throws(SystemCallFailure) in
            try Posix.removeTree(temporary)
            try Posix.makeDirectory(temporary)
        }
        var warnings: [String] = []
        do throws(CheckpointError) {
            let modelChecksum = try writeTensors(model, CheckpointStateFile.modelFile)
            CheckpointTestHook.pauseInsideWrite()
            let optimizerChecksum = try writeTensors(optimizer, CheckpointStateFile.optimizerFile)
            let stateFile = prepared.file(modelChecksum: modelChecksum, optimizerChecksum: optimizerChecksum)
            try attempt { () throws(SystemCallFailure) in
                try Posix.writeDurably(stateFile, to: temporary + "/state.json")
                try Posix.syncDirectory(temporary)
            }
            let replaced = try attempt { () throws(SystemCallFailure) in
                try install(temporary, as: final, aside: aside)
            }
            if let replaced {
                do throws(SystemCallFailure) { try Posix.removeTree(replaced) } catch {
                    warnings.append(error.description)
                }
            }
            return (modelChecksum, optimizerChecksum, warnings)
        } catch {
            try? Posix.removeTree(temporary)
            throw error
        }
    }

    /// Points `checkpoints/best` at the checkpoint of `step` (write, fsync, rename, like `latest`).
    /// The checkpoint must already be in place.
    package func writeBestPointer(step: Int) throws(CheckpointError) {
        let name = Self.directoryName(step: step)
        guard Posix.isDirectory(checkpointsDirectory + "/" + name) else {
            throw .invalidArgument("cannot point \(bestPath) at \(name): no such checkpoint")
        }
        try writePointer(name, to: bestPath, checkpoint: checkpointsDirectory + "/" + name)
    }

    /// Replaces a pointer file atomically with `name` and a newline. On failure the old pointer
    /// stays (unless only the final directory sync failed) and no temporary file is left.
    private func writePointer(_ name: String, to path: String, checkpoint: String) throws(CheckpointError) {
        let file = (path as NSString).lastPathComponent
        let temporary = checkpointsDirectory + "/.tmp-\(file)-\(Posix.processID)"
        do throws(SystemCallFailure) {
            try Posix.writeDurably(Array((name + "\n").utf8), to: temporary)
            try Posix.rename(temporary, path)
            try Posix.syncDirectory(checkpointsDirectory)
        } catch {
            try? Posix.removeTree(temporary)
            throw .cannotWrite(checkpoint, error)
        }
    }

    /// `write` with the state given as a JSON-compatible dictionary (serialised with sorted keys).
    @discardableResult
    package func write(
        step: Int, model: [TensorRecord], optimizer: [TensorRecord], state: [String: Any],
        keep: Int, preserving: Set<Int> = []
    ) throws(CheckpointError) -> WrittenCheckpoint {
        guard JSONSerialization.isValidJSONObject(state) else {
            throw .invalidState("the state dictionary is not representable as JSON")
        }
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys, .prettyPrinted])
        } catch {
            throw .invalidState("the state dictionary cannot be serialised: \(error)")
        }
        return try write(
            step: step, model: model, optimizer: optimizer, state: data, keep: keep, preserving: preserving)
    }

    /// Renames the finished temporary directory to its final name and returns where an existing
    /// checkpoint of the same step (from an earlier, abandoned continuation of the run) was moved,
    /// because rename cannot replace a non-empty directory.
    private static func install(_ temporary: String, as final: String, aside: String?) throws(SystemCallFailure)
        -> String?
    {
        var replaced: String?
        if try Posix.fileType(final) != nil, let aside {
            try Posix.removeTree(aside)
            try Posix.rename(final, aside)
            replaced = aside
        }
        try Posix.rename(temporary, final)
        try Posix.syncDirectory(
            (final as NSString).deletingLastPathComponent.isEmpty ? "." : (final as NSString).deletingLastPathComponent)
        return replaced
    }

    /// Every `step-NNNNNNNN` directory, oldest first. A run without checkpoints has none.
    package func list() throws(CheckpointError) -> [CheckpointListing] {
        do throws(SystemCallFailure) {
            guard try Posix.fileType(checkpointsDirectory) != nil else { return [] }
            return try Posix.listDirectory(checkpointsDirectory)
                .compactMap { name -> CheckpointListing? in
                    guard let step = Self.step(fromDirectoryName: name) else { return nil }
                    let directory = checkpointsDirectory + "/" + name
                    return Posix.isDirectory(directory) ? CheckpointListing(step: step, directory: directory) : nil
                }
                .sorted { $0.step < $1.step }
        } catch {
            throw .cannotRead(path: checkpointsDirectory, reason: error.description)
        }
    }

    private func prune(keep: Int, newest: Int, preserving: Set<Int>, warnings: inout [String]) -> [String] {
        let older: [CheckpointListing]
        do throws(CheckpointError) {
            older = try list().filter { $0.step < newest && !preserving.contains($0.step) }
        } catch {
            warnings.append("cannot prune old checkpoints: \(error)")
            return []
        }
        var removed: [String] = []
        for listing in older.reversed().dropFirst(keep - 1) {
            do throws(SystemCallFailure) {
                try Posix.removeTree(listing.directory)
                removed.append(listing.directory)
            } catch {
                warnings.append("cannot remove old checkpoint: \(error)")
            }
        }
        return removed
    }

    /// Deletes `.tmp-*` entries left by writers that no longer run (their pid ends the name).
    private func removeStaleTemporaries(warnings: inout [String]) {
        guard let names = try? Posix.listDirectory(checkpointsDirectory) else { return }
        for name in names where name.hasPrefix(".tmp-") {
            guard let dash = name.lastIndex(of: "-"), let pid = Int32(name[name.index(after: dash)...]),
                !Posix.processExists(pid)
            else { continue }
            do throws(SystemCallFailure) {
                try Posix.removeTree(checkpointsDirectory + "/" + name)
            } catch {
                warnings.append("cannot remove stale temporary checkpoint: \(error)")
            }
        }
    }
}
