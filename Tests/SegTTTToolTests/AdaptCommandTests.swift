import Foundation
import SegTTT
import SegTTTReports
import TestSupport
import XCTest

@testable import SegTTTTool

/// `segttt adapt` and `segttt compare` end to end on the built-in model and streams.
final class AdaptCommandTests: ConfiguredTestCase {
    func adaptArguments(model: URL, output: URL, frames: Int = 6, extra: [String] = []) -> [String] {
        [
            "adapt", "--model", "espnet", "--checkpoint", model.path, "--dataset", "synthetic:dusk:\(frames)",
            "--method", "ocl", "--threads", "1", "--output", output.path,
        ] + extra
    }

    func testAdaptWritesEveryArtefact() throws {
        let model = try shippedModel()
        let output = try temporaryFolder(self).appendingPathComponent("run")
        XCTAssertNil(runTool(adaptArguments(model: model, output: output, extra: ["--overlays"])))

        let metrics = try RunMetrics.read(output.appendingPathComponent("metrics.json"))
        XCTAssertEqual(metrics.frames, 6)
        XCTAssertEqual(metrics.method, "ocl")
        XCTAssertEqual(metrics.classes.map(\.name), SyntheticStreets.classes)
        XCTAssertEqual(metrics.confusionMatrix.count, 8)
        XCTAssertGreaterThan(metrics.meanIoU, 0)

        let rows = try FrameLog.read(output.appendingPathComponent("frames.csv"))
        XCTAssertEqual(rows.map { $0["frame"] }, (0..<6).map(String.init))
        XCTAssertNotNil(rows.last?["pos"].flatMap(Double.init))
        XCTAssertEqual(
            rows.last?["running_miou"].flatMap(Double.init) ?? -1, metrics.meanIoU, accuracy: 1e-3)

        let predictions = try FileManager.default.contentsOfDirectory(atPath: output.appendingPathComponent("predictions").path)
        XCTAssertEqual(predictions.count, 6)
        let image = try ImageIO.readImage(output.appendingPathComponent("predictions").appendingPathComponent(predictions[0]))
        XCTAssertEqual(image.shape, [3, 96, 128])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output.appendingPathComponent("overlays").path).count, 6)

        let svg = try String(contentsOf: output.appendingPathComponent("running-miou.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("<svg") && svg.contains("polyline"))

        let written = try RunConfiguration(RunConfiguration.read(output.appendingPathComponent("config.json")))
        XCTAssertEqual(written.method, AdaptationConfig.defaults(for: .ocl, preset: .recommended))
        XCTAssertEqual(written.settings.method, "ocl")
        XCTAssertEqual(written.settings.preset, .recommended)
    }

    func testConfigFileGivesTheSameRunAsFlags() throws {
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        let first = folder.appendingPathComponent("flags")
        XCTAssertNil(runTool(adaptArguments(model: model, output: first, frames: 3, extra: ["--no-predictions"])))
        let second = folder.appendingPathComponent("config")
        XCTAssertNil(
            runTool([
                "adapt", "--config", first.appendingPathComponent("config.json").path, "--output", second.path,
            ]))
        let a = try RunMetrics.read(first.appendingPathComponent("metrics.json"))
        let b = try RunMetrics.read(second.appendingPathComponent("metrics.json"))
        XCTAssertEqual(a.confusionMatrix, b.confusionMatrix)
    }

    func testResumedRunEndsWithTheUninterruptedNumbers() throws {
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        let whole = folder.appendingPathComponent("whole")
        XCTAssertNil(runTool(adaptArguments(model: model, output: whole, frames: 8, extra: ["--no-predictions"])))
        // Stop after 3 frames (the state is saved at the end), then continue to the end.
        let parts = folder.appendingPathComponent("parts")
        XCTAssertNil(
            runTool(adaptArguments(model: model, output: parts, frames: 8, extra: ["--no-predictions", "--limit", "3"])))
        XCTAssertNil(runTool(adaptArguments(model: model, output: parts, frames: 8, extra: ["--no-predictions", "--resume"])))
        let a = try RunMetrics.read(whole.appendingPathComponent("metrics.json"))
        let b = try RunMetrics.read(parts.appendingPathComponent("metrics.json"))
        XCTAssertEqual(b.frames, 8)
        XCTAssertEqual(a.confusionMatrix, b.confusionMatrix)
        XCTAssertEqual(try FrameLog.read(parts.appendingPathComponent("frames.csv")).count, 8)
    }

    func testAnExistingRunIsNeverOverwritten() throws {
        let model = try shippedModel()
        let output = try temporaryFolder(self).appendingPathComponent("run")
        XCTAssertNil(runTool(adaptArguments(model: model, output: output, frames: 2, extra: ["--no-predictions"])))
        let (message, code) = report(runTool(adaptArguments(model: model, output: output, frames: 2)))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("--resume"), message)
        let (other, otherCode) = report(
            runTool(adaptArguments(model: model, output: output, frames: 2, extra: ["--lr", "0.1", "--resume"])))
        XCTAssertEqual(otherCode, 1)
        XCTAssertTrue(other.contains("lr"), other)
    }

    /// A run saved before presets existed ran the published settings: resuming it under the
    /// recommended preset would change its numbers, so it is refused with the keys that differ.
    func testARunSavedBeforePresetsResumesOnlyWithThePublishedPreset() throws {
        let model = try shippedModel()
        let output = try temporaryFolder(self).appendingPathComponent("run")
        let published = ["--no-predictions", "--preset", "published"]
        XCTAssertNil(runTool(adaptArguments(model: model, output: output, frames: 4, extra: published + ["--limit", "2"])))
        let configURL = output.appendingPathComponent("config.json")
        var old = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        XCTAssertTrue(old["max-grad-norm"] is NSNull)
        old["preset"] = nil
        try JSONSerialization.data(withJSONObject: old).write(to: configURL)

        let (message, code) = report(runTool(adaptArguments(model: model, output: output, frames: 4, extra: ["--resume"])))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("max-grad-norm") && message.contains("reset-threshold"), message)
        XCTAssertNil(runTool(adaptArguments(model: model, output: output, frames: 4, extra: published + ["--resume"])))
        XCTAssertEqual(try RunMetrics.read(output.appendingPathComponent("metrics.json")).frames, 4)
    }

    func testDiagnosticsHaveOneLinePerFrameWithTheMonitorsMeasure() throws {
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        func lines(_ extra: [String]) throws -> [[String: Any]] {
            let output = folder.appendingPathComponent(extra.joined())
            XCTAssertNil(runTool(adaptArguments(model: model, output: output, frames: 3, extra: ["--no-predictions", "--diagnostics"] + extra)))
            let text = try String(contentsOf: output.appendingPathComponent("diagnostics.jsonl"), encoding: .utf8)
            return try text.split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
        let recommended = try lines([])
        XCTAssertEqual(recommended.compactMap { $0["frame"] as? Int }, [0, 1, 2])
        for line in recommended {
            let histogram = try XCTUnwrap(line["histogram"] as? [Double])
            XCTAssertEqual(histogram.reduce(0, +), 1, accuracy: 1e-9)
            let disagreement = try XCTUnwrap(line["disagreement"] as? Double, "the recommended preset monitors drift")
            XCTAssertTrue((0...1).contains(disagreement))
            XCTAssertFalse(try XCTUnwrap(line["gradient_norms"] as? [String: Double]).isEmpty)
        }
        XCTAssertEqual(recommended[0]["disagreement"] as? Double, 0, "frame 0 meets the source weights")
        XCTAssertTrue(try lines(["--preset", "published"]).allSatisfy { $0["disagreement"] == nil })
    }

    func testCompareWritesOneTableAndOnePlot() throws {
        let model = try shippedModel()
        let output = try temporaryFolder(self).appendingPathComponent("compare")
        XCTAssertNil(
            runTool([
                "compare", "--methods", "source,bn-prior", "--model", "espnet", "--checkpoint", model.path,
                "--dataset", "synthetic:fog:3", "--threads", "1", "--no-predictions", "--output", output.path,
            ]))
        let table = try String(contentsOf: output.appendingPathComponent("comparison.md"), encoding: .utf8)
        let rows = table.split(separator: "\n").filter { $0.hasPrefix("| source ") || $0.hasPrefix("| bn-prior ") }
        XCTAssertEqual(rows.count, 2, table)
        let svg = try String(contentsOf: output.appendingPathComponent("running-miou.svg"), encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        for method in ["source", "bn-prior"] {
            XCTAssertTrue(
                FileManager.default.fileExists(atPath: output.appendingPathComponent("\(method)/metrics.json").path))
        }
    }

    /// A schedule of two domains played twice: one table per domain and per round in
    /// comparison.md, and the same figures in each run's metrics.json.
    func testCompareOnAScheduleInRoundsWritesTablesPerDomainAndRound() throws {
        let model = try shippedModel()
        let output = try temporaryFolder(self).appendingPathComponent("rounds")
        XCTAssertNil(
            runTool([
                "compare", "--methods", "bn-prior,tent", "--model", "espnet", "--checkpoint", model.path,
                "--dataset", "synthetic:fog:4", "--corruption", "gaussian_noise:2@2,contrast:2@2", "--rounds", "2",
                "--threads", "1", "--no-predictions", "--output", output.path,
            ]))
        let metrics = try RunMetrics.read(output.appendingPathComponent("tent/metrics.json"))
        XCTAssertEqual(metrics.frames, 8)
        XCTAssertEqual(metrics.domains?.map(\.name), ["gaussian_noise:2", "contrast:2"])
        XCTAssertEqual(metrics.rounds?.map(\.name), ["round 1", "round 2"])
        let pixels = (metrics.rounds ?? []).map(\.pixels).reduce(0, +)
        XCTAssertEqual(pixels, metrics.confusionMatrix.flatMap { $0 }.reduce(0, +))
        XCTAssertNotEqual(metrics.rounds?[0].meanIoU, metrics.rounds?[1].meanIoU, "round 2 meets adapted weights")
        let table = try String(contentsOf: output.appendingPathComponent("comparison.md"), encoding: .utf8)
        XCTAssertTrue(table.contains("## mIoU (%) per domain") && table.contains("## mIoU (%) per round"), table)
        let headers = table.split(separator: "\n").filter { $0.hasPrefix("| method") }.map {
            $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        XCTAssertEqual(headers.dropFirst(), [["method", "gaussian_noise:2", "contrast:2"], ["method", "round 1", "round 2"]], table)
    }
}
