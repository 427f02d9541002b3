import SegTTT
import TestSupport
import Torch
import TorchNN
import XCTest

/// OCL, BN prior and TENT against the published semantics written in PyTorch
/// (Scripts/fixtures/adaptation.py): two frames, continual adaptation.
final class AdaptationParityTests: ConfiguredTestCase {
    var fixture = StateDict()

    override func setUpWithError() throws {
        fixture = try segTTTFixture("adaptation")
    }

    func makeNet() throws -> TinySegNet { try tinySegNet(from: fixture) }

    func frames() throws -> [Tensor] { try fixtureFrames(fixture) }

    func testOCLStepMatchesThePublishedSemantics() throws {
        let net = try makeNet()
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.1
        config.maskRatio = 0
        let ocl = try OCL(model: net, config: config)
        for (i, frame) in try frames().enumerated() {
            let result = try ocl.process(frame)
            XCTAssertEqual(
                try result.prediction.toArray(Int64.self), try fixture["ocl.\(i).prediction"]?.toArray(Int64.self))
            for term in ["pos", "neg", "loss"] {
                let expected = try XCTUnwrap(fixture["ocl.\(i).\(term)"]).item()
                XCTAssertEqual(
                    result.losses[term] ?? .nan, expected, accuracy: 1e-5 * Swift.abs(expected), "frame \(i) \(term)")
            }
            for (name, parameter) in net.namedParameters() {
                try assertTensorsClose(parameter.value, fixture["ocl.\(i).\(name)"], "frame \(i) \(name)")
            }
        }
    }

    func testBNPriorPredictions() throws {
        let method = try BatchNormAdaptation(model: makeNet())
        for (i, frame) in try frames().enumerated() {
            XCTAssertEqual(
                try method.process(frame).prediction.toArray(Int64.self),
                try fixture["bnprior.\(i).prediction"]?.toArray(Int64.self))
        }
    }

    func testTentStepMatches() throws {
        let net = try makeNet()
        var config = AdaptationConfig.defaults(for: .tent)
        config.learningRate = 1e-2
        let tent = try Tent(model: net, config: config)
        XCTAssertEqual(tent.adapted.count, 4)
        for (i, frame) in try frames().enumerated() {
            let result = try tent.process(frame)
            XCTAssertEqual(
                try result.prediction.toArray(Int64.self), try fixture["tent.\(i).prediction"]?.toArray(Int64.self))
            let expected = try XCTUnwrap(fixture["tent.\(i).entropy"]).item()
            XCTAssertEqual(result.losses["entropy"] ?? .nan, expected, accuracy: 1e-5 * expected)
            for (name, parameter) in net.namedParameters() {
                try assertTensorsClose(
                    parameter.value, fixture["tent.\(i).\(name)"], rtol: 1e-5, atol: 1e-6, "tent frame \(i) \(name)")
            }
        }
    }

    func testGramNegativeAtStridesMatchesThePublishedForm() throws {
        let net = try makeNet()
        for bn in net.batchNorms { bn.statistics = .prior(0.85) }
        let frame = try frames()[0]
        let both = try Tensor.cat([frame, frame.flip([3])], dim: 0)
        let logits = try withNoGrad { try net.logits(both) }
        let z = try Tensor.cat([
            logits.narrow(dim: 0, start: 0, length: 1), logits.narrow(dim: 0, start: 1, length: 1).flip([3]),
        ])
        let q = try z.softmax(dim: 1).normalize(dim: 1)
        for stride in [1, 2] {
            try assertTensorsClose(
                OutputContrastiveLoss.gramNegative(q, stride: stride), fixture["ocl.0.neg_gram\(stride)"],
                "gram stride \(stride)")
        }
    }
}

private extension TinySegNet {
    var batchNorms: [BatchNorm2d] { [bn1, bn2] }
}
