#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes one TensorBoard event file, `DIR/events.out.tfevents.<unix time>.<host>`, one record per
/// `write` call.
///
/// Each record goes to the kernel with its own `write(2)`, unbuffered, so a killed run keeps every
/// point logged before it died (a record cut short by the kill is dropped on resume, see
/// `discardEvents`). No fsync per record: that only matters for a power cut, and costs a disk flush
/// per logged step.
package final class TensorBoardWriter {
    /// The event file this writer appends to.
    package let path: String
    private let file: Posix.OutputFile

    /// Creates the directory if needed and a new event file in it (a name that is already taken,
    /// e.g. by a run resumed within the same second, gets a `.1`, `.2`... suffix, which sorts after
    /// it as TensorBoard reads files in name order), and writes the version record.
    package init(directory: String, wallTime: Double, host: String = TensorBoardWriter.hostName()) throws {
        try Posix.makeDirectories(directory)
        let base = "\(directory)/events.out.tfevents.\(Int64(wallTime)).\(host)"
        var candidate = base
        var suffix = 0
        while try Posix.fileType(candidate) != nil {
            suffix += 1
            candidate = "\(base).\(suffix)"
        }
        path = candidate
        file = try Posix.OutputFile(creating: candidate)
        try write(TensorBoardEvent(wallTime: wallTime, step: 0, fileVersion: TensorBoardEvent.version))
    }

    package func write(_ event: TensorBoardEvent) throws {
        try file.write(TFRecord.frame(event.encoded()))
    }

    package func close() throws { try file.close() }

    /// This machine's name without any domain part and with characters that are awkward in file
    /// names replaced, or `localhost`.
    package static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let short = name.split(separator: ".").first.map(String.init) ?? ""
        let safe = String(short.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        return safe.isEmpty ? "localhost" : safe
    }

    /// Prepares the event files in `directory` for a run resumed at `step`: the points after it
    /// were logged by the run that stopped and will be logged again, so every file but `keeping`
    /// is rewritten (temporary file + rename, so a crash leaves either version) without events of
    /// a later step. A cut-off last record is dropped too. A damaged file is left as it is.
    /// Returns one note per file changed or left damaged, for the log.
    package static func discardEvents(afterStep step: Int64, in directory: String, keeping: String?) throws -> [String]
    {
        guard Posix.isDirectory(directory) else { return [] }
        var notes: [String] = []
        for name in try Posix.listDirectory(directory).sorted() where name.contains("tfevents") {
            let path = "\(directory)/\(name)"
            guard path != keeping, try Posix.fileType(path) == S_IFREG else { continue }
            let bytes = try Posix.readFile(path)
            let (records, problem) = TFRecord.records(in: bytes)
            if case .corrupt = problem {
                notes.append(
                    "\(path): \(problem.map { "\($0)" } ?? ""); left unchanged, its later points may be duplicated")
                continue
            }
            let kept = records.filter { record in
                // A record that is not an event we can read is not ours to judge: keep it.
                guard let event = try? TensorBoardEvent(decoding: record) else { return true }
                return event.fileVersion != nil || event.step <= step
            }
            guard kept.count < records.count || problem != nil else { continue }
            var out: [UInt8] = []
            for record in kept { out += TFRecord.frame(Array(record)) }
            // No "tfevents" in the temporary name: TensorBoard would read a leftover one.
            let temporary = "\(directory)/.rewrite-\(Posix.processID).tmp"
            try Posix.writeDurably(out, to: temporary)
            try Posix.rename(temporary, path)
            try Posix.syncDirectory(directory)
            notes.append(
                "\(path): dropped \(records.count - kept.count) event(s) after step \(step)"
                    + (problem != nil ? " and an incomplete last record" : "") + " (this run logs them again)")
        }
        return notes
    }
}
