import SegTTT
import TestSupport
import Torch
import TorchNN
import XCTest

/// BN-alpha, BN-EMA, CoTTA, pseudo-labelling with class reset and DIGA against references
/// written in PyTorch from their papers (Scripts/fixtures/methods.py): two frames each,
/// continual adaptation, losses, predictions and the parameters after each step.
final class MethodParityTests: ConfiguredTestCase {
    var fixture = StateDict()

    override func setUpWithError() throws {
        fixture = try segTTTFixture("methods")
    }

    func makeNet() throws -> TinySegNet { try tinySegNet(from: fixture) }

    func frames() throws -> [Tensor] { try fixtureFrames(fixture) }

    func expected(_ key: String) throws -> Tensor { try XCTUnwrap(fixture[key], key) }

    func testBNAlphaAndBNEMAMatchTheirReferences() throws {
        let alpha = try BatchNormAdaptation(model: makeNet(), config: .defaults(for: .bnAlpha))
        let emaNet = try makeNet()
        let ema = try BatchNormAdaptation(model: emaNet, config: .defaults(for: .bnEMA))
        for (i, frame) in try frames().enumerated() {
            // The tolerance of BN-EMA: libtorch 2's reductions in another order move logits by 1.5e-7.
            try assertTensorsClose(
                alpha.process(frame).scores, expected("bnalpha.\(i).logits"), rtol: 1e-4, atol: 1e-6, "bn-alpha \(i)")
            try assertTensorsClose(
                ema.process(frame).scores, expected("bnema.\(i).logits"), rtol: 1e-4, atol: 1e-6, "bn-ema \(i)")
            try assertTensorsClose(
                emaNet.bn2.runningVar.value, expected("bnema.\(i).bn2.running_var"), rtol: 1e-5, atol: 1e-7,
                "bn-ema var \(i)")
        }
    }

    func cotta(threshold: Double, tag: String) throws {
        let net = try makeNet()
        var config = AdaptationConfig.defaults(for: .cotta)
        config.learningRate = 1e-2
        config.teacherMomentum = 0.9
        config.maskRatio = 0
        config.confidenceThreshold = threshold
        config.augmentationScales = [0.5, 1.0, 1.5]
        let method = try CoTTA(model: net, config: config)
        let source = try net.conv1.weight.value.toArray(Float.self)
        for (i, frame) in try frames().enumerated() {
            let result = try method.process(frame)
            XCTAssertEqual(
                try result.prediction.toArray(Int64.self), try expected("\(tag).\(i).prediction").toArray(Int64.self),
                "\(tag) \(i)")
            let loss = try expected("\(tag).\(i).loss").item()
            XCTAssertEqual(result.losses["loss"] ?? .nan, loss, accuracy: 1e-5 * Swift.abs(loss), "\(tag) \(i)")
            for (name, parameter) in net.namedParameters() {
                try assertTensorsClose(parameter.value, fixture["\(tag).\(i).\(name)"], rtol: 1e-4, atol: 1e-6, "\(tag) \(i) \(name)")
            }
        }
        // The teacher, saved with the method, followed the student.
        let state = try method.state()
        for (index, (name, _)) in net.namedParameters().enumerated() {
            try assertTensorsClose(state["teacher.\(index)"], fixture["\(tag).1.teacher.\(name)"], rtol: 1e-4, atol: 1e-6, "\(tag) teacher \(name)")
        }
        XCTAssertNotEqual(try state["model.conv1.weight"]?.toArray(Float.self), source, "the student moved")
    }

    func testCoTTAWithTheAugmentedViewsMatches() throws { try cotta(threshold: 0.5, tag: "cotta") }

    func testCoTTAWithThePlainTeacherMatches() throws { try cotta(threshold: 0, tag: "cottaplain") }

    func testPseudoLabelsWithClassResetMatch() throws {
        let net = try makeNet()
        var config = AdaptationConfig.defaults(for: .plReset)
        config.learningRate = 5
        config.confidenceThreshold = 0.6
        let method = try PseudoLabelReset(model: net, config: config)
        for (i, frame) in try frames().enumerated() {
            let result = try method.process(frame)
            XCTAssertEqual(result.reset, try expected("plreset.\(i).reset").toArray(Bool.self)[0], "frame \(i)")
            XCTAssertEqual(
                try result.prediction.toArray(Int64.self), try expected("plreset.\(i).prediction").toArray(Int64.self))
            for term in ["loss", "kept"] {
                let value = try expected("plreset.\(i).\(term)").item()
                XCTAssertEqual(result.losses[term] ?? .nan, value, accuracy: 1e-5 * Swift.abs(value), "\(term) \(i)")
            }
            for (name, parameter) in net.namedParameters() {
                try assertTensorsClose(parameter.value, fixture["plreset.\(i).\(name)"], rtol: 1e-4, atol: 1e-6, "pl-reset \(i) \(name)")
            }
        }
    }

    func testDIGAMatches() throws {
        var config = AdaptationConfig.defaults(for: .diga)
        config.bnPrior = 0.2
        config.confidenceThreshold = 0.5
        let method = try DIGA(model: makeNet(), config: config)
        for (i, frame) in try frames().enumerated() {
            let result = try method.process(frame)
            try assertTensorsClose(result.scores, fixture["diga.\(i).probabilities"], rtol: 1e-4, atol: 1e-6, "diga \(i)")
            let prototypes = try XCTUnwrap(method.prototypes.current)
            try assertTensorsClose(prototypes.means, fixture["diga.\(i).prototypes"], rtol: 1e-4, atol: 1e-5, "prototypes \(i)")
            XCTAssertEqual(prototypes.present, try expected("diga.\(i).present").toArray(Bool.self))
        }
        try method.reset()
        XCTAssertNil(method.prototypes.current)
    }
}
