import Foundation

/// A checkpoint read from disk whose checksums, state and tensor files were all verified.
package struct LoadedCheckpoint: Sendable {
    package let directory: String
    package let step: Int
    /// `state.json` as written: the caller's object plus `checksums`, `checksum_algorithm`, `format`.
    /// Decode it with `JSONDecoder` (exact 64-bit integers) or `stateObject()`.
    package let state: Data
    package let model: SafetensorsFile
    package let optimizer: SafetensorsFile

    /// `state.json` parsed with `JSONSerialization`.
    package func stateObject() throws(CheckpointError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: state) as? [String: Any] else {
            throw .corrupt(directory: directory, .invalidState("not a JSON object"))
        }
        return object
    }
}

/// The outcome of looking for a checkpoint to resume from.
package struct CheckpointSearch: Sendable {
    /// The newest usable checkpoint, or nil when there is none (a fresh run).
    package let checkpoint: LoadedCheckpoint?
    /// Checkpoints (or the `latest` pointer) passed over, newest first, each with its reason;
    /// the caller prints them as warnings.
    package let skipped: [CheckpointError]
}

extension CheckpointStore {
    /// The checkpoint named by `latest`, or, when that is missing or fails verification, the
    /// newest `step-*` directory that verifies. `.tmp-*` leftovers are never considered.
    package func latestValid() throws(CheckpointError) -> CheckpointSearch {
        let listings = try list()
        var skipped: [CheckpointError] = []
        var tried: String?
        do throws(CheckpointError) {
            if let name = try latestName(hasCheckpoints: !listings.isEmpty) {
                tried = name
                return CheckpointSearch(
                    checkpoint: try Self.load(directory: checkpointsDirectory + "/" + name),
                    skipped: [])
            }
        } catch {
            skipped.append(error)
        }
        for listing in listings.reversed() where listing.directory != checkpointsDirectory + "/" + (tried ?? "") {
            do throws(CheckpointError) {
                return CheckpointSearch(checkpoint: try Self.load(directory: listing.directory), skipped: skipped)
            } catch {
                skipped.append(error)
            }
        }
        return CheckpointSearch(checkpoint: nil, skipped: skipped)
    }

    /// The directory name in `latest`; nil for a run that has no checkpoints yet.
    private func latestName(hasCheckpoints: Bool) throws(CheckpointError) -> String? {
        try Self.pointerName(latestPath, missingIsNil: !hasCheckpoints)
    }

    /// The directory name in `checkpoints/best`; nil when the run has none (no validation yet,
    /// or a run from before best checkpoints). A damaged pointer is an `invalidLatestPointer`
    /// error naming `bestPath`.
    package func bestName() throws(CheckpointError) -> String? {
        try Self.pointerName(bestPath, missingIsNil: true)
    }

    /// The `step-NNNNNNNN` name held by the pointer file at `path` (`latest` or `best`).
    static func pointerName(_ path: String, missingIsNil: Bool) throws(CheckpointError) -> String? {
        let bytes: [UInt8]
        do throws(SystemCallFailure) {
            bytes = try Posix.readFile(path)
        } catch {
            if error.isNotFound && missingIsNil { return nil }
            throw .invalidLatestPointer(path: path, reason: error.isNotFound ? "missing" : error.description)
        }
        let name = String(decoding: bytes.prefix(64), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard bytes.count <= 64, step(fromDirectoryName: name) != nil else {
            throw .invalidLatestPointer(path: path, reason: "does not hold a step-NNNNNNNN directory name")
        }
        return name
    }

    /// Resolves a pointer file (`RUN/checkpoints/latest` or `RUN/checkpoints/best`) to the
    /// checkpoint directory it names, beside it.
    package static func resolvePointer(_ path: String) throws(CheckpointError) -> String {
        guard let name = try pointerName(path, missingIsNil: false) else {
            throw .invalidLatestPointer(path: path, reason: "missing")
        }
        let parent = (path as NSString).deletingLastPathComponent
        return (parent.isEmpty ? "." : parent) + "/" + name
    }

    /// Reads and verifies the checkpoint in `directory` (any path, e.g. for `--resume-from`):
    /// `state.json` parses and matches its own checksum, both safetensors files match theirs and
    /// are well-formed, and the step in the directory name (when it has the standard form)
    /// agrees with `state.json`.
    package static func load(directory: String) throws(CheckpointError) -> LoadedCheckpoint {
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        guard Posix.isDirectory(directory) else { throw .notFound(directory: directory) }

        func read(_ file: String) throws(CheckpointError) -> [UInt8] {
            do throws(SystemCallFailure) {
                return try Posix.readFile(directory + "/" + file)
            } catch {
                throw .corrupt(
                    directory: directory,
                    error.isNotFound ? .missingFile(file) : .unreadableFile(file, reason: error.reason))
            }
        }
        func tensors(_ file: String, checksum expected: String) throws(CheckpointError) -> SafetensorsFile {
            let bytes: FileBytes
            do throws(SystemCallFailure) {
                bytes = try FileBytes(mapping: directory + "/" + file)
            } catch {
                throw .corrupt(
                    directory: directory,
                    error.isNotFound ? .missingFile(file) : .unreadableFile(file, reason: error.reason))
            }
            let actual = CRC32.hex(CRC32.checksum(bytes.buffer))
            guard actual == expected else {
                throw .corrupt(directory: directory, .checksumMismatch(file: file, expected: expected, actual: actual))
            }
            do throws(SafetensorsError) {
                return try SafetensorsFile(storage: bytes, path: directory + "/" + file)
            } catch {
                throw .corrupt(directory: directory, .invalidTensors(file: file, error))
            }
        }

        let stateBytes = try read("state.json")
        let parsed: CheckpointStateFile.Parsed
        do throws(CheckpointDefect) {
            parsed = try CheckpointStateFile.parse(stateBytes)
        } catch {
            throw .corrupt(directory: directory, error)
        }
        let lastComponent = String(
            directory[(directory.lastIndex(of: "/").map { directory.index(after: $0) } ?? directory.startIndex)...])
        let nameStep = step(fromDirectoryName: lastComponent)
        let step: Int
        switch (nameStep, parsed.step) {
        case let (fromName?, fromState?):
            guard fromName == fromState else {
                throw .corrupt(directory: directory, .stepMismatch(directoryStep: fromName, stateStep: fromState))
            }
            step = fromName
        case let (fromName?, nil): step = fromName
        case let (nil, fromState?): step = fromState
        case (nil, nil):
            throw .corrupt(
                directory: directory, .invalidState("no \"step\" field and the directory name is not step-NNNNNNNN"))
        }
        let model = try tensors(CheckpointStateFile.modelFile, checksum: parsed.modelChecksum)
        let optimizer = try tensors(CheckpointStateFile.optimizerFile, checksum: parsed.optimizerChecksum)
        return LoadedCheckpoint(
            directory: directory, step: step, state: Data(stateBytes), model: model, optimizer: optimizer)
    }
}
