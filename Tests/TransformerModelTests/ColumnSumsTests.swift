import CKernels
import TensorCore
import TransformerModel
import XCTest

/// `Linear.columnSums` (`ckernels_column_sums`, the bias gradient): each column's rows added in
/// order onto what is there, so any column split, thread count or CPU path gives the plain loop's bits.
final class ColumnSumsTests: XCTestCase {
    func testMatchesInOrderSumForEveryColumnBlockAndSplit() {
        for (rows, columns) in [(1, 1), (3, 7), (5, 8), (64, 33), (17, 100), (2048, 256)] {
            let m = randomValues(rows * columns, seed: 41), start = randomValues(columns, seed: 42)
            var want = start
            for c in 0..<columns {
                for r in 0..<rows { want[c] += m[r * columns + c] }
            }
            var whole = start
            ckernels_column_sums(m, Int64(rows), Int64(columns), 0, Int64(columns), &whole)
            XCTAssertEqual(whole.map(\.bitPattern), want.map(\.bitPattern), "\(rows)x\(columns)")
            // Pieces that start and end off the 8- and 32-column blocks.
            var pieces = start
            let cuts = [0] + [3, 11, 40, 77].filter { $0 < columns } + [columns]
            for (a, b) in zip(cuts, cuts.dropFirst()) {
                ckernels_column_sums(m, Int64(rows), Int64(columns), Int64(a), Int64(b), &pieces)
            }
            XCTAssertEqual(pieces.map(\.bitPattern), want.map(\.bitPattern), "\(rows)x\(columns) in pieces")
            let saved = Parallel.threads
            defer { Parallel.threads = saved }
            for threads in [1, 2] {
                Parallel.threads = threads
                var viaLinear = start
                Linear.columnSums(m, rows: rows, columns: columns, into: &viaLinear)
                XCTAssertEqual(
                    viaLinear.map(\.bitPattern), want.map(\.bitPattern), "\(rows)x\(columns), \(threads) threads")
            }
        }
    }
}
