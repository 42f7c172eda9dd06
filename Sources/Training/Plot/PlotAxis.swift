import Foundation

/// One axis of a plot panel: the value range it shows, linear or logarithmic, its tick values
/// and their labels (formatted alike along the axis, so 0.0005 and 0.001 do not mix notations).
package struct PlotAxis {
    package enum Scale: Equatable { case linear, log }
    package let scale: Scale
    package let lower: Double
    package let upper: Double
    package let ticks: [Double]
    package let labels: [String]

    /// A linear axis over `values` that starts at zero (rates, accuracies, BLEU: zero is their
    /// natural baseline) and ends at a round number.
    package static func linear(_ values: [Double], includingZero: Bool = true) -> PlotAxis {
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if includingZero {
            lo = Swift.min(lo, 0)
            hi = Swift.max(hi, 0)
        }
        if hi - lo < 1e-12 * Swift.max(abs(hi), 1) {
            hi = lo == 0 ? 1 : lo + abs(lo) * 0.5
            if lo != 0 { lo -= abs(lo) * 0.5 }
        }
        let step = niceStep((hi - lo) / 5)
        let lower = (lo / step).rounded(.down) * step, upper = (hi / step).rounded(.up) * step
        var ticks: [Double] = []
        var i = (lower / step).rounded()
        while i * step <= upper + step * 1e-9 {
            ticks.append(i * step == 0 ? 0 : i * step)
            i += 1
        }
        return PlotAxis(
            scale: .linear, lower: lower, upper: upper, ticks: ticks, labels: linearLabels(ticks, step: step))
    }

    /// A logarithmic axis over positive `values` (losses from several nats down to hundredths),
    /// padded a little, with ticks at 1-2-5 (or every integer multiple when the range is less than
    /// a decade, or whole decades when it spans many).
    package static func log(_ values: [Double]) -> PlotAxis {
        let positive = values.filter { $0 > 0 }
        let lo = (positive.min() ?? 1) / 1.15, hi = (positive.max() ?? 10) * 1.15
        func ticks(_ mantissas: [Double]) -> [Double] {
            var out: [Double] = []
            for exponent in Int(log10(lo).rounded(.down))...Int(log10(hi).rounded(.up)) {
                for m in mantissas {
                    let v = m * pow(10, Double(exponent))
                    if v >= lo && v <= hi { out.append(v) }
                }
            }
            return out
        }
        var chosen = ticks([1, 2, 5])
        if chosen.count < 3 { chosen = ticks([1, 2, 3, 4, 5, 6, 7, 8, 9]) }
        if chosen.count > 9 { chosen = ticks([1]) }
        let labels = chosen.map { formatted($0, significant: 3) }
        return PlotAxis(scale: .log, lower: lo, upper: hi, ticks: chosen, labels: labels)
    }

    /// Where `value` falls, from 0 (lower end) to 1 (upper end).
    package func fraction(_ value: Double) -> Double {
        switch scale {
        case .linear: return (value - lower) / (upper - lower)
        case .log: return (log10(Swift.max(value, lower)) - log10(lower)) / (log10(upper) - log10(lower))
        }
    }

    /// 1, 2, 2.5 or 5 times a power of ten, the nearest at or above `rough`.
    private static func niceStep(_ rough: Double) -> Double {
        let magnitude = pow(10, log10(rough).rounded(.down))
        for m in [1.0, 2, 2.5, 5, 10] where m * magnitude >= rough * 0.999 { return m * magnitude }
        return 10 * magnitude
    }

    /// Labels for evenly spaced ticks: thousands as "k" and millions as "M", tiny steps in
    /// scientific notation, otherwise as many decimals as the step needs.
    private static func linearLabels(_ ticks: [Double], step: Double) -> [String] {
        let largest = ticks.map(abs).max() ?? 0
        if largest >= 1e6 {
            return ticks.map { trimmed($0 / 1e6, decimals: digitsAfterPoint(step / 1e6)) + ($0 == 0 ? "" : "M") }
        }
        if largest >= 1e4 {
            return ticks.map { trimmed($0 / 1e3, decimals: digitsAfterPoint(step / 1e3)) + ($0 == 0 ? "" : "k") }
        }
        if step < 1e-3 { return ticks.map { $0 == 0 ? "0" : scientific($0) } }
        return ticks.map { $0 == 0 ? "0" : trimmed($0, decimals: digitsAfterPoint(step)) }
    }

    /// Decimal digits needed to write multiples of `step` exactly (0.25 -> 2, 0.5 -> 1, 20 -> 0).
    private static func digitsAfterPoint(_ step: Double) -> Int {
        var digits = 0
        var scaled = step
        while digits < 8 && abs(scaled - scaled.rounded()) > 1e-6 * Swift.max(1, abs(scaled)) {
            scaled *= 10
            digits += 1
        }
        return digits
    }

    private static func trimmed(_ value: Double, decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }

    /// "5e-4", "1.5e-5".
    private static func scientific(_ value: Double) -> String {
        let exponent = Int(log10(abs(value)).rounded(.down))
        let mantissa = value / pow(10, Double(exponent))
        return "\(formatted(mantissa, significant: 2))e\(exponent)"
    }

    /// `value` with at most `significant` digits and no trailing zeros ("0.05", "2", "1.5").
    package static func formatted(_ value: Double, significant: Int) -> String {
        if value == 0 { return "0" }
        if abs(value) < 1e-3 || abs(value) >= 1e6 { return scientific(value) }
        let decimals = Swift.max(0, significant - 1 - Int(log10(abs(value)).rounded(.down)))
        var s = String(format: "%.\(decimals)f", value)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }
}
