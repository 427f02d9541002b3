import Foundation
import SegTTT
import SegTTTReports
import TestSupport
import Torch
import TorchNN
import XCTest

@testable import SegTTTTool

/// A method written outside the package, as a user would: it maximises the largest class
/// probability per pixel on BatchNorm's affine parameters, with SegTTT's gradient step.
final class ConfidenceMaximisation: TestTimeMethod {
    let model: any SegmentationModel
    let config: AdaptationConfig
    let source: Snapshot
    let gradientStep: GradientStep?

    static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.learningRate = 1e-2
        settings.optimizer = .adam
        settings.parameters = .batchNormAffine
        return MethodEntry(
            name: "test-confidence", summary: "Maximises the largest class probability (a test's own method).",
            type: ConfidenceMaximisation.self, lossTerms: ["loss", "confidence"], settings: settings)
    }()

    init(model: any SegmentationModel, config: AdaptationConfig) throws {
        self.model = model
        self.config = config
        let adapted = try model.prepareForAdaptation(statistics: .batch, adapting: config.parameters)
        source = try Snapshot(of: model)
        gradientStep = try GradientStep(adapted, model: model, config: config)
    }

    var parts: [(name: String, part: any MethodPart)] { methodParts(("optimizer", gradientStep)) }

    func process(_ input: Tensor) throws -> FrameResult {
        let logits = try model.logits(input)
        let scores = try logits.detach()
        let (losses, nonFinite) = try gradientStep!.run(
            firstLogits: logits, forward: { try self.model.logits(input) },
            loss: { logits in
                let confidence = try logits.logSoftmax(dim: 1).max(dim: 1).values.mean()
                return (try -confidence, ["confidence": try confidence.exp()])
            })
        return try FrameResult(scores: scores, losses: losses, nonFiniteLoss: nonFinite)
    }
}

final class ExternalMethodTests: ConfiguredTestCase {
    override class func setUp() {
        super.setUp()
        Methods.register(ConfidenceMaximisation.entry)
    }

    func testAMethodFromOutsideThePackageRunsThroughTheTool() throws {
        XCTAssertTrue(Methods.validNames.hasSuffix("test-confidence"))
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        let output = folder.appendingPathComponent("run")
        let arguments = [
            "adapt", "--model", "espnet", "--checkpoint", model.path, "--dataset", "synthetic:fog:4", "--threads", "1",
            "--no-predictions", "--method", "test-confidence", "--output", output.path,
        ]
        XCTAssertNil(runTool(arguments + ["--limit", "2"]))
        XCTAssertNil(runTool(arguments + ["--resume"]), "its optimizer state saves and resumes")
        let metrics = try RunMetrics.read(output.appendingPathComponent("metrics.json"))
        XCTAssertEqual(metrics.method, "test-confidence")
        XCTAssertEqual(metrics.frames, 4)
        let rows = try FrameLog.read(output.appendingPathComponent("frames.csv"))
        XCTAssertEqual(rows.count, 4)
        XCTAssertNotNil(rows.last?["confidence"].flatMap(Double.init), "its own loss term is logged")

        // Its settings come from its entry, and the tool's flags change them.
        let written = try RunConfiguration(RunConfiguration.read(output.appendingPathComponent("config.json")))
        XCTAssertEqual(written.method, ConfidenceMaximisation.entry.defaults(.recommended))
        let compare = folder.appendingPathComponent("compare")
        XCTAssertNil(
            runTool([
                "compare", "--methods", "bn-prior,test-confidence", "--model", "espnet", "--checkpoint", model.path,
                "--dataset", "synthetic:fog:2", "--threads", "1", "--no-predictions", "--lr", "0.05",
                "--output", compare.path,
            ]))
        let changed = try RunConfiguration(
            RunConfiguration.read(compare.appendingPathComponent("test-confidence/config.json")))
        XCTAssertEqual(changed.method.learningRate, 0.05)
    }
}
