import Foundation
import TensorCore
import TestSupport
import Training
import XCTest

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `transformer plot`'s SVG: valid XML whose curves hold exactly the logged points, a legend
/// naming every run, readable axes; and clear errors for directories that are not runs.
final class TrainingPlotTests: XCTestCase {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("plot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// The elements of an SVG document, by the XML parser (so the file must be well-formed).
    final class Elements: NSObject, XMLParserDelegate {
        var elements: [(name: String, attributes: [String: String], text: String)] = []
        private var open: [Int] = []
        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            open.append(elements.count)
            elements.append((name, attributes, ""))
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            open.removeLast()
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let current = open.last { elements[current].text += string }
        }
    }

    func parse(_ svg: String) throws -> Elements {
        let parser = XMLParser(data: Data(svg.utf8))
        let elements = Elements()
        parser.delegate = elements
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))")
        return elements
    }

    func testRealRunAndASecondRunPlotEveryLoggedPoint() throws {
        let dir = try temporaryDirectory()
        let runDir = dir.appendingPathComponent("copy-run")
        Parallel.threads = 1
        let json = """
            {"name": "plotcopy",
             "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": 40, "warmup_steps": 10, "validate_every": 10,
                          "checkpoint_every": 40, "valid_size": 16, "log_every": 2},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        var options = RunOptions(runDirectory: runDir)
        options.printProgress = false
        try TrainingRun(config: try RunConfig.parse(data: Data(json.utf8), source: "test"), options: options).run()
        let real = try RunMetrics(directory: runDir.path, name: "copy-run")
        XCTAssertEqual(real.skippedLines, [])
        XCTAssertEqual(real.train.map(\.step), Array(stride(from: 2, through: 40, by: 2)))
        XCTAssertEqual(real.valid.map(\.step), [10, 20, 30, 40])
        // A second, shorter run with a name that needs escaping.
        let other = RunMetrics(
            name: "a&b <\"2\">",
            train: [
                (5, ["loss": 3, "lr": 1e-4, "tokens_per_second": 900]),
                (10, ["loss": 2, "lr": 2e-4, "tokens_per_second": 1100]),
            ],
            valid: [(10, ["loss": 2.5, "sequence_accuracy": 0.25])])

        let elements = try parse(TrainingPlot.svg(runs: [real, other]))
        let series = elements.elements.filter { $0.name == "polyline" && $0.attributes["class"] == "series" }
        func points(_ run: String, _ name: String) -> Int? {
            let matching = series.filter { $0.attributes["data-run"] == run && $0.attributes["data-series"] == name }
            XCTAssertLessThanOrEqual(matching.count, 1, "\(run) \(name) drawn twice")
            return matching.first.map { $0.attributes["points"]?.split(separator: " ").count ?? 0 }
        }
        XCTAssertEqual(points("copy-run", "train/loss"), 20)
        XCTAssertEqual(points("copy-run", "train/lr"), 20)
        XCTAssertEqual(points("copy-run", "train/tokens_per_second"), 20)
        XCTAssertEqual(points("copy-run", "valid/loss"), 4)
        XCTAssertEqual(points("copy-run", "valid/sequence_accuracy"), 4)
        XCTAssertEqual(points("a&b <\"2\">", "train/loss"), 2)
        XCTAssertEqual(points("a&b <\"2\">", "valid/sequence_accuracy"), 1)
        XCTAssertEqual(series.count, 10, "no BLEU/chrF panels for toy runs")
        let legend = elements.elements.filter { $0.attributes["class"] == "legend-name" }.map(\.text)
        XCTAssertEqual(legend, ["copy-run", "a&b <\"2\">"])
        let panels = elements.elements.filter { $0.attributes["class"] == "panel" }.compactMap {
            $0.attributes["data-title"]
        }
        XCTAssertEqual(
            panels,
            [
                "Loss (solid: train, dashed: validation)", "Learning rate",
                "Validation sequence accuracy", "Training tokens/s",
            ])
        // Every point lies inside the page.
        let root = try XCTUnwrap(elements.elements.first { $0.name == "svg" })
        let width = try XCTUnwrap(Double(root.attributes["width"] ?? "")),
            height = try XCTUnwrap(Double(root.attributes["height"] ?? ""))
        for s in series {
            for pair in (s.attributes["points"] ?? "").split(separator: " ") {
                let xy = pair.split(separator: ",").compactMap { Double($0) }
                XCTAssertEqual(xy.count, 2)
                XCTAssertTrue((0...width).contains(xy[0]) && (0...height).contains(xy[1]), "\(pair) off the page")
            }
        }
    }

    func testTranslationRunsGetBLEUAndChrFPanels() throws {
        let run = RunMetrics(
            name: "ende", train: [(100, ["loss": 6, "lr": 5e-4, "tokens_per_second": 20000])],
            valid: [(100, ["loss": 5.5, "bleu": 3.25, "chrf": 20.5]), (200, ["loss": 4.5, "bleu": 7.5, "chrf": 31])])
        XCTAssertEqual(
            TrainingPlot.panels(for: [run]).map(\.title),
            [
                "Loss (solid: train, dashed: validation)", "Learning rate", "Validation BLEU", "Validation chrF",
                "Training tokens/s",
            ])
        let elements = try parse(TrainingPlot.svg(runs: [run]))
        XCTAssertEqual(elements.elements.filter { $0.attributes["data-series"] == "valid/bleu" }.count, 1)
    }

    func testAxesHaveRoundTicksAndConsistentLabels() {
        let loss = PlotAxis.log([0.06, 2.9])
        XCTAssertEqual(loss.scale, .log)
        XCTAssertEqual(loss.labels, ["0.1", "0.2", "0.5", "1", "2"])
        XCTAssertEqual(PlotAxis.log([1.5, 1.9]).labels, ["2"])
        XCTAssertEqual(PlotAxis.log([1.1, 3.2]).labels, ["1", "2", "3"])
        let lr = PlotAxis.linear([1e-5, 7e-4])
        XCTAssertEqual(lr.labels, ["0", "2e-4", "4e-4", "6e-4", "8e-4"])
        XCTAssertEqual(PlotAxis.linear([0.5, 0.98]).labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(PlotAxis.linear([3200, 41_000]).labels, ["0", "10k", "20k", "30k", "40k", "50k"])
        XCTAssertEqual(PlotAxis.linear([10, 1000]).labels, ["0", "200", "400", "600", "800", "1000"])
        let flat = PlotAxis.linear([12.5, 12.5], includingZero: false)
        XCTAssertTrue(flat.lower < 12.5 && flat.upper > 12.5 && flat.ticks.count >= 2, "\(flat.ticks)")
        XCTAssertEqual(PlotAxis.linear([]).labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(lr.fraction(0), 0)
        XCTAssertEqual(lr.fraction(8e-4), 1, accuracy: 1e-12)
    }

    func testBadRunDirectoriesAreClearErrorsAndBadLinesAreReported() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try RunMetrics(directory: dir.path + "/missing", name: "x")) { error in
            XCTAssertEqual(error as? PlotError, .missingRunDirectory(dir.path + "/missing"))
        }
        XCTAssertThrowsError(try RunMetrics(directory: dir.path, name: "x")) { error in
            XCTAssertEqual(
                "\(error)", "\(dir.path)/metrics.jsonl: missing or unreadable (is \(dir.path) a run directory?)")
        }
        let metrics = dir.appendingPathComponent("metrics.jsonl")
        try Data().write(to: metrics)
        XCTAssertThrowsError(try RunMetrics(directory: dir.path, name: "x")) { error in
            XCTAssertEqual("\(error)", "\(dir.path)/metrics.jsonl: no logged step yet")
        }
        let lines =
            "{\"step\": 10, \"loss\": 2.5, \"lr\": null}\n{\"step\": 20, \"lo\n[1, 2]\n{\"loss\": 1}\n\n"
            + "{\"step\": 20, \"loss\": 2.25}\n{\"step\": 20, \"loss\": 2.0}\n\u{FF}\u{FE}"
        try Data(lines.utf8).write(to: metrics)
        try Data("{\"step\": 10, \"loss\": 2.75}\nnull\n".utf8).write(to: dir.appendingPathComponent("valid.jsonl"))
        let run = try RunMetrics(directory: dir.path, name: "x")
        XCTAssertEqual(
            run.skippedLines,
            [
                "\(dir.path)/metrics.jsonl line 2: not a JSON object",
                "\(dir.path)/metrics.jsonl line 3: not a JSON object",
                "\(dir.path)/metrics.jsonl line 4: no integer \"step\"",
                "\(dir.path)/metrics.jsonl line 8: not a JSON object",
                "\(dir.path)/valid.jsonl line 2: not a JSON object",
            ])
        XCTAssertEqual(run.series("loss", validation: false).map(\.step), [10, 20])
        XCTAssertEqual(
            run.series("loss", validation: false).map(\.value), [2.5, 2.0], "a repeated step keeps its last line")
        XCTAssertEqual(run.series("lr", validation: false).count, 0)
        XCTAssertEqual(run.series("loss", validation: true).map(\.value), [2.75])
        XCTAssertNoThrow(try parse(TrainingPlot.svg(runs: [run])))
    }

    /// Every plotted value is the logged Double exactly, including those that need 17 significant
    /// digits (Linux's `JSONSerialization` reads most of them a few ulps off).
    func testLoggedNumbersReadBackBitForBit() throws {
        let dir = try temporaryDirectory()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var logged: [Double] = []
        var text = ""
        for step in 1...500 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let value = 0.001 + 0.009 * Double(state >> 11) / Double(1 << 53)
            logged.append(value)
            text += "{\"step\": \(step), \"step_seconds\": \(value), \"tokens\": \(step * 3)}\n"
        }
        try Data(text.utf8).write(to: dir.appendingPathComponent("metrics.jsonl"))
        let run = try RunMetrics(directory: dir.path, name: "x")
        XCTAssertEqual(run.skippedLines, [])
        let read = run.series("step_seconds", validation: false)
        XCTAssertEqual(read.map(\.step), Array(1...500))
        let differing = zip(read, logged).filter { $0.0.value.bitPattern != $0.1.bitPattern }
        XCTAssertEqual(differing.count, 0, "values read back differently, e.g. \(differing.prefix(3).map(\.0.value))")
        let long = logged.filter { "\($0)".count >= 19 }.count
        XCTAssertGreaterThan(long, 100, "most values need 15 or more significant digits")
        XCTAssertEqual(run.series("tokens", validation: false).map(\.value), (1...500).map { Double($0 * 3) })
    }
}
