import Foundation
import SegTTT
import Torch
import TorchNN
import XCTest

/// bn-select (`PriorSelection`) on the tiny network, whose source statistics are those of
/// uniform frames: frames like them keep the largest prior, low-contrast frames take their
/// own statistics.
final class PriorSelectionTests: SingleThreadedTestCase {
    func frame(seed: UInt64, contrast: Double = 1) throws -> Tensor {
        try (Tensor.uniform([1, 3, 16, 16], generator: Generator(seed: seed)) - 0.5) * (255 * contrast) + 127.5
    }

    /// The tiny network with the statistics of eight uniform frames as its source's.
    func sourceNet() throws -> TinySegNet {
        let net = try TinySegNet(generator: Generator(seed: 9))
        let batch = try Tensor.cat((20..<28).map { try frame(seed: $0) }, dim: 0)
        for bn in net.batchNormLayers { bn.statistics = .movingAverage(1) }
        _ = try withNoGrad { try net.logits(batch) }
        for bn in net.batchNormLayers { bn.statistics = .followMode }
        return net
    }

    /// s_p of one frame measured on its own: the mean over layers of `inputShift` under prior p.
    func shift(of input: Tensor, prior: Double) throws -> Double {
        let net = try sourceNet()
        for bn in net.batchNormLayers { (bn.statistics, bn.recordsInputShift) = (.prior(prior), true) }
        _ = try withNoGrad { try net.logits(input) }
        return net.batchNormLayers.compactMap(\.inputShift).reduce(0, +) / Double(net.batchNormLayers.count)
    }

    /// What bn-prior with this prior predicts (flip views, as bn-select).
    func bnPriorScores(_ input: Tensor, prior: Double) throws -> Tensor {
        var config = AdaptationConfig.defaults(for: .bnPrior)
        (config.bnPrior, config.flip) = (prior, true)
        return try BatchNormAdaptation(model: sourceNet(), config: config).process(input).scores
    }

    func testTheChosenPriorFollowsTheShiftEachCandidateLeaves() throws {
        var config = AdaptationConfig.defaults(for: .bnSelect)
        XCTAssertEqual(config.priorCandidates, [0.85, 0.7, 0.5, 0.3, 0.15, 0])
        // Two BatchNorm layers only, the first of which no prior changes: a stricter tau.
        config.selectionTolerance = 0.5
        for (contrast, expected) in [(1.0, 0.85), (0.02, 0.0)] {
            let method = try PriorSelection(model: sourceNet(), config: config)
            let first = try frame(seed: 1, contrast: contrast)
            let result = try method.process(first)
            // The first frame measures every candidate.
            for (prior, value) in zip(config.priorCandidates, method.shifts.values) {
                XCTAssertEqual(value, try shift(of: first, prior: prior), accuracy: 1e-9, "contrast \(contrast), prior \(prior)")
            }
            let values = method.shifts.values
            XCTAssertEqual(result.losses["prior"], expected, "contrast \(contrast): shifts \(values)")
            try assertTensorsClose(
                result.scores, bnPriorScores(first, prior: expected), rtol: 1e-5, atol: 1e-6, "contrast \(contrast)")
            // Later frames measure one candidate each, in turn.
            _ = try method.process(frame(seed: 2, contrast: contrast))
            for index in values.indices where index != 1 {
                XCTAssertEqual(method.shifts.values[index], values[index], "only candidate 1 is measured on frame 1")
            }
            XCTAssertNotEqual(method.shifts.values[1], values[1])
        }
        // The documented rule on the low-contrast frame: 0.15 already leaves too much shift.
        let lowContrast = try frame(seed: 1, contrast: 0.02)
        XCTAssertGreaterThan(
            try shift(of: lowContrast, prior: 0.15),
            try shift(of: lowContrast, prior: 0) * (1 + config.selectionTolerance * 0.15))
    }

    func testTheStreamShiftsAreSavedResumedAndReset() throws {
        var config = AdaptationConfig.defaults(for: .bnSelect)
        config.selectionTolerance = 0.5
        let frames = try (1...9).map { try frame(seed: $0, contrast: $0 < 5 ? 1 : 0.02) }
        let method = try PriorSelection(model: sourceNet(), config: config)
        for input in frames.prefix(8) { _ = try method.process(input) }
        let saved = try method.state()
        let uninterrupted = try method.process(frames[8])
        let resumed = try PriorSelection(model: sourceNet(), config: config)
        try resumed.loadState(saved)
        let again = try resumed.process(frames[8])
        XCTAssertEqual(resumed.shifts.values, method.shifts.values)
        XCTAssertEqual(again.losses, uninterrupted.losses)
        try assertTensorsClose(again.scores, uninterrupted.scores, rtol: 1e-6, atol: 1e-6, "resumed")
        // The stream moved the choice: a fresh method on the last frame chooses otherwise.
        let fresh = try PriorSelection(model: sourceNet(), config: config).process(frames[8])
        XCTAssertNotEqual(fresh.losses["prior"], uninterrupted.losses["prior"])
        try resumed.reset()
        XCTAssertEqual(resumed.shifts.values, [])
        XCTAssertEqual(try resumed.process(frames[8]).losses, fresh.losses)
    }

    func testTooFewCandidatesAreRefused() {
        var config = AdaptationConfig.defaults(for: .bnSelect)
        config.priorCandidates = [0.5, 0.5]
        XCTAssertThrowsError(try PriorSelection(model: TinySegNet(), config: config)) { error in
            XCTAssertTrue("\(error)".contains("two or more priorCandidates"), "\(error)")
        }
    }
}
