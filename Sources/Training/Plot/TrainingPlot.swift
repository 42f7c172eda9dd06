import Foundation

/// Draws the curves of one or more runs as one SVG: loss (train solid, validation dashed; log
/// scale), learning rate, the validation metrics the runs logged (BLEU and chrF for translation,
/// sequence accuracy for the toy tasks), and training tokens/s, all against step, one colour per
/// run with a legend.
///
/// Every curve is one `<polyline class="series" data-run=... data-series=...>` with one point per
/// logged step that has a value, so tests (and scripts) can read the data back.
package enum TrainingPlot {
    /// One panel: a title and the curves drawn in it (`key` of metrics.jsonl or valid.jsonl).
    package struct Panel {
        package var title: String
        package var curves: [(key: String, validation: Bool)]
        package var logScale: Bool
    }

    /// The panels worth drawing for these runs: metrics no run logged get no panel.
    package static func panels(for runs: [RunMetrics]) -> [Panel] {
        func logged(_ key: String, validation: Bool) -> Bool {
            runs.contains { !$0.series(key, validation: validation).isEmpty }
        }
        var panels = [
            Panel(
                title: "Loss (solid: train, dashed: validation)",
                curves: [("loss", false), ("loss", true)], logScale: true),
            Panel(title: "Learning rate", curves: [("lr", false)], logScale: false),
        ]
        for (key, title) in [
            ("bleu", "Validation BLEU"), ("chrf", "Validation chrF"),
            ("sequence_accuracy", "Validation sequence accuracy"),
        ] where logged(key, validation: true) {
            panels.append(Panel(title: title, curves: [(key, true)], logScale: false))
        }
        panels.append(Panel(title: "Training tokens/s", curves: [("tokens_per_second", false)], logScale: false))
        return panels
    }

    /// Colour-blind-friendly palette (Okabe-Ito), repeated beyond eight runs.
    static let colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    // Geometry in px.
    static let width = 1200.0, columns = 2, panelHeight = 300.0
    static let margin = (left: 72.0, right: 24.0, top: 34.0, bottom: 48.0)
    static let legendRowHeight = 20.0, fontSize = 12.0

    /// Rough width of `text` at `size` px in a sans-serif font (wide enough not to overlap).
    static func textWidth(_ text: String, size: Double = fontSize) -> Double { Double(text.count) * size * 0.62 }

    package static func svg(runs: [RunMetrics]) -> String {
        let panels = panels(for: runs)
        // Legend rows: entries left to right, wrapping at the page width.
        var legend: [(x: Double, row: Int, name: String, colour: String)] = []
        var x = 16.0, row = 0
        for (index, run) in runs.enumerated() {
            let entryWidth = 30 + textWidth(run.name) + 24
            if x + entryWidth > width - 16 && x > 16 {
                x = 16
                row += 1
            }
            legend.append((x, row, run.name, colours[index % colours.count]))
            x += entryWidth
        }
        let header = 36 + Double(row + 1) * legendRowHeight + 8
        let rows = (panels.count + columns - 1) / columns
        let height = header + Double(rows) * panelHeight + 8
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" viewBox="0 0 \(n(width)) \(n(height))" \
            font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="\(n(fontSize))">
            <rect x="0" y="0" width="\(n(width))" height="\(n(height))" fill="#ffffff"/>
            <text x="16" y="24" font-size="16" font-weight="bold">Training curves (\(runs.count) run\(runs.count == 1 ? "" : "s"))</text>

            """
        out += "<g class=\"legend\">\n"
        for entry in legend {
            let y = 36 + Double(entry.row) * legendRowHeight + legendRowHeight / 2
            out +=
                "<line x1=\"\(n(entry.x))\" y1=\"\(n(y))\" x2=\"\(n(entry.x + 24))\" y2=\"\(n(y))\" stroke=\"\(entry.colour)\" stroke-width=\"3\"/>"
            out +=
                "<text class=\"legend-name\" x=\"\(n(entry.x + 30))\" y=\"\(n(y + 4))\">\(escaped(entry.name))</text>\n"
        }
        out += "</g>\n"
        let steps = runs.flatMap { $0.train.map(\.step) + $0.valid.map(\.step) }
        let xAxis = PlotAxis.linear(steps.map(Double.init))
        for (index, panel) in panels.enumerated() {
            let left = Double(index % columns) * (width / Double(columns))
            let top = header + Double(index / columns) * panelHeight
            out += drawPanel(panel, runs: runs, xAxis: xAxis, left: left, top: top)
        }
        return out + "</svg>\n"
    }

    private static func drawPanel(_ panel: Panel, runs: [RunMetrics], xAxis: PlotAxis, left: Double, top: Double)
        -> String
    {
        let plotLeft = left + margin.left, plotRight = left + width / Double(columns) - margin.right
        let plotTop = top + margin.top, plotBottom = top + panelHeight - margin.bottom
        let values = runs.flatMap { run in
            panel.curves.flatMap { run.series($0.key, validation: $0.validation).map(\.value) }
        }
        let useLog = panel.logScale && !values.isEmpty && values.allSatisfy { $0 > 0 }
        let yAxis = useLog ? PlotAxis.log(values) : PlotAxis.linear(values)
        func px(_ step: Int) -> Double { plotLeft + xAxis.fraction(Double(step)) * (plotRight - plotLeft) }
        func py(_ value: Double) -> Double { plotBottom - yAxis.fraction(value) * (plotBottom - plotTop) }

        let title = panel.title + (useLog ? " [log scale]" : "")
        var out = "<g class=\"panel\" data-title=\"\(escaped(panel.title))\">\n"
        out +=
            "<text x=\"\(n(plotLeft))\" y=\"\(n(top + 20))\" font-size=\"14\" font-weight=\"bold\">\(escaped(title))</text>\n"
        // Grid and tick labels.
        for (tick, label) in zip(yAxis.ticks, yAxis.labels) {
            let y = py(tick)
            out +=
                "<line x1=\"\(n(plotLeft))\" y1=\"\(n(y))\" x2=\"\(n(plotRight))\" y2=\"\(n(y))\" stroke=\"#e4e4e4\"/>"
            out +=
                "<text x=\"\(n(plotLeft - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\" fill=\"#333\">\(escaped(label))</text>\n"
        }
        for (tick, label) in zip(xAxis.ticks, xAxis.labels) {
            let x = plotLeft + xAxis.fraction(tick) * (plotRight - plotLeft)
            out +=
                "<line x1=\"\(n(x))\" y1=\"\(n(plotTop))\" x2=\"\(n(x))\" y2=\"\(n(plotBottom))\" stroke=\"#f0f0f0\"/>"
            out +=
                "<text x=\"\(n(x))\" y=\"\(n(plotBottom + 16))\" text-anchor=\"middle\" fill=\"#333\">\(escaped(label))</text>\n"
        }
        out +=
            "<rect x=\"\(n(plotLeft))\" y=\"\(n(plotTop))\" width=\"\(n(plotRight - plotLeft))\" height=\"\(n(plotBottom - plotTop))\" fill=\"none\" stroke=\"#888\"/>\n"
        out +=
            "<text x=\"\(n((plotLeft + plotRight) / 2))\" y=\"\(n(plotBottom + 36))\" text-anchor=\"middle\" fill=\"#333\">step</text>\n"
        if values.isEmpty {
            out +=
                "<text x=\"\(n((plotLeft + plotRight) / 2))\" y=\"\(n((plotTop + plotBottom) / 2))\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n"
        }
        // Curves: validation dashed with a marker per point (validations are sparse).
        for (index, run) in runs.enumerated() {
            let colour = colours[index % colours.count]
            for curve in panel.curves {
                let points = run.series(curve.key, validation: curve.validation)
                guard !points.isEmpty else { continue }
                let name = (curve.validation ? "valid/" : "train/") + curve.key
                let coordinates = points.map { "\(n(px($0.step))),\(n(py($0.value)))" }.joined(separator: " ")
                out +=
                    "<polyline class=\"series\" data-run=\"\(escaped(run.name))\" data-series=\"\(name)\" "
                    + "data-points=\"\(points.count)\" points=\"\(coordinates)\" fill=\"none\" stroke=\"\(colour)\" "
                    + "stroke-width=\"\(curve.validation ? "2" : "1.6")\" stroke-linejoin=\"round\""
                    + (curve.validation ? " stroke-dasharray=\"6 4\"" : "") + "/>\n"
                if curve.validation || points.count <= 2 {
                    out += "<g fill=\"\(colour)\">"
                    for p in points { out += "<circle cx=\"\(n(px(p.step)))\" cy=\"\(n(py(p.value)))\" r=\"3\"/>" }
                    out += "</g>\n"
                }
            }
        }
        return out + "</g>\n"
    }

    /// A coordinate with at most two decimals.
    private static func n(_ value: Double) -> String {
        var s = String(format: "%.2f", value)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s == "-0" ? "0" : s
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
