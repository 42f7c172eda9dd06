/// Reads the fields of one JSON object of a config, checking type and range of each, and turns
/// every problem into a `ConfigError.invalid` naming the full key path (`training.betas`).
struct ConfigObjectReader {
    let source: String
    /// Path of this object inside the document; empty for the document itself.
    let path: String
    let fields: [String: ConfigJSON]

    /// Fails if `value` is not an object or has a key outside `allowedKeys` (reported in sorted
    /// order, so the same document always gives the same first error).
    init(source: String, path: String, value: ConfigJSON, allowedKeys: [String]) throws {
        self.source = source
        self.path = path
        guard case .object(let fields) = value else {
            let message = "expected an object, found \(value.foundDescription)"
            throw ConfigError.invalid(
                source: source, keyPath: path,
                message: path.isEmpty
                    ? "expected a JSON object at the top level, found \(value.foundDescription)" : message)
        }
        self.fields = fields
        let allowed = Set(allowedKeys)
        for key in fields.keys.sorted() where !allowed.contains(key) {
            let hint: String
            if let suggestion = ConfigKeySuggestion.closest(to: key, in: allowedKeys) {
                hint = "did you mean \(suggestion)?"
            } else {
                hint = "valid keys: " + allowedKeys.sorted().joined(separator: ", ")
            }
            throw ConfigError.invalid(source: source, keyPath: keyPath(key), message: "unknown key (\(hint))")
        }
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError.invalid(source: source, keyPath: keyPath(key), message: message)
    }

    func contains(_ key: String) -> Bool { fields[key] != nil }

    /// The value of a key that has no default.
    func required(_ key: String, _ why: String = "") throws -> ConfigJSON {
        guard let value = fields[key] else {
            throw error(key, "missing required key" + (why.isEmpty ? "" : " (\(why))"))
        }
        return value
    }

    /// A nested object, with its own allowed keys.
    func object(_ key: String, allowedKeys: [String]) throws -> ConfigObjectReader {
        try ConfigObjectReader(source: source, path: keyPath(key), value: required(key), allowedKeys: allowedKeys)
    }

    // MARK: Scalars

    /// An integer at least `minimum`; numbers with a fraction are errors, `4096.0` is accepted.
    func integer(_ key: String, default defaultValue: Int? = nil, minimum: Int, maximum: Int = Int.max) throws -> Int {
        guard let value = fields[key] else {
            guard let defaultValue else { throw error(key, "missing required key") }
            return defaultValue
        }
        let result: Int
        switch value {
        case .integer(let integer):
            guard let exact = Int(exactly: integer) else { throw error(key, "\(integer) is too large") }
            result = exact
        case .unsignedInteger(let integer):
            throw error(key, "\(integer) is too large")
        case .double(let number):
            guard number.rounded(.towardZero) == number else {
                throw error(key, "expected an integer, found \(value.canonicalText)")
            }
            guard let exact = Int(exactly: number) else { throw error(key, "\(value.canonicalText) is too large") }
            result = exact
        default:
            throw error(key, "expected an integer, found \(value.foundDescription)")
        }
        if result < minimum { throw error(key, "\(value.canonicalText) must be at least \(minimum)") }
        if result > maximum { throw error(key, "\(value.canonicalText) must be at most \(maximum)") }
        return result
    }

    /// A non-negative integer over the whole UInt64 range (seeds).
    func unsignedInteger(_ key: String, default defaultValue: UInt64) throws -> UInt64 {
        guard let value = fields[key] else { return defaultValue }
        switch value {
        case .integer(let integer):
            guard integer >= 0 else { throw error(key, "\(integer) must be at least 0") }
            return UInt64(integer)
        case .unsignedInteger(let integer):
            return integer
        case .double(let number):
            guard number.rounded(.towardZero) == number else {
                throw error(key, "expected an integer, found \(value.canonicalText)")
            }
            guard number >= 0 else { throw error(key, "\(value.canonicalText) must be at least 0") }
            guard let exact = UInt64(exactly: number) else {
                throw error(key, "\(value.canonicalText) does not fit in 64 bits")
            }
            return exact
        default:
            throw error(key, "expected an integer, found \(value.foundDescription)")
        }
    }

    /// A finite number representable as Float, checked by `rule` (which returns an error message
    /// for bad values). The message names the value as written.
    func float(_ key: String, default defaultValue: Float, rule: (Double) -> String?) throws -> Float {
        guard let value = fields[key] else { return defaultValue }
        guard let number = value.numericValue else {
            throw error(key, "expected a number, found \(value.foundDescription)")
        }
        return try checkedFloat(number, text: value.canonicalText, key: key, rule: rule)
    }

    func checkedFloat(_ number: Double, text: String, key: String, rule: (Double) -> String?) throws -> Float {
        if let problem = rule(number) { throw error(key, "\(text) \(problem)") }
        let single = Float(number)
        guard single.isFinite else { throw error(key, "\(text) is too large for a 32-bit float") }
        guard single != 0 || number == 0 else { throw error(key, "\(text) is too small for a 32-bit float") }
        return single
    }

    func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let value = fields[key] else { return defaultValue }
        guard case .bool(let flag) = value else {
            throw error(key, "expected true or false, found \(value.foundDescription)")
        }
        return flag
    }

    func string(_ key: String, why: String = "") throws -> String {
        let value = try required(key, why)
        guard case .string(let text) = value else {
            throw error(key, "expected a string, found \(value.foundDescription)")
        }
        guard !text.isEmpty else { throw error(key, "must not be empty") }
        return text
    }

    /// One of an enum's raw values.
    func choice<Choice: RawRepresentable>(_ key: String, default defaultValue: Choice?, among choices: [Choice]) throws
        -> Choice
    where Choice.RawValue == String {
        guard let value = fields[key] else {
            guard let defaultValue else { throw error(key, "missing required key") }
            return defaultValue
        }
        let names = choices.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard case .string(let text) = value else {
            throw error(key, "expected one of \(names), found \(value.foundDescription)")
        }
        if let match = choices.first(where: { $0.rawValue == text }) { return match }
        var message = "\(value.canonicalText) is not one of \(names)"
        if let suggestion = ConfigKeySuggestion.closest(to: text, in: choices.map(\.rawValue)) {
            message += " (did you mean \"\(suggestion)\"?)"
        }
        throw error(key, message)
    }
}

/// Range rules for `ConfigObjectReader.float`; each returns the complaint that follows the value.
enum ConfigRange {
    static func halfOpenUnit(_ x: Double) -> String? { x >= 0 && x < 1 ? nil : "is outside [0, 1)" }
    static func positive(_ x: Double) -> String? { x > 0 ? nil : "must be greater than 0" }
    static func nonNegative(_ x: Double) -> String? { x >= 0 ? nil : "must be at least 0" }
}
