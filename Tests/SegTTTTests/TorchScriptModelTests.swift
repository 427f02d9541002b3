import Foundation
import SegTTT
import TestSupport
import Torch
import TorchNN
import XCTest

/// The adaptation fixtures' tiny network exported as TorchScript, scripted and traced
/// (Scripts/fixtures/torchscript.py), adapted through `TorchScriptModel`: every method must
/// give what adaptation.py computed in eager PyTorch on the same network. "scripted.current"
/// is the same network scripted by the current PyTorch (torchscript_current.py): libtorch 2
/// must read and adapt it alike, and older ones refuse it by name.
final class TorchScriptModelTests: ConfiguredTestCase {
    var fixture = StateDict()

    override func setUpWithError() throws {
        fixture = try segTTTFixture("adaptation")
    }

    /// The files every test adapts: the current PyTorch's one where this libtorch reads it (2 and later).
    static var kinds: [String] { ["scripted", "traced"] + (readsCurrentFiles ? ["scripted.current"] : []) }

    static var readsCurrentFiles: Bool { (Int(Runtime.libtorchVersion.prefix { $0 != "." }) ?? 0) >= 2 }

    static func file(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "pt", subdirectory: "Fixtures"))
    }

    func load(_ kind: String) throws -> TorchScriptModel {
        let model = try TorchScriptFamily().load(Self.file("tiny.\(kind)"), cardFile: nil)
        return try XCTUnwrap(model as? TorchScriptModel)
    }

    func frames() throws -> [Tensor] {
        [try XCTUnwrap(fixture["frame0"]), try XCTUnwrap(fixture["frame1"])]
    }

    func testStateDictHasTheFileNamesOrderAndValues() throws {
        for kind in Self.kinds {
            let model = try load(kind)
            let native = try TinySegNet()
            XCTAssertEqual(model.stateDict().names, native.stateDict().names, kind)
            for (name, tensor) in model.stateDict() {
                try assertTensorsClose(tensor, fixture["init." + name], rtol: 0, atol: 0, "\(kind) \(name)")
            }
            XCTAssertEqual(model.batchNormLayers.count, 2, kind)
            XCTAssertEqual(model.unredirectedBatchNormCalls, 0, kind)
            XCTAssertEqual(model.parameters(for: .batchNormAffine).count, 4, kind)
            XCTAssertEqual(model.parameters(for: .head).count, 2, "\(kind): classifier weight and bias")
            XCTAssertEqual(model.card.classNames, ["c0", "c1", "c2", "c3", "c4"])
        }
    }

    func testLogitsEqualTheNativeNetwork() throws {
        let native = try TinySegNet()
        try native.load(StateDict(fixture.filter { $0.name.hasPrefix("init.") }.map { (String($0.name.dropFirst(5)), $0.tensor) }))
        native.eval()
        for kind in Self.kinds {
            let model = try load(kind)
            for frame in try frames() {
                try assertTensorsClose(
                    withNoGrad { try model.logits(frame) }, withNoGrad { try native.logits(frame) }, rtol: 1e-5,
                    atol: 1e-6, kind)
            }
        }
    }

    func testOCLStepsMatchThePublishedSemantics() throws {
        for kind in Self.kinds {
            let model = try load(kind)
            var config = AdaptationConfig.defaults(for: .ocl)
            config.learningRate = 0.1
            config.maskRatio = 0
            let ocl = try OCL(model: model, config: config)
            for (i, frame) in try frames().enumerated() {
                let result = try ocl.process(frame)
                XCTAssertEqual(
                    try result.prediction.toArray(Int64.self), try fixture["ocl.\(i).prediction"]?.toArray(Int64.self),
                    "\(kind) frame \(i)")
                let expected = try XCTUnwrap(fixture["ocl.\(i).loss"]).item()
                XCTAssertEqual(result.losses["loss"] ?? .nan, expected, accuracy: 1e-5 * Swift.abs(expected), kind)
                for (name, parameter) in model.namedParameters() {
                    try assertTensorsClose(parameter.value, fixture["ocl.\(i).\(name)"], "\(kind) frame \(i) \(name)")
                }
            }
        }
    }

    func testBNPriorChangesThePredictionAsInPyTorch() throws {
        for kind in ["scripted", "traced"] {
            let prior = try BatchNormAdaptation(model: load(kind))
            let source = try SourceOnly(model: load(kind), config: .defaults(for: .source))
            var differs = false
            for (i, frame) in try frames().enumerated() {
                let predicted = try prior.process(frame).prediction.toArray(Int64.self)
                XCTAssertEqual(predicted, try fixture["bnprior.\(i).prediction"]?.toArray(Int64.self), "\(kind) \(i)")
                // Control: the running statistics alone predict otherwise, so the redirected
                // BatchNorm calls are what made the match.
                differs = try differs || source.process(frame).prediction.toArray(Int64.self) != predicted
            }
            XCTAssertTrue(differs, "\(kind): bn-prior predicted as the source model on both frames")
        }
    }

    func testTentStepsMatch() throws {
        for kind in ["scripted", "traced"] {
            let model = try load(kind)
            var config = AdaptationConfig.defaults(for: .tent)
            config.learningRate = 1e-2
            let tent = try Tent(model: model, config: config)
            for (i, frame) in try frames().enumerated() {
                let result = try tent.process(frame)
                let expected = try XCTUnwrap(fixture["tent.\(i).entropy"]).item()
                XCTAssertEqual(result.losses["entropy"] ?? .nan, expected, accuracy: 1e-5 * Swift.abs(expected), kind)
                for (name, parameter) in model.namedParameters() {
                    try assertTensorsClose(
                        parameter.value, fixture["tent.\(i).\(name)"], rtol: 1e-5, atol: 1e-6, "\(kind) frame \(i) \(name)")
                }
            }
        }
    }

    func testEpisodicModeRestoresTheFileWeightsWhileContinualMovesThem() throws {
        for episodic in [false, true] {
            let model = try load("scripted")
            var config = AdaptationConfig.defaults(for: .ocl)
            config.learningRate = 0.1
            config.maskRatio = 0
            let ocl = try OCL(model: model, config: config)
            _ = try ocl.process(frames()[0])
            if episodic { try ocl.reset() }
            let weight = try XCTUnwrap(model.stateDict()["conv1.weight"])
            let initial = try XCTUnwrap(fixture["init.conv1.weight"])
            let moved = try (weight - initial).abs().reshape([-1]).max(dim: 0).values.item()
            if episodic { XCTAssertEqual(moved, 0, "episodic: restored") } else { XCTAssertGreaterThan(moved, 1e-4) }
        }
    }

    func testSavedStateResumesExactly() throws {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.1
        config.maskRatio = 0
        let frames = try frames()
        let straight = try OCL(model: load("scripted"), config: config)
        _ = try straight.process(frames[0])
        let state = try straight.state()
        let expected = try straight.process(frames[1])

        let resumed = try OCL(model: load("scripted"), config: config)
        try resumed.loadState(state)
        let again = try resumed.process(frames[1])
        XCTAssertEqual(again.losses["loss"], expected.losses["loss"])
        try assertTensorsClose(again.scores, expected.scores, rtol: 0, atol: 0, "scores after resuming")
    }

    func testTrainingModeFollowsBatchStatisticsAndUpdatesTheFileBuffers() throws {
        let model = try load("scripted")
        let before = try XCTUnwrap(model.script.namedBuffers().first { $0.name == "bn1.running_mean" }?.tensor.clone())
        model.train()
        _ = try withNoGrad { try model.logits(frames()[0]) }
        let after = try XCTUnwrap(model.script.namedBuffers().first { $0.name == "bn1.running_mean" }?.tensor)
        XCTAssertGreaterThan(try (after - before).abs().reshape([-1]).max(dim: 0).values.item(), 1e-6, "running statistics updated in place")
        XCTAssertEqual(try model.stateDict()["bn1.num_batches_tracked"]?.item(), 1)
    }

    func testFramesOfAnySizeArePaddedToTheCardsMultipleAndCropped() throws {
        let model = try load("traced")
        for (height, width) in [(13, 17), (12, 16), (1, 5)] {
            let x = try Tensor.normal([1, 3, height, width], generator: Generator(seed: 1))
            XCTAssertEqual(try withNoGrad { try model.logits(x) }.shape, [1, 5, height, width])
        }
    }

    func testHandlesAreFreedWithTheModel() throws {
        let before = ScriptModule.liveCount
        do {
            let model = try load("scripted")
            _ = try withNoGrad { try model.logits(frames()[0]) }
            XCTAssertEqual(ScriptModule.liveCount, before + 1)
        }
        XCTAssertEqual(ScriptModule.liveCount, before)
    }

    /// libtorch 2 reads the current PyTorch's file (and the tests above adapt it); 1.13 refuses
    /// it, since the file calls operators 1.13 lacks, naming the file, its version and the fix.
    func testAFileFromTheCurrentPyTorchLoadsOnLibtorch2AndIsExplainedOnOlder() throws {
        let url = try Self.file("tiny.scripted.current")
        guard !Self.readsCurrentFiles else {
            XCTAssertEqual(try load("scripted.current").stateDict().names, try TinySegNet().stateDict().names)
            return
        }
        XCTAssertThrowsError(try load("scripted.current")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), text)
            XCTAssertTrue(text.contains("newer PyTorch"), text)
            XCTAssertTrue(text.contains(Runtime.libtorchVersion), text)
            XCTAssertTrue(text.contains("LIBTORCH"), text)
        }
    }

    func testANewerFileFormatNamesBothVersionsAndTheFix() throws {
        let url = try Self.file("tiny.newer")
        let card = try TorchScriptCard.read(Self.file("tiny.scripted").deletingPathExtension().appendingPathExtension("yaml"))
        XCTAssertThrowsError(try TorchScriptModel(contentsOf: url, card: card)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), text)
            XCTAssertTrue(text.contains("version 99"), text)
            XCTAssertTrue(text.contains("newer PyTorch"), text)
            XCTAssertTrue(text.contains(Runtime.libtorchVersion), text)
            XCTAssertTrue(text.contains("Export the model again"), text)
        }
    }

    func testFilesThatAreNoTorchScriptSayWhatToDo() throws {
        let card = try TorchScriptCard.parse("classes: [a]\ninput: {channel_order: RGB, mean: [0, 0, 0]}", file: "card")
        let checkpoint = try XCTUnwrap(
            Bundle.module.url(forResource: "deeplab_module_prefixed", withExtension: "pth", subdirectory: "Fixtures"))
        XCTAssertThrowsError(try TorchScriptModel(contentsOf: checkpoint, card: card)) { error in
            XCTAssertTrue("\(error)".contains("not a TorchScript module"), "\(error)")
            XCTAssertTrue("\(error)".contains("torch.jit.save"), "\(error)")
        }
        let text = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-not-a-model.pt")
        try Data("hello".utf8).write(to: text)
        XCTAssertThrowsError(try TorchScriptModel(contentsOf: text, card: card)) { error in
            XCTAssertTrue("\(error)".contains("not a TorchScript file"), "\(error)")
        }
        XCTAssertThrowsError(try TorchScriptFamily().load(text, cardFile: nil)) { error in
            XCTAssertTrue("\(error)".contains("has no model card beside it"), "\(error)")
            XCTAssertTrue("\(error)".contains("segttt info"), "\(error)")
        }
    }

    func testAHeadTheFileLacksIsNamed() throws {
        var card = try TorchScriptCard.read(Self.file("tiny.scripted").deletingPathExtension().appendingPathExtension("yaml"))
        card.headModules = ["decoder"]
        XCTAssertThrowsError(try TorchScriptModel(contentsOf: Self.file("tiny.scripted"), card: card)) { error in
            XCTAssertTrue("\(error)".contains("no submodule 'decoder'"), "\(error)")
            XCTAssertTrue("\(error)".contains("classifier"), "\(error)")
        }
    }
}

