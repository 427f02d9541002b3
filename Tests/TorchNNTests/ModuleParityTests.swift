import TestSupport
import Torch
import TorchNN
import XCTest

/// A small conv net against PyTorch (Scripts/fixtures/nn.py): names, forward in three
/// BatchNorm modes, loss, gradients, and SGD and Adam steps.
final class ModuleParityTests: ConfiguredTestCase {
    var fixture = StateDict()

    override func setUpWithError() throws {
        fixture = try loadFixture("nn")
    }

    func makeNet() throws -> SmallNet {
        let net = try SmallNet()
        let initial = StateDict(
            fixture.filter { $0.name.hasPrefix("init.") }.map { (String($0.name.dropFirst(5)), $0.tensor) })
        try net.load(initial)
        return net
    }

    func testStateDictNamesAndOrderMatchPyTorch() throws {
        let expected = fixture.names.filter { $0.hasPrefix("init.") }.map { String($0.dropFirst(5)) }
        XCTAssertEqual(try SmallNet().stateDict().names, expected)
        XCTAssertTrue(expected.contains("features.1.num_batches_tracked"))
    }

    func testForwardInEvaluationTrainingAndPriorModes() throws {
        let net = try makeNet()
        let x = try XCTUnwrap(fixture["input"])
        net.eval()
        try withNoGrad {
            try assertClose(net(x), fixture["eval.out"], "eval")
            for bn in net.batchNorms { bn.statistics = .prior(0.85) }
            try assertClose(net(x), fixture["prior.out"], "prior")
            for bn in net.batchNorms { bn.statistics = .followMode }
            net.train()
            try assertClose(net(x), fixture["train.out"], "train")
        }
        let state = net.stateDict()
        for name in fixture.names where name.hasPrefix("train.") && name != "train.out" {
            try assertClose(state[String(name.dropFirst(6))], fixture[name], name)
        }
    }

    /// Shrinkage statistics along a stream of three inputs (the last two shifted): each
    /// output, and the stream's statistics each layer holds at the end.
    func testShrinkageStatisticsAlongAStream() throws {
        let net = try makeNet()
        net.eval()
        for bn in net.batchNorms { bn.statistics = .shrinkage(0.3) }
        try withNoGrad {
            for i in 0..<3 {
                try assertClose(net(XCTUnwrap(fixture["shrinkage.input\(i)"])), fixture["shrinkage.out\(i)"], "frame \(i)")
            }
        }
        for (i, bn) in net.batchNorms.enumerated() {
            try assertClose(bn.streamMean, fixture["shrinkage.stream_mean\(i)"], "stream mean \(i)")
            try assertClose(bn.streamVar, fixture["shrinkage.stream_var\(i)"], "stream variance \(i)")
            let weight = try XCTUnwrap(bn.frameWeight)
            XCTAssertTrue(weight > 0 && weight < 1, "a shifted stream takes part of the frame's statistics: \(weight)")
        }
        // The first frame meets a stream that has not moved: the source's statistics alone.
        let fresh = try makeNet()
        fresh.eval()
        for bn in fresh.batchNorms { bn.statistics = .shrinkage(0.3) }
        let first = try withNoGrad { try fresh(XCTUnwrap(fixture["shrinkage.input0"])) }
        try assertClose(first, fixture["eval.out"], "first frame")
    }

    func testLossAndGradients() throws {
        let net = try makeNet()
        net.eval()
        let x = try XCTUnwrap(fixture["input"])
        let target = try XCTUnwrap(fixture["target"])
        let loss = try crossEntropy(net(x), target: target, ignoreIndex: 255)
        try assertClose(loss, fixture["loss"], "loss")
        try loss.backward()
        for (name, parameter) in net.namedParameters() {
            try assertClose(parameter.value.grad, fixture["grad." + name], rtol: 1e-4, atol: 1e-6, "grad " + name)
        }
    }

    func testTwoStepsOfSGDAndAdam() throws {
        for label in ["sgd", "adam"] {
            let net = try makeNet()
            net.eval()
            let x = try XCTUnwrap(fixture["input"])
            let target = try XCTUnwrap(fixture["target"])
            let parameters = net.trainableParameters()
            let optimizer: Optimizer =
                label == "sgd"
                ? try SGD(parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4)
                : Adam(parameters, learningRate: 0.01, weightDecay: 1e-4)
            for _ in 0..<2 {
                try optimizer.zeroGrad()
                try crossEntropy(net(x), target: target, ignoreIndex: 255).backward()
                try optimizer.step()
            }
            for (name, parameter) in net.namedParameters() {
                try assertClose(
                    parameter.value, fixture[label + "." + name], rtol: 1e-4, atol: 1e-6, label + " " + name)
            }
        }
    }
}
