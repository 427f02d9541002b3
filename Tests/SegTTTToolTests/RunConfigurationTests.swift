import SegTTT
import Torch
import XCTest

@testable import SegTTTTool

/// Configuration files, their merging with flags, and the method settings they resolve to.
final class RunConfigurationTests: XCTestCase {
    /// The fields every plan needs; the checkpoint is only read when the run starts.
    static func configuration(dataset: String) -> RunConfiguration {
        var c = RunConfiguration()
        c.model = "espnet"
        c.checkpoint = "w.pth"
        c.dataset = dataset
        return c
    }

    func testYAMLAndJSONGiveTheSameConfiguration() throws {
        let folder = try temporaryFolder(self)
        let yaml = folder.appendingPathComponent("run.yaml")
        try "model: espnet\nmethod: ocl\nlr: 1.0e-5\nbn-prior: 0.9\nflip: true\nlimit: 7\n".write(
            to: yaml, atomically: true, encoding: .utf8)
        let json = folder.appendingPathComponent("run.json")
        try #"{"model": "espnet", "method": "ocl", "lr": 1e-5, "bn-prior": 0.9, "flip": true, "limit": 7}"#.write(
            to: json, atomically: true, encoding: .utf8)
        let fromYAML = try RunConfiguration.read(yaml)
        XCTAssertEqual(fromYAML, try RunConfiguration.read(json))
        XCTAssertEqual(fromYAML.lr, 1e-5)
        XCTAssertEqual(fromYAML.bnPrior, 0.9)
        XCTAssertEqual(fromYAML.limit, 7)
    }

    func testUnknownKeyNamesItAndTheValidKeys() throws {
        let file = try temporaryFolder(self).appendingPathComponent("run.yaml")
        try "learning-rate: 0.1\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunConfiguration.read(file)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(file.path) && message.contains("learning-rate"), message)
            XCTAssertTrue(message.contains("bn-prior"), message)
        }
    }

    func testWrongTypeNamesTheKey() throws {
        let file = try temporaryFolder(self).appendingPathComponent("run.json")
        try #"{"lr": "fast"}"#.write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunConfiguration.read(file)) { error in
            XCTAssertTrue("\(error)".contains("'lr'"), "\(error)")
        }
    }

    func testFlagsOverrideTheFile() throws {
        var file = RunConfiguration()
        file.method = "tent"
        file.lr = 0.1
        file.seed = 3
        var flags = RunConfiguration()
        flags.lr = 0.2
        let merged = try file.overriding(with: flags)
        XCTAssertEqual(merged.method, "tent")
        XCTAssertEqual(merged.lr, 0.2)
        XCTAssertEqual(merged.seed, 3)
    }

    func testUnsetOptionsTakeTheRecommendedPreset() throws {
        var c = Self.configuration(dataset: "synthetic:dusk")
        c.method = "ocl"
        let recommended = try RunPlan(c).config
        XCTAssertEqual(recommended.maxGradientNorm, 10)
        XCTAssertEqual(recommended.resetThreshold, 0.05)
        var published = recommended
        published.maxGradientNorm = nil
        published.resetThreshold = nil
        XCTAssertEqual(published, AdaptationConfig.defaults(for: .ocl))
        c.preset = "published"
        XCTAssertEqual(try RunPlan(c).config, AdaptationConfig.defaults(for: .ocl))
        c.preset = nil
        c.method = "tent"
        XCTAssertEqual(try RunPlan(c).config, AdaptationConfig.defaults(for: .tent), "the preset changes OCL only")
        c.method = "ocl"
        c.lr = 1e-4
        c.parameters = "bn-affine"
        c.optimizer = "adam"
        c.episodic = true
        let config = try RunPlan(c).config
        XCTAssertEqual(config.learningRate, 1e-4)
        XCTAssertEqual(config.parameters, .batchNormAffine)
        XCTAssertEqual(config.optimizer, .adam)
        XCTAssertTrue(config.episodic)
        XCTAssertEqual(config.maskRatio, 0.01)
    }

    func testOutOfRangeValuesAreRefused() {
        let c = Self.configuration(dataset: "synthetic:dusk")
        for (change, option) in [
            ({ (c: inout RunConfiguration) in c.bnPrior = 1.5 }, "--bn-prior"),
            ({ c in c.parameters = "encoder" }, "--parameters"),
            ({ c in c.optimizer = "lbfgs" }, "--optimizer"),
            ({ c in c.limit = 0 }, "--limit"),
            ({ c in c.frameStep = 0 }, "--frame-step"),
            ({ c in c.preset = "safe" }, "--preset 'safe'; use published or recommended"),
            ({ c in c.device = "tpu" }, "tpu"),
            // A GPU this machine does not have (cuda:0 without CUDA).
            ({ c in c.device = "cuda:\(Device.cudaDeviceCount)" }, "--device cuda:\(Device.cudaDeviceCount): "),
            ({ c in c.corruption = "rain:3" }, "rain"),
        ] as [((inout RunConfiguration) -> Void, String)] {
            var changed = c
            change(&changed)
            XCTAssertThrowsError(try RunPlan(changed), option) { XCTAssertTrue("\($0)".contains(option), "\($0)") }
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
        var c = Self.configuration(dataset: "synthetic:dusk:7:9")
        c.corruption = "gaussian_noise:2"
        let full = try RunPlan(c).openStream()
        c.frameStep = 3
        let halfRate = try RunPlan(c).openStream()
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