extension TorchScriptModelTests {
    func testOnlyCallsWithTheLayersOwnAffineParametersAreRedirected() throws {
        let card = try TorchScriptCard.parse("classes: [a, b, c, d]\ninput: {channel_order: RGB, mean: [0, 0, 0]}", file: "card")
        let model = try TorchScriptModel(contentsOf: Self.file("tiny.mixed"), card: card)
        XCTAssertEqual(model.batchNormLayers.count, 1, "the BatchNorm2d")
        XCTAssertEqual(model.unredirectedBatchNormCalls, 1, "the norm with buffer weight and bias")
        // Both normalise as in the file: bn with its running statistics, frozen with its own.
        let x = try Tensor.normal([1, 3, 5, 6], generator: Generator(seed: 2))
        let before = try withNoGrad { try model.logits(x) }
        for bn in model.batchNormLayers { bn.statistics = .batch }
        let after = try withNoGrad { try model.logits(x) }
        XCTAssertGreaterThan(try (after - before).abs().reshape([-1]).max(dim: 0).values.item(), 1e-3)
    }

    func testAnErrorInsideTheGraphKeepsItsCauseOnly() throws {
        let model = try load("scripted")
        XCTAssertThrowsError(try model.script.forward(Tensor.zeros([1, 5, 8, 8]))) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("Traceback"), text)
            XCTAssertTrue(text.contains("channels"), text)
        }
    }
}

