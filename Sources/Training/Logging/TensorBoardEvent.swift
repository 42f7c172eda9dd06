/// The subset of TensorFlow's `Event` protocol buffer that scalar curves use
/// (tensorflow/core/util/event.proto, summary.proto):
///
///     message Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///     message Summary { repeated Value value = 1; }
///     message Summary.Value { string tag = 1; float simple_value = 2; }
package struct TensorBoardEvent: Equatable {
    package var wallTime: Double
    package var step: Int64
    /// Set only in a file's first event (`brain.Event:2`).
    package var fileVersion: String?
    package var scalars: [Scalar]

    package struct Scalar: Equatable {
        package var tag: String
        package var value: Float
        package init(tag: String, value: Float) {
            self.tag = tag
            self.value = value
        }
    }

    /// The version record TensorBoard expects first in every file.
    package static let version = "brain.Event:2"

    package init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [Scalar] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.scalars = scalars
    }

    package func encoded() -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        if step != 0 { event.int64(2, step) }  // proto3 leaves default values out
        if let fileVersion { event.string(3, fileVersion) }
        if !scalars.isEmpty {
            var summary = ProtobufWriter()
            for scalar in scalars {
                var value = ProtobufWriter()
                value.string(1, scalar.tag)
                value.float(2, scalar.value)
                summary.lengthDelimited(1, value.bytes)
            }
            event.lengthDelimited(5, summary.bytes)
        }
        return event.bytes
    }

    /// Decodes an event; fields other than the ones above are skipped, as protobuf readers do.
    package init(decoding bytes: ArraySlice<UInt8>) throws(ProtobufReader.Malformed) {
        self.init(wallTime: 0, step: 0)
        var reader = ProtobufReader(bytes)
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .fixed64(let bits)): wallTime = Double(bitPattern: bits)
            case (2, .varint(let v)): step = Int64(bitPattern: v)
            case (3, .bytes(let s)): fileVersion = String(decoding: s, as: UTF8.self)
            case (5, .bytes(let summary)): scalars += try Self.decodeSummary(summary)
            default: break
            }
        }
    }

    private static func decodeSummary(_ bytes: ArraySlice<UInt8>) throws(ProtobufReader.Malformed) -> [Scalar] {
        var scalars: [Scalar] = []
        var reader = ProtobufReader(bytes)
        while let (field, value) = try reader.next() {
            guard field == 1, case .bytes(let valueBytes) = value else { continue }
            var tag = "", number: Float?
            var valueReader = ProtobufReader(valueBytes)
            while let (f, v) = try valueReader.next() {
                switch (f, v) {
                case (1, .bytes(let s)): tag = String(decoding: s, as: UTF8.self)
                case (2, .fixed32(let bits)): number = Float(bitPattern: bits)
                default: break
                }
            }
            if let number { scalars.append(Scalar(tag: tag, value: number)) }
        }
        return scalars
    }
}
