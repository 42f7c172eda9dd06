import Foundation

/// A JSON value as the config loader sees it. JSONSerialization hands back `Any` with booleans and
/// numbers both as NSNumber; converting once into this enum keeps "is this a bool, an integer or a
/// fraction?" in one place, and gives a serialisation that is identical on every platform (the
/// config hash must match between a macOS coordinator and Linux workers).
enum ConfigJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// Written without a fraction or exponent and representable as Int64.
    case integer(Int64)
    /// Written without a fraction or exponent, above Int64.max (only seeds can be this large).
    case unsignedInteger(UInt64)
    /// Written with a fraction or exponent, or too large for any integer type.
    case double(Double)
    case string(String)
    case array([ConfigJSON])
    case object([String: ConfigJSON])

    /// Converts JSONSerialization's output; nil for anything JSONSerialization never produces.
    init?(foundationObject value: Any) {
        switch value {
        case is NSNull:
            self = .null
        case let number as NSNumber:
            self = ConfigJSON(number: number)
        case let string as String:
            self = .string(string)
        case let array as [Any]:
            var items: [ConfigJSON] = []
            items.reserveCapacity(array.count)
            for element in array {
                guard let item = ConfigJSON(foundationObject: element) else { return nil }
                items.append(item)
            }
            self = .array(items)
        case let dictionary as [String: Any]:
            var fields: [String: ConfigJSON] = [:]
            for (key, element) in dictionary {
                guard let item = ConfigJSON(foundationObject: element) else { return nil }
                fields[key] = item
            }
            self = .object(fields)
        default:
            return nil
        }
    }

    private init(number: NSNumber) {
        // Booleans are a distinct NSNumber subclass on both Darwin and Linux Foundation.
        if ObjectIdentifier(type(of: number)) == ConfigJSON.booleanClass {
            self = .bool(number.boolValue)
            return
        }
        switch String(cString: number.objCType) {
        case "c", "C", "s", "S", "i", "I", "l", "L", "q":
            self = .integer(number.int64Value)
        case "Q":
            let value = number.uint64Value
            self = value <= UInt64(Int64.max) ? .integer(Int64(value)) : .unsignedInteger(value)
        default:
            self = .double(number.doubleValue)
        }
    }

    private static let booleanClass = ObjectIdentifier(type(of: NSNumber(value: true)))

    /// The value as a number, for range checks; nil for non-numbers.
    var numericValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .unsignedInteger(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// "a string", "an array", ... for "expected X, found Y" messages; numbers and short scalars
    /// are shown literally because the literal is what the user has to fix.
    var foundDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer, .unsignedInteger, .double: return canonicalText
        case .string:
            let text = canonicalText
            return text.count <= 40 ? "the string \(text)" : "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    // MARK: Canonical text

    /// Compact JSON with object keys sorted by their UTF-8 bytes and numbers in Swift's shortest
    /// round-trip form, so equal documents give equal bytes regardless of key order or spacing.
    var canonicalText: String {
        var output = ""
        write(to: &output)
        return output
    }

    private func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let value): output += String(value)
        case .unsignedInteger(let value): output += String(value)
        case .double(let value): output += value.description
        case .string(let value): ConfigJSON.writeString(value, to: &output)
        case .array(let items):
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += "," }
                item.write(to: &output)
            }
            output += "]"
        case .object(let fields):
            output += "{"
            let keys = fields.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if index > 0 { output += "," }
                ConfigJSON.writeString(key, to: &output)
                output += ":"
                fields[key]?.write(to: &output)
            }
            output += "}"
        }
    }

    private static func writeString(_ value: String, to output: inout String) { output += JSONText.quoted(value) }
}
