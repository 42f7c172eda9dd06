/// Why a corpus metric could not be computed.
public enum MetricsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Hypotheses and references must pair up line by line.
    case lineCountMismatch(hypotheses: Int, references: Int)

    /// The message printed to the user.
    public var description: String {
        switch self {
        case let .lineCountMismatch(h, r):
            return "hypotheses and references differ in line count (\(h) hypotheses, \(r) references); "
                + "each hypothesis line must have exactly one reference line"
        }
    }
}

/// Checks that hypotheses and references pair up (the non-throwing scores pair them like Python's
/// `zip`, i.e. ignore the extra lines of the longer list, as the sacrebleu Python API does).
@inline(__always)
func checkLineCounts(_ hypotheses: [String], _ references: [String]) throws(MetricsError) {
    guard hypotheses.count == references.count else {
        throw .lineCountMismatch(hypotheses: hypotheses.count, references: references.count)
    }
}
