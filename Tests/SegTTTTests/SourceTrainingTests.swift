import Foundation
import Torch
import TorchNN
import XCTest

@testable import SegTTT

/// Source training: a tiny run lowers the loss and repeats exactly with the same seed; the
/// poly schedule; augmentation keeps image and label aligned; the errors.
final class SourceTrainingTests: SingleThreadedTestCase {
    private static var cachedStreets: InMemoryDataset?

    /// 12 source-style frames of 32 x 48.
    private func tinyStreets() throws -> InMemoryDataset {
        if let cached = Self.cachedStreets { return cached }
        let frames = try InMemoryDataset(SyntheticStreets(style: .source, count: 12, size: Pair(32, 48), seed: 4))
        Self.cachedStreets = frames
        return frames
    }

    private func config(seed: UInt64 = 0, iterations: Int = 16) -> SourceTrainingConfig {
        SourceTrainingConfig(
            iterations: iterations, batchSize: 4, learningRate: 0.05, seed: seed, scaleRange: 0.8...1.25)
    }

    /// Trains a fresh TinySegNet (weights seeded by 1) and returns its losses and weights.
    private func trainTiny(seed: UInt64 = 0, iterations: Int = 16) throws -> (
        losses: [Double], state: [String: [Float]], model: TinySegNet
    ) {
        let model = try TinySegNet(classes: 8, generator: Generator(seed: 1))
        var losses: [Double] = []
        try trainSource(model, on: tinyStreets(), config: config(seed: seed, iterations: iterations)) {
            iteration, loss in
            XCTAssertEqual(iteration, losses.count)
            losses.append(loss)
        }
        var state: [String: [Float]] = [:]
        for (name, tensor) in model.stateDict() where tensor.dtype == .float32 {
            state[name] = try tensor.toArray(Float.self)
        }
        return (losses, state, model)
    }

    func testATinyRunLowersTheLossAndRepeatsExactly() throws {
        let first = try trainTiny()
        XCTAssertEqual(first.losses.count, 16)
        let start = first.losses.prefix(3).reduce(0, +) / 3
        let end = first.losses.suffix(3).reduce(0, +) / 3
        XCTAssertLessThan(end, 0.8 * start, "losses \(first.losses)")
        XCTAssertFalse(first.model.isTraining, "the model is left in evaluation mode")

        let again = try trainTiny()
        XCTAssertEqual(again.losses, first.losses)
        XCTAssertEqual(again.state, first.state)

        // Another seed draws other batches and augmentations from the first step on.
        let otherSeed = try trainTiny(seed: 9, iterations: 2)
        XCTAssertNotEqual(otherSeed.losses, Array(first.losses.prefix(2)))
    }

    func testPolySchedule() {
        let c = SourceTrainingConfig(iterations: 100, learningRate: 0.1, polyPower: 0.9)
        XCTAssertEqual(c.learningRate(at: 0), 0.1)
        XCTAssertEqual(c.learningRate(at: 50), 0.1 * pow(0.5, 0.9), accuracy: 1e-15)
        XCTAssertEqual(c.learningRate(at: 99), 0.1 * pow(0.01, 0.9), accuracy: 1e-15)
        for i in 1..<100 { XCTAssertLessThan(c.learningRate(at: i), c.learningRate(at: i - 1)) }
    }

    func testAugmentationKeepsImageAndLabelAlignedAndPadsWithIgnore() throws {
        // Label = column (0...7) and an image whose channels are 20 * label, so alignment and
        // mirroring can be read back.
        let label = try Tensor.arange(0, 8).reshape([1, 8]).expand([6, 8]).contiguous()  // [6, 8] int64
        let red = try (label * Tensor(scalar: Int64(20))).to(.uint8).unsqueeze(dim: 0)
        let image = try Tensor.cat([red, red, red], dim: 0)  // [3, 6, 8]
        var random = SplitMix64(seed: 3)
        var flipped = 0
        for _ in 0..<20 {
            let c = SourceTrainingConfig(scaleRange: 1...1)
            let view = try augment(image: image, label: label, crop: Pair(8, 10), config: c, random: &random)
            XCTAssertEqual(view.image.shape, [3, 8, 10])
            XCTAssertEqual(view.label.shape, [8, 10])
            let y = try view.label.toArray(Int64.self)
            let r = try view.image.narrow(dim: 0, start: 0, length: 1).to(.int64).reshape([-1]).toArray(Int64.self)
            for i in y.indices {
                if y[i] == Int64(ignoreLabel) {
                    XCTAssertEqual(r[i], 0, "padding is black")
                } else {
                    XCTAssertEqual(r[i], 20 * y[i], "pixel \(i)")
                }
            }
            // The 8 x 10 crop covers the padded 6 x 8 frame: all 48 labelled pixels survive.
            XCTAssertEqual(y.filter { $0 != Int64(ignoreLabel) }.count, 48)
            if let firstLabelled = y.first(where: { $0 != Int64(ignoreLabel) }), firstLabelled == 7 { flipped += 1 }
        }
        XCTAssertGreaterThan(flipped, 0, "some views are mirrored")
        XCTAssertLessThan(flipped, 20, "some views are not mirrored")
    }

    func testSplitMixPermutationIsAPermutationFixedByTheSeed() {
        var a = SplitMix64(seed: 11)
        var b = SplitMix64(seed: 11)
        let p = a.permutation(50)
        XCTAssertEqual(p, b.permutation(50))
        XCTAssertEqual(p.sorted(), Array(0..<50))
        XCTAssertNotEqual(p, Array(0..<50))
    }

    func testErrorsNameTheFix() throws {
        let model = try TinySegNet(classes: 8, generator: Generator(seed: 1))
        let data = try tinyStreets()
        var bad = config()
        bad.iterations = 0
        XCTAssertThrowsError(try trainSource(model, on: data, config: bad)) { error in
            XCTAssertTrue("\(error)".contains("iterations is 0"), "\(error)")
        }
        bad = config()
        bad.scaleRange = 0...1
        XCTAssertThrowsError(try trainSource(model, on: data, config: bad))
        XCTAssertThrowsError(try trainSource(model, on: SyntheticStreets(count: 0), config: config())) { error in
            XCTAssertEqual(error as? SourceTrainingError, .emptyDataset("synthetic-streets-source"))
        }
        try model.freeze()
        XCTAssertThrowsError(try trainSource(model, on: data, config: config())) { error in
            XCTAssertTrue("\(error)".contains("unfreeze()"), "\(error)")
        }
    }
}
