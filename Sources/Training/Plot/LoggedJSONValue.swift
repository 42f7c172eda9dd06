/// One value of a logged JSON line (`metrics.jsonl`, `valid.jsonl`), read with `JSONDecoder`
/// rather than `JSONSerialization`: on Linux the latter misreads numbers of 16-17 significant
/// digits by a few ulps, and a value read back must be the logged one exactly. Anything that is
/// not a number (null, strings, nested values) is `other`, so that the rest of the line still reads.
package enum LoggedJSONValue: Decodable, Equatable {
    case integer(Int)
    case number(Double)
    case other

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let integer = try? container.decode(Int.self) {
            self = .integer(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .other
        }
    }
}
