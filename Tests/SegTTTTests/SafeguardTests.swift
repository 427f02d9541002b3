import Foundation
import SegTTT
import Torch
import TorchNN
import XCTest

/// The stability safeguards of `AdaptationConfig` and the diagnostics, on the tiny network.
final class SafeguardTests: SingleThreadedTestCase {
    func input(seed: UInt64 = 3) throws -> Tensor {
        try Tensor.uniform([1, 3, 16, 16], generator: Generator(seed: seed)) * 255
    }

    /// ||theta_after - theta_before|| over all parameters for one step of `config`.
    func stepSize(_ config: AdaptationConfig) throws -> Double {
        let net = try TinySegNet(generator: Generator(seed: 9))
        let before = try net.trainableParameters().map { try $0.value.detach().clone() }
        let method = try OCL(model: net, config: config)
        _ = try method.process(input())
        var squares = 0.0
        for (parameter, old) in zip(net.namedParameters().map(\.parameter), before) {
            let change = try parameter.value.detach() - old
            squares += try (change * change).sum().item()
        }
        return squares.squareRoot()
    }

    func testGradientClippingBoundsTheStep() throws {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 1
        config.momentum = 0
        config.weightDecay = 0
        config.maskRatio = 0
        let free = try stepSize(config)
        config.maxGradientNorm = 1e-3
        let clipped = try stepSize(config)
        XCTAssertGreaterThan(free, 1e-2)
        // With plain SGD at lr 1 the step is the clipped gradient itself.
        XCTAssertEqual(clipped, 1e-3, accuracy: 1e-6)
        config.maxGradientNorm = 1e6
        XCTAssertEqual(try stepSize(config), free, accuracy: free * 1e-6)
    }

    func testTaskOutputsOnlyLeavesTheVoidOutputOutOfTheLoss() throws {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.taskOutputsOnly = true
        config.bnPrior = 1  // running statistics, as in the reference below
        let net = try TinySegNet(classes: 5, taskClasses: 4, generator: Generator(seed: 9))
        net.eval()
        let x = try input()
        // The two views' logits, the mirrored one flipped back, before any step.
        let views = try withNoGrad { () -> Tensor in
            let both = try net.logits(Tensor.cat([x, x.flip([3])], dim: 0))
            return try Tensor.cat(
                [both.narrow(dim: 0, start: 0, length: 1), both.narrow(dim: 0, start: 1, length: 1).flip([3])], dim: 0)
        }
        let taskOnly = try withNoGrad { try OutputContrastiveLoss()(views.narrow(dim: 1, start: 0, length: 4)).loss.item() }
        let everyOutput = try withNoGrad { try OutputContrastiveLoss()(views).loss.item() }
        let reported = try XCTUnwrap(OCL(model: net, config: config).process(x).losses["loss"])
        XCTAssertEqual(reported, taskOnly, accuracy: 1e-5)
        XCTAssertGreaterThan(Swift.abs(reported - everyOutput), 1e-4)
    }

    func testMovingAverageStatisticsFollowTheStream() throws {
        let bn = try BatchNorm2d(2)
        bn.eval()
        bn.statistics = .movingAverage(0.25)
        let x = try Tensor.uniform([2, 2, 4, 4], generator: Generator(seed: 1)) * 4
        let batchMean = try x.mean(dims: [0, 2, 3]).toArray(Double.self)
        let batchVar = try x.var(dims: [0, 2, 3], unbiased: true).toArray(Double.self)
        let y = try bn(x)
        let mean = try bn.runningMean.value.toArray(Double.self)
        let variance = try bn.runningVar.value.toArray(Double.self)
        for c in 0..<2 {
            XCTAssertEqual(mean[c], 0.25 * batchMean[c], accuracy: 1e-6)
            XCTAssertEqual(variance[c], 0.25 * batchVar[c] + 0.75, accuracy: 1e-5)
        }
        let expected = try (x - Tensor(mean.map(Float.init), shape: [1, 2, 1, 1]))
            / (Tensor(variance.map(Float.init), shape: [1, 2, 1, 1]) + 1e-5).sqrt()
        try assertTensorsClose(y, expected, rtol: 1e-4, atol: 1e-5, "normalised output")
    }

    /// Shrinkage statistics in a method: the stream's statistics travel with a saved state
    /// (a resumed method predicts what the uninterrupted one does) and a reset clears them.
    func testShrinkageStatisticsAreSavedResumedAndReset() throws {
        var config = AdaptationConfig.defaults(for: .bnPrior)
        config.bnShrinkage = 0.5
        let frames = try (3...6).map { try input(seed: $0) * Double($0 - 2) }
        let method = try BatchNormAdaptation(model: TinySegNet(generator: Generator(seed: 9)), config: config)
        for frame in frames.prefix(3) { _ = try method.process(frame) }
        let saved = try method.state()
        XCTAssertTrue(saved.names.contains { $0.hasPrefix("bn-stream.") }, "\(saved.names)")
        let uninterrupted = try method.process(frames[3]).scores
        let resumed = try BatchNormAdaptation(model: TinySegNet(generator: Generator(seed: 9)), config: config)
        try resumed.loadState(saved)
        try assertTensorsClose(resumed.process(frames[3]).scores, uninterrupted, rtol: 1e-6, atol: 1e-6, "resumed")
        let fresh = try BatchNormAdaptation(model: TinySegNet(generator: Generator(seed: 9)), config: config)
        let first = try fresh.process(frames[3]).scores
        XCTAssertGreaterThan(try (resumed.process(frames[3]).scores - first).abs().sum().item(), 1e-4, "the stream moved")
        try resumed.reset()
        XCTAssertTrue(resumed.model.batchNormLayers.allSatisfy { $0.streamMean == nil })
        try assertTensorsClose(resumed.process(frames[3]).scores, first, rtol: 1e-6, atol: 1e-6, "after a reset")
    }

