import Foundation

/// Reading and writing the Hugging Face `tokenizers` JSON format.
extension BPETokenizer {
    /// The tokenizer as `tokenizer.json` text: BPE model, Metaspace pre-tokenizer and decoder,
    /// no normalizer, the four special tokens as `added_tokens`, merges as [left, right] pairs.
    public func jsonText() -> String {
        var out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n"
        for (id, special) in Metaspace.specialTokens.enumerated() {
            out +=
                "    {\"id\": \(id), \"content\": \(JSONText.quoted(special)), \"single_word\": false, "
                + "\"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
            out += id + 1 < Metaspace.specialTokens.count ? ",\n" : "\n"
        }
        let metaspace =
            "{\"type\": \"Metaspace\", \"replacement\": \"\u{2581}\", \"prepend_scheme\": \"always\", \"split\": true}"
        out += "  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": \(metaspace),\n  \"post_processor\": null,\n"
        out += "  \"decoder\": \(metaspace),\n"
        out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": \"<unk>\",\n"
        out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
        out += "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {\n"
        for (id, token) in tokens.enumerated() {
            out += "      \(JSONText.quoted(Self.string(token))): \(id)"
            out += id + 1 < tokens.count ? ",\n" : "\n"
        }
        out += "    },\n    \"merges\": [\n"
        for (rank, merge) in merges.enumerated() {
            let left = JSONText.quoted(Self.string(tokens[Int(merge.left)]))
            let right = JSONText.quoted(Self.string(tokens[Int(merge.right)]))
            out += "      [\(left), \(right)]"
            out += rank + 1 < merges.count ? ",\n" : "\n"
        }
        out += "    ]\n  }\n}\n"
        return out
    }

    /// Writes `tokenizer.json` atomically (a temporary file renamed over `path`).
    public func write(toFile path: String) throws(TokenizerError) {
        do {
            try Data(jsonText().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .cannotWrite(path: path, reason: error.localizedDescription)
        }
    }

    /// Reads a tokenizer written by `write(toFile:)`, or a Hugging Face BPE tokenizer with the same
    /// pipeline (Metaspace "▁" always prepended, no normalizer, specials `<pad>` `<s>` `</s>` `<unk>` at
    /// ids 0...3). Anything this implementation would not reproduce exactly is refused with a message.
    public init(contentsOfFile path: String) throws(TokenizerError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .cannotRead(
                path: path,
                reason: FileManager.default.fileExists(atPath: path)
                    ? error.localizedDescription : "no such file")
        }
        try self.init(jsonBytes: Array(data), path: path)
    }

    /// Reads `tokenizer.json` text already in memory; `path` only names it in errors.
    package init(jsonBytes: [UInt8], path: String) throws(TokenizerError) {
        let root: TokenizerJSONValue
        do {
            root = try TokenizerJSONParser.parse(jsonBytes)
        } catch {
            throw .invalidJSON(path: path, offset: error.offset, reason: error.reason)
        }
        self = try TokenizerJSONReader(path: path).tokenizer(from: root)
    }
}

/// Validates a parsed `tokenizer.json` and builds the tokenizer.
private struct TokenizerJSONReader {
    let path: String

    func unsupported(_ what: String) -> TokenizerError { .unsupported(path: path, what: what) }
    func invalid(_ reason: String) -> TokenizerError { .invalidModel(path: path, reason: reason) }

    /// True when `value` is absent, null, or equal to `expected`.
    func isDefault(_ value: TokenizerJSONValue?, _ expected: TokenizerJSONValue) -> Bool {
        guard let value, !value.isNull else { return true }
        switch (value, expected) {
        case let (.bool(a), .bool(b)): return a == b
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        default: return false
        }
    }

    func checkMetaspace(_ value: TokenizerJSONValue?, role: String) throws(TokenizerError) {
        guard let value, case .object = value else { throw unsupported("\(role) must be Metaspace") }
        guard value["type"]?.stringValue == "Metaspace" else {
            throw unsupported("\(role) of type \(value["type"]?.stringValue ?? "?") (only Metaspace)")
        }
        guard isDefault(value["replacement"], .string("\u{2581}")) else {
            throw unsupported("\(role) replacement other than \"\u{2581}\"")
        }
        if let scheme = value["prepend_scheme"]?.stringValue {
            guard scheme == "always" else {
                throw unsupported("\(role) prepend_scheme \"\(scheme)\" (only \"always\")")
            }
        } else if value["add_prefix_space"]?.boolValue == false {
            throw unsupported("\(role) without add_prefix_space")
        }
        guard isDefault(value["split"], .bool(true)) else { throw unsupported("\(role) with split false") }
    }