extension TorchScriptModelTests {
    /// Every safeguard and BatchNorm option gives the same steps on the file as on the native
    /// network with the same weights: the recommended preset (clipping, drift monitor), a
    /// mean teacher, moving-average statistics, restoration.
    func testSafeguardsAndStatisticsOptionsAdaptAsTheNativeNetwork() throws {
        var presets: [(String, AdaptationConfig)] = []
        var config = AdaptationConfig.defaults(for: .ocl, preset: .recommended)
        config.learningRate = 0.1
        config.maxGradientNorm = 0.5
        presets.append(("recommended, clipped", config))
        config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.1
        config.teacherMomentum = 0.9
        presets.append(("teacher", config))
        config.teacherMomentum = nil
        config.bnMomentum = 0.3
        config.maskRatio = 0.2
        presets.append(("moving average, restoration", config))
        let initial = StateDict(fixture.filter { $0.name.hasPrefix("init.") }.map { (String($0.name.dropFirst(5)), $0.tensor) })
        for (label, config) in presets {
            let native = try TinySegNet()
            try native.load(initial)
            let file = try load("traced")
            let a = try OCL(model: native, config: config)
            let b = try OCL(model: file, config: config)
            for (i, frame) in try frames().enumerated() {
                let (x, y) = (try a.process(frame), try b.process(frame))
                XCTAssertEqual(x.losses["loss"] ?? .nan, y.losses["loss"] ?? 0, accuracy: 1e-5, "\(label) frame \(i)")
                XCTAssertEqual(x.reset, y.reset, label)
            }
            for (name, tensor) in native.stateDict() {
                try assertTensorsClose(file.stateDict()[name], tensor, rtol: 1e-4, atol: 1e-6, "\(label) \(name)")
            }
        }
    }
}
