import Foundation
import Training

/// The JSON payloads of `hello` and `welcome`: flat objects of strings and integers.
enum HandshakeJSON {
    enum Value {
        case string(String)
        case int(Int)
        case null
    }

    /// Encodes an object with keys in the given order (infallible, unlike JSONEncoder's API).
    static func encode(_ fields: [(String, Value)]) -> [UInt8] {
        var text = "{"
        for (i, (key, value)) in fields.enumerated() {
            if i > 0 { text += "," }
            text += quoted(key) + ":"
            switch value {
            case .string(let s): text += quoted(s)
            case .int(let n): text += String(n)
            case .null: text += "null"
            }
        }
        return Array((text + "}").utf8)
    }

    private static func quoted(_ s: String) -> String { JSONText.quoted(s) }

    /// A decoded object whose accessors report missing or mistyped fields by name.
    struct Object {
        let kind: MessageKind
        let fields: [String: Any]

        init(_ bytes: [UInt8], kind: MessageKind) throws(ProtocolError) {
            self.kind = kind
            let parsed: Any
            do { parsed = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
                throw .invalidJSON(kind: kind, reason: "not JSON")
            }
            guard let object = parsed as? [String: Any] else {
                throw .invalidJSON(kind: kind, reason: "not a JSON object")
            }
            fields = object
        }

        func string(_ key: String) throws(ProtocolError) -> String {
            guard let value = try optionalString(key) else {
                throw .invalidJSON(kind: kind, reason: "missing field \(key)")
            }
            return value
        }

        func optionalString(_ key: String) throws(ProtocolError) -> String? {
            guard let value = fields[key], !(value is NSNull) else { return nil }
            guard let s = value as? String else { throw .invalidJSON(kind: kind, reason: "\(key) is not a string") }
            return s
        }

        func int(_ key: String) throws(ProtocolError) -> Int {
            guard let value = fields[key] else { throw .invalidJSON(kind: kind, reason: "missing field \(key)") }
            // JSONSerialization gives NSNumbers; booleans are NSNumbers of C type "c" and must not pass.
            guard let number = value as? NSNumber, String(cString: number.objCType) != "c", let n = value as? Int else {
                throw .invalidJSON(kind: kind, reason: "\(key) is not an integer")
            }
            return n
        }
    }
}