    func tokenizer(from root: TokenizerJSONValue) throws(TokenizerError) -> BPETokenizer {
        guard case .object = root else { throw invalid("the top level is not an object") }
        if let normalizer = root["normalizer"], !normalizer.isNull {
            throw unsupported("normalizer \(normalizer["type"]?.stringValue ?? "?") (only null)")
        }
        try checkMetaspace(root["pre_tokenizer"], role: "pre_tokenizer")
        if let decoder = root["decoder"], !decoder.isNull { try checkMetaspace(decoder, role: "decoder") }
        guard let model = root["model"], case .object = model else { throw invalid("no \"model\" object") }
        guard isDefault(model["type"], .string("BPE")) else {
            throw unsupported("model type \(model["type"]?.stringValue ?? "?") (only BPE)")
        }
        guard isDefault(model["dropout"], .null) else { throw unsupported("BPE dropout") }
        guard model["unk_token"]?.stringValue == "<unk>" else { throw unsupported("unk_token other than \"<unk>\"") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            guard isDefault(model[key], .string("")) else { throw unsupported("\(key)") }
        }
        for key in ["fuse_unk", "byte_fallback", "ignore_merges"] {
            guard isDefault(model[key], .bool(false)) else { throw unsupported("\(key) true") }
        }
        let tokens = try vocabulary(model["vocab"])
        try checkAddedTokens(root["added_tokens"])
        var idOfToken: [[UInt32]: Int32] = [:]
        for (id, token) in tokens.enumerated() { idOfToken[token] = Int32(id) }
        let merges = try mergeList(model["merges"], idOfToken: idOfToken)
        return BPETokenizer(tokens: tokens, merges: merges)
    }

    func vocabulary(_ value: TokenizerJSONValue?) throws(TokenizerError) -> [[UInt32]] {
        guard let value, case let .object(members) = value else { throw invalid("model.vocab is not an object") }
        var tokens = [[UInt32]?](repeating: nil, count: members.count)
        for member in members {
            let key = member.key, idValue = member.value
            guard let number = idValue.numberValue, number >= 0, number < Double(members.count),
                number == number.rounded()
            else {
                throw invalid("vocab id of \(JSONText.quoted(key)) is not an integer in 0..<\(members.count)")
            }
            let id = Int(number)
            guard tokens[id] == nil else { throw invalid("vocab id \(id) is used twice") }
            tokens[id] = key.unicodeScalars.map(\.value)
        }
        let result = tokens.compactMap { $0 }
        guard result.count == members.count else { throw invalid("vocab ids are not 0..<\(members.count)") }
        for (id, special) in Metaspace.specialTokens.enumerated() {
            guard id < result.count, result[id].elementsEqual(special.unicodeScalars.map(\.value)) else {
                throw unsupported("vocab id \(id) must be \(special)")
            }
        }
        return result
    }

    func checkAddedTokens(_ value: TokenizerJSONValue?) throws(TokenizerError) {
        guard let value, !value.isNull else { return }
        guard case let .array(entries) = value else { throw invalid("added_tokens is not an array") }
        for entry in entries {
            guard let content = entry["content"]?.stringValue, let id = entry["id"]?.numberValue,
                id >= 0, id < Double(Metaspace.specialTokens.count),
                Metaspace.specialTokens[Int(id)] == content
            else {
                throw unsupported(
                    "added token \(entry["content"]?.stringValue ?? "?") (only <pad> <s> </s> <unk> at 0...3)")
            }
            for flag in ["single_word", "lstrip", "rstrip"] where entry[flag]?.boolValue == true {
                throw unsupported("added token \(content) with \(flag) true")
            }
        }
    }

    func mergeList(_ value: TokenizerJSONValue?, idOfToken: [[UInt32]: Int32]) throws(TokenizerError)
        -> [BPETokenizer.Merge]
    {
        guard let value, case let .array(entries) = value else { throw invalid("model.merges is not an array") }
        var merges: [BPETokenizer.Merge] = []
        merges.reserveCapacity(entries.count)
        for (rank, entry) in entries.enumerated() {
            let parts: [String]
            switch entry {
            case let .string(text):
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            case let .array(items): parts = items.compactMap(\.stringValue)
            default: parts = []
            }
            guard parts.count == 2 else { throw invalid("merge \(rank) is not a pair of tokens") }
            let left = parts[0].unicodeScalars.map(\.value), right = parts[1].unicodeScalars.map(\.value)
            guard let l = idOfToken[left], let r = idOfToken[right] else {
                throw invalid("merge \(rank) uses a token that is not in the vocab")
            }
            guard let result = idOfToken[left + right] else {
                throw invalid(
                    "merge \(rank) produces \(JSONText.quoted(parts[0] + parts[1])), which is not in the vocab")
            }
            merges.append(BPETokenizer.Merge(left: l, right: r, result: result))
        }
        return merges
    }
}
