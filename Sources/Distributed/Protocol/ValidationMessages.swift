import Training

/// coordinator -> worker: compute these units of the validation that follows `step` (with the
/// weights broadcast for that step, which arrive before this order), then send one
/// `validationPart` per unit. Header: step, rank; flag bit 0: the validation translates the
/// scored sources. Payload: the unit indices (Int64).
package struct ValidationOrder: Sendable, Equatable {
    package var step: Int
    /// The worker's rank.
    package var rank: Int
    /// Whether this validation's units include the scored translations (BLEU, chrF) after the
    /// loss chunks: the worker plans the same `ValidationWork` as the coordinator from it.
    package var translating: Bool
    package var units: [Int]

    package init(step: Int, rank: Int, translating: Bool, units: [Int]) {
        self.step = step
        self.rank = rank
        self.translating = translating
        self.units = units
    }

    init(header: MessageHeader, payload: Frame) throws(ProtocolError) {
        let words = payload.int64Words()
        let step = try header.nonNegative("step", header.step), rank = try header.nonNegative("rank", header.rank)
        if let bad = words.first(where: { $0 < 0 }) {
            throw .invalidField(kind: .validate, field: "unit", value: bad, reason: "is negative")
        }
        self.init(step: step, rank: rank, translating: header.flags & 1 != 0, units: words.map { Int($0) })
    }

    func encode(into header: inout MessageHeader) -> Frame {
        header.payloadType = .int64
        header.step = Int64(step)
        header.rank = Int64(rank)
        header.flags = translating ? 1 : 0
        return Frame(int64Words: units.map { Int64($0) })
    }
}

/// worker -> coordinator: the result of one validation unit. Header: step, rank. Payload (Int64
/// words): the unit, then a tag and the result: tag 0 (loss chunk): tokens, correct, loss sum
/// and NLL sum as Float64 bits, exact decodes; tag 1 (translation batch): the number of
/// translations, then each one's length and token ids.
package struct ValidationPartMessage: Sendable, Equatable {
    package var step: Int
    package var rank: Int
    package var unit: Int
    package var part: ValidationPart

    package init(step: Int, rank: Int, unit: Int, part: ValidationPart) {
        self.step = step
        self.rank = rank
        self.unit = unit
        self.part = part
    }

    private enum Tag: Int64 { case loss = 0, translations = 1 }

    init(header: MessageHeader, payload: Frame) throws(ProtocolError) {
        let kind = MessageKind.validationPart
        func bad(_ field: String, _ value: Int64, _ reason: String) -> ProtocolError {
            .invalidField(kind: kind, field: field, value: value, reason: reason)
        }
        let step = try header.nonNegative("step", header.step), rank = try header.nonNegative("rank", header.rank)
        let words = payload.int64Words()
        guard words.count >= 2 else { throw bad("payload words", Int64(words.count), "is fewer than 2 (unit, tag)") }
        guard words[0] >= 0 else { throw bad("unit", words[0], "is negative") }
        let part: ValidationPart
        switch Tag(rawValue: words[1]) {
        case .loss:
            guard words.count == 7 else { throw bad("payload words", Int64(words.count), "is not 7 for a loss chunk") }
            for (i, name) in [(2, "tokens"), (3, "correct"), (6, "exact")] where words[i] < 0 {
                throw bad(name, words[i], "is negative")
            }
            let stats = LossStatistics(
                lossSum: Double(bitPattern: UInt64(bitPattern: words[4])),
                nllSum: Double(bitPattern: UInt64(bitPattern: words[5])),
                tokens: Int(words[2]), correct: Int(words[3]))
            part = .loss(stats, exact: Int(words[6]))
        case .translations:
            guard words.count >= 3, words[2] >= 0, words[2] <= Int64(words.count - 3) else {
                throw bad("translations", words.count >= 3 ? words[2] : -1, "does not fit the payload")
            }
            var outputs: [[Int32]] = []
            outputs.reserveCapacity(Int(words[2]))
            var at = 3
            for _ in 0..<Int(words[2]) {
                guard at < words.count, words[at] >= 0, words[at] <= Int64(words.count - at - 1) else {
                    throw bad("translation length", at < words.count ? words[at] : -1, "does not fit the payload")
                }
                let length = Int(words[at])
                var ids: [Int32] = []
                ids.reserveCapacity(length)
                for w in words[(at + 1)..<(at + 1 + length)] {
                    guard let id = Int32(exactly: w) else { throw bad("token id", w, "is not a 32-bit token id") }
                    ids.append(id)
                }
                outputs.append(ids)
                at += 1 + length
            }
            guard at == words.count else {
                throw bad(
                    "payload words", Int64(words.count), "has \(words.count - at) word(s) after the last translation")
            }
            part = .translations(outputs)
        case nil:
            throw bad("tag", words[1], "is neither 0 (loss chunk) nor 1 (translation batch)")
        }
        self.init(step: step, rank: rank, unit: Int(words[0]), part: part)
    }

    func encode(into header: inout MessageHeader) -> Frame {
        header.payloadType = .int64
        header.step = Int64(step)
        header.rank = Int64(rank)
        var words: [Int64] = [Int64(unit)]
        switch part {
        case let .loss(stats, exact):
            words += [
                Tag.loss.rawValue, Int64(stats.tokens), Int64(stats.correct),
                Int64(bitPattern: stats.lossSum.bitPattern), Int64(bitPattern: stats.nllSum.bitPattern), Int64(exact),
            ]
        case .translations(let outputs):
            words += [Tag.translations.rawValue, Int64(outputs.count)]
            for ids in outputs {
                words.append(Int64(ids.count))
                words += ids.map { Int64($0) }
            }
        }
        return Frame(int64Words: words)
    }
}

extension Frame {
    /// A frame of little-endian Int64 words.
    convenience init(int64Words words: [Int64]) {
        self.init(byteCount: words.count * 8) { raw in
            for (i, w) in words.enumerated() { raw.storeBytes(of: w.littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
    }

    /// The frame read as little-endian Int64 words (its size is a multiple of 8: `requirePayload`
    /// checked it against the header's element count).
    func int64Words() -> [Int64] {
        withUnsafeBytes { raw in
            (0..<(raw.count / 8)).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        }
    }
}