    func testDriftMonitorFallsBackToBNPrior() throws {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 1e-2
        config.maskRatio = 0
        let frames = [try input(seed: 3), try input(seed: 4)]
        func run(_ threshold: Double?) throws -> [FrameResult] {
            var monitored = config
            monitored.resetThreshold = threshold
            let method = try OCL(model: TinySegNet(generator: Generator(seed: 9)), config: monitored)
            return try frames.map { try method.process($0) }
        }
        let plain = try run(nil)
        let never = try run(1)
        let always = try run(-1)
        let bnPrior = try BatchNormAdaptation(model: TinySegNet(generator: Generator(seed: 9)))
        let anchored = try frames.map { try bnPrior.process($0) }
        XCTAssertFalse(never.contains { $0.reset })
        XCTAssertTrue(always.allSatisfy(\.reset))
        XCTAssertTrue(plain.allSatisfy { $0.disagreement == nil }, "no monitor, no measure")
        // The first frame meets the source weights: the adapted prediction is bn-prior's.
        XCTAssertEqual(never[0].disagreement, 0)
        let measured = try XCTUnwrap(never[1].disagreement)
        XCTAssertGreaterThan(measured, 0, "a step at lr 1e-2 changes some pixels")
        XCTAssertLessThanOrEqual(measured, 1)
        let changed = try never[1].prediction.ne(anchored[1].prediction).to(.float32).mean().item()
        XCTAssertEqual(measured, changed, accuracy: 1e-6, "the fraction of pixels that leave bn-prior's prediction")
        try assertTensorsClose(never[1].scores, plain[1].scores, "a monitor that never fires changes nothing")
        try assertTensorsClose(always[1].scores, anchored[1].scores, rtol: 1e-5, atol: 1e-6, "reset frames take bn-prior's scores")
        // After the reset the step starts from the source weights: the loss is a fresh method's.
        let fresh = try OCL(model: TinySegNet(generator: Generator(seed: 9)), config: config).process(frames[1])
        XCTAssertEqual(try XCTUnwrap(always[1].losses["loss"]), try XCTUnwrap(fresh.losses["loss"]), accuracy: 1e-6)
        XCTAssertNotEqual(try XCTUnwrap(plain[1].losses["loss"]), try XCTUnwrap(fresh.losses["loss"]), accuracy: 1e-9)
    }

    func testMeanTeacherBetweenItsLimits() throws {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 1e-2
        config.maskRatio = 0
        let frames = [try input(seed: 3), try input(seed: 4)]
        func run(_ momentum: Double?) throws -> (results: [FrameResult], state: StateDict) {
            var withTeacher = config
            withTeacher.teacherMomentum = momentum
            let method = try OCL(model: TinySegNet(generator: Generator(seed: 9)), config: withTeacher)
            return (try frames.map { try method.process($0) }, try method.state())
        }
        let plain = try run(nil)
        // Momentum 0: the teacher is the student after each step, so it predicts what the student would.
        let follower = try run(0)
        try assertTensorsClose(follower.results[1].scores, plain.results[1].scores, rtol: 1e-5, atol: 1e-6, "momentum 0")
        // Momentum 1: the teacher keeps the source weights; its predictions are bn-prior's.
        let frozen = try run(1)
        let bnPrior = try BatchNormAdaptation(model: TinySegNet(generator: Generator(seed: 9)))
        let anchored = try frames.map { try bnPrior.process($0) }
        try assertTensorsClose(frozen.results[1].scores, anchored[1].scores, rtol: 1e-5, atol: 1e-6, "momentum 1")
        // The student adapts alike in all three runs, and the teacher is part of the saved state.
        XCTAssertEqual(try XCTUnwrap(frozen.results[1].losses["loss"]), try XCTUnwrap(plain.results[1].losses["loss"]), accuracy: 1e-6)
        XCTAssertNotNil(frozen.state["teacher.0"])
        XCTAssertNil(plain.state["teacher.0"])
    }

    func testDiagnosticsOfAFrame() throws {
        let net = try TinySegNet(generator: Generator(seed: 9))
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 1e-2
        let method = try OCL(model: net, config: config)
        let diagnostics = try AdaptationDiagnostics(observing: method)
        let result = try method.process(input())
        let frame = try diagnostics.frame(result)
        XCTAssertEqual(frame.histogram.count, 5)
        XCTAssertEqual(frame.histogram.reduce(0, +), 1, accuracy: 1e-9)
        let p = try result.probabilities()
        let entropy = try -(p * p.log()).sum(dims: [1]).mean().item()
        XCTAssertEqual(frame.entropy, entropy, accuracy: 1e-5)
        XCTAssertGreaterThan(frame.drift, 0)
        XCTAssertEqual(Set(frame.gradientNorms.keys), ["conv1", "bn1", "conv2", "bn2", "classifier"])
        XCTAssertTrue(frame.gradientNorms.values.allSatisfy { $0 > 0 })

        let frozen = try BatchNormAdaptation(model: TinySegNet(generator: Generator(seed: 9)))
        let still = try AdaptationDiagnostics(observing: frozen).frame(frozen.process(input()))
        XCTAssertEqual(still.drift, 0)
        XCTAssertTrue(still.gradientNorms.isEmpty)
    }
}
