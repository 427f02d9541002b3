import ArgumentParser
import Foundation
import SegTTT
import TestSupport
import Torch
import XCTest

@testable import SegTTTTool

/// Configuration files, their merging with flags, and the method settings they resolve to.
final class RunConfigurationTests: ConfiguredTestCase {
    /// Options given as command-line text, in order.
    static func inputs(_ pairs: [(String, String)]) -> OptionInputs {
        var inputs = OptionInputs()
        for (key, value) in pairs { inputs.append(key, .text(value)) }
        return inputs
    }

    /// The options every plan needs (the checkpoint is only read when the run starts), and `more`.
    static func configuration(dataset: String, _ more: [(String, String)] = []) throws -> RunConfiguration {
        try RunConfiguration(inputs([("model", "espnet"), ("checkpoint", "w.pth"), ("dataset", dataset)] + more))
    }

    func testYAMLAndJSONGiveTheSameConfiguration() throws {
        let folder = try temporaryFolder(self)
        let yaml = folder.appendingPathComponent("run.yaml")
        try "model: espnet\nmethod: ocl\nlr: 1.0e-5\nbn-prior: 0.9\nflip: true\nlimit: 7\nseed: 4\n".write(
            to: yaml, atomically: true, encoding: .utf8)
        let json = folder.appendingPathComponent("run.json")
        try #"{"model": "espnet", "method": "ocl", "lr": 1e-5, "bn-prior": 0.9, "flip": true, "limit": 7, "seed": 4}"#.write(
            to: json, atomically: true, encoding: .utf8)
        let fromYAML = try RunConfiguration(RunConfiguration.read(yaml))
        XCTAssertEqual(fromYAML, try RunConfiguration(RunConfiguration.read(json)))
        XCTAssertEqual(fromYAML.method.learningRate, 1e-5)
        XCTAssertEqual(fromYAML.method.bnPrior, 0.9)
        XCTAssertEqual(fromYAML.method.seed, 4)
        XCTAssertEqual(fromYAML.settings.limit, 7)
    }

    func testWrittenConfigurationReadsBackToTheSameOne() throws {
        let file = try temporaryFolder(self).appendingPathComponent("config.json")
        let c = try Self.configuration(
            dataset: "synthetic:dusk", [("method", "tent"), ("max-grad-norm", "3"), ("flip", "true"), ("parameters", "all")])
        try c.write(to: file)
        XCTAssertEqual(try RunConfiguration(RunConfiguration.read(file)), c)
        // Every option is written, unset optional ones as null.
        let written = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        XCTAssertEqual(Set(written.keys), Set(RunConfiguration.keys))
        XCTAssertTrue(written["reset-threshold"] is NSNull)
    }

    func testUnknownKeyNamesTheFileAndTheKey() throws {
        let file = try temporaryFolder(self).appendingPathComponent("run.yaml")
        try "learning-rate: 0.1\n".write(to: file, atomically: true, encoding: .utf8)
        let (message, code) = report(runTool(["adapt", "--config", file.path]))
        XCTAssertEqual(code, ExitCode.validationFailure.rawValue)
        XCTAssertTrue(message.contains(file.path) && message.contains("'learning-rate'"), message)
    }

    func testWrongTypeNamesTheKey() throws {
        let file = try temporaryFolder(self).appendingPathComponent("run.json")
        try #"{"lr": "fast"}"#.write(to: file, atomically: true, encoding: .utf8)
        let (message, code) = report(runTool(["adapt", "--config", file.path]))
        XCTAssertEqual(code, ExitCode.validationFailure.rawValue)
        XCTAssertTrue(message.contains(file.path) && message.contains("'lr' fast: give a number"), message)
    }

    func testFlagsOverrideTheFile() throws {
        let file = OptionInputs(json: ["method": "tent", "lr": 0.1, "seed": 3], source: "run.json")
        let merged = try RunConfiguration(
            Self.inputs([("model", "espnet")]).overridden(by: file).overridden(by: Self.inputs([("lr", "0.2")])))
        XCTAssertEqual(merged.settings.method, "tent")
        XCTAssertEqual(merged.method.learningRate, 0.2)
        XCTAssertEqual(merged.method.seed, 3)
        XCTAssertEqual(merged.method.optimizer, .adam, "the other settings are TENT's")
    }

    func testCommandLineForms() throws {
        let inputs = try RunArguments.parse(["--lr=0.5", "--no-flip", "--seed", "7", "--task-outputs-only", "--max-grad-norm", "none"])
        var config = AdaptationConfig.defaults(for: .ocl, preset: .recommended)
        try AdaptationConfig.schema.apply(inputs, to: &config)
        XCTAssertEqual(config.learningRate, 0.5)
        XCTAssertFalse(config.flip)
        XCTAssertEqual(config.seed, 7)
        XCTAssertTrue(config.taskOutputsOnly)
        XCTAssertNil(config.maxGradientNorm, "none turns an optional setting off")
        XCTAssertEqual(config.resetThreshold, 0.05)
    }

    func testUnsetOptionsTakeTheRecommendedPreset() throws {
        let recommended = try Self.configuration(dataset: "synthetic:dusk", [("method", "ocl")]).method
        XCTAssertEqual(recommended.maxGradientNorm, 10)
        XCTAssertEqual(recommended.resetThreshold, 0.05)
        var published = recommended
        published.maxGradientNorm = nil
        published.resetThreshold = nil
        XCTAssertEqual(published, AdaptationConfig.defaults(for: .ocl))
        XCTAssertEqual(
            try Self.configuration(dataset: "x", [("preset", "published")]).method, AdaptationConfig.defaults(for: .ocl))
        // With no method named, the preset's: bn-select (recommended), OCL (published).
        XCTAssertEqual(try Self.configuration(dataset: "x", []).settings.method, "bn-select")
        XCTAssertEqual(try Self.configuration(dataset: "x", []).method, AdaptationConfig.defaults(for: .bnSelect, preset: .recommended))
        XCTAssertEqual(try Self.configuration(dataset: "x", [("preset", "published")]).settings.method, "ocl")
        XCTAssertEqual(
            try Self.configuration(dataset: "x", [("method", "tent")]).method, AdaptationConfig.defaults(for: .tent),
            "the preset changes OCL only")
        let changed = try Self.configuration(
            dataset: "x", [("method", "ocl"), ("lr", "1e-4"), ("parameters", "bn-affine"), ("optimizer", "adam"), ("stream-mode", "episodic")])
        XCTAssertEqual(changed.method.learningRate, 1e-4)
        XCTAssertEqual(changed.method.parameters, .batchNormAffine)
        XCTAssertEqual(changed.method.optimizer, .adam)
        XCTAssertEqual(changed.settings.streamMode, .episodic)
        XCTAssertEqual(changed.method.maskRatio, 0.01)
    }

    /// Every check is a usage error (exit 64) whose line names the flag and what to give.
    func testOutOfRangeValuesAreUsageErrorsNamingTheFlag() {
        for (argument, value, expected) in [
            ("bn-prior", "1.5", "--bn-prior 1.5: give a value in 0...1"),
            ("parameters", "encoder", "--parameters encoder: give one of all, bn-affine, head"),
            ("optimizer", "lbfgs", "--optimizer lbfgs: give one of sgd, adam"),
            ("lr", "fast", "--lr fast: give a number"),
            ("lr", "-1", "--lr -1.0: give a non-negative number"),
            ("limit", "0", "--limit 0: give a positive number of frames"),
            ("limit", "-1", "--limit -1: give a positive number of frames"),
            ("frame-step", "0", "--frame-step 0: give 1 to 10000"),
            ("threads", "10000", "--threads 10000: give 1 to 1024"),
            ("rounds", "0", "--rounds 0: give 1 to 1000"),
            ("stream-mode", "sometimes", "--stream-mode sometimes: give one of continual, episodic, domain-reset"),
            ("preset", "safe", "--preset safe: give one of published, recommended"),
            ("method", "nosuch", "--method 'nosuch': use one of source, bn-prior"),
            ("augmentation-scales", "0.5,9", "--augmentation-scales 0.5,9.0: give scales in 0.1...4"),
            ("selection-entropy-tolerance", "-0.1", "--selection-entropy-tolerance -0.1: give 0 or more"),
            ("selection-information-tolerance", "1.5", "--selection-information-tolerance 1.5: give a value in 0...1"),
            ("selection-information-margin", "-0.02", "--selection-information-margin -0.02: give a value in 0...1"),
        ] {
            let (message, code) = report(
                runTool(["adapt", "--model", "espnet", "--checkpoint", "w.pth", "--dataset", "x", "--\(argument)", value]))
            XCTAssertEqual(code, ExitCode.validationFailure.rawValue, argument)
            XCTAssertTrue(message.contains(expected), "\(argument): \(message)")
        }
    }

    func testPlanChecksNeedingTheMachine() throws {
        for (more, expected) in [
            ([("device", "tpu")], "tpu"),
            // A GPU this machine does not have (cuda:0 without CUDA).
            ([("device", "cuda:\(Device.cudaDeviceCount)")], "--device cuda:\(Device.cudaDeviceCount): "),
            ([("corruption", "rain:3")], "rain"),
        ] {
            XCTAssertThrowsError(try RunPlan(Self.configuration(dataset: "synthetic:dusk", more)), expected) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
    }

    func testDatasetSpecs() throws {
        let dusk = try DatasetSpec("synthetic:dusk:5:9").open()
        XCTAssertEqual(dusk.count, 5)
        XCTAssertEqual(dusk.name, "synthetic-streets-dusk")
        XCTAssertEqual(try DatasetSpec("synthetic:fog").open().count, 100)
        XCTAssertThrowsError(try DatasetSpec("synthetic:rainbow").open()) { XCTAssertTrue("\($0)".contains("rainbow")) }
        XCTAssertThrowsError(try DatasetSpec("kitti:/data").open()) {
            XCTAssertTrue("\($0)".contains("'kitti'") && "\($0)".contains("camvid"), "\($0)")
        }
    }

    func testFrameStepKeepsEveryNthFrameAfterTheCorruption() throws {
        let noise = [("corruption", "gaussian_noise:2")]
        let full = try RunPlan(Self.configuration(dataset: "synthetic:dusk:7:9", noise)).openStream()
        let halfRate = try RunPlan(Self.configuration(dataset: "synthetic:dusk:7:9", noise + [("frame-step", "3")]))
            .openStream()
        XCTAssertEqual(halfRate.count, 3)
        XCTAssertEqual(halfRate.name, "\(full.name)[0..<7 by 3]")
        for (index, original) in [(0, 0), (1, 3), (2, 6)] {
            let (kept, reference) = (try halfRate.sample(at: index), try full.sample(at: original))
            XCTAssertEqual(kept.name, reference.name)
            XCTAssertEqual(
                try kept.image.contiguousBytes() as [UInt8], try reference.image.contiguousBytes(),
                "frame \(original) keeps its own noise")
        }
    }

    func testCamVidSpecOpensTheSharedSplit() throws {
        let root = try sharedData().appendingPathComponent("camvid")
        XCTAssertEqual(try DatasetSpec("camvid:\(root.path)").open().count, 233)
        let dusk = try DatasetSpec("camvid-dusk:\(root.path)").open()
        XCTAssertEqual(dusk.name, "camvid-dusk")
        XCTAssertLessThan(dusk.count, 233)
    }
}
