import Foundation
import SegTTT
import Torch
import TorchNN
import XCTest

/// A seeded in-memory stream: noise images [3, 12, 16] with labels from a fixed rule.
struct NoiseStream: SegmentationDataset {
    var name = "noise"
    var classNames = (0..<5).map { "c\($0)" }
    var count = 6

    func sample(at index: Int) throws -> Sample {
        let generator = try Generator(seed: UInt64(100 + index))
        let image = try Tensor.uniform([3, 12, 16], high: 255, generator: generator).to(.uint8)
        let label = try image.to(.int64).narrow(dim: 0, start: 0, length: 1).squeeze(dim: 0) / 52.0
        return Sample(name: "frame\(index)", image: image, label: try label.floor().to(.int64))
    }
}

final class RunnerTests: XCTestCase {
    func makeOCL(seed: UInt64 = 4) throws -> OCL {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.05
        config.maskRatio = 0.1
        config.seed = seed
        return try OCL(model: TinySegNet(generator: Generator(seed: 9)), config: config)
    }

    /// A run interrupted after 3 frames and resumed from its saved state ends with the same
    /// confusion matrix and weights as an uninterrupted run.
    func testResumedRunEqualsUninterruptedRun() throws {
        let dataset = NoiseStream()
        let mapping = ClassMapping.identity(classes: 5, outputs: 5)
        let straight = try Runner(method: makeOCL(), dataset: dataset, mapping: mapping)
        try straight.run()

        let state = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-run-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: state) }
        let first = try Runner(method: makeOCL(), dataset: dataset, mapping: mapping)
        try first.run(until: 3)
        try first.save(to: state)
        let resumed = try Runner(method: makeOCL(), dataset: dataset, mapping: mapping)
        try resumed.resume(from: state)
        XCTAssertEqual(resumed.position, 3)
        var indices: [Int] = []
        try resumed.run(onFrame: { indices.append($0.index) })
        XCTAssertEqual(indices, [3, 4, 5])
        XCTAssertEqual(resumed.matrix, straight.matrix)
        let a = straight.method.model.stateDict()
        let b = resumed.method.model.stateDict()
        for name in a.names {
            XCTAssertEqual(try a[name]?.toArray(Double.self), try b[name]?.toArray(Double.self), name)
        }
    }

    func testResumingAnotherMethodsStateIsRefused() throws {
        let dataset = NoiseStream()
        let mapping = ClassMapping.identity(classes: 5, outputs: 5)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-run-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: state) }
        let runner = try Runner(method: makeOCL(), dataset: dataset, mapping: mapping)
        try runner.run(until: 1)
        try runner.save(to: state)
        let other = try Runner(
            method: Tent(model: TinySegNet(generator: Generator(seed: 9))), dataset: dataset, mapping: mapping)
        XCTAssertThrowsError(try other.resume(from: state)) { error in
            XCTAssertTrue("\(error)".contains("is not a saved state of a tent run"), "\(error)")
        }
    }

    func testNonFiniteLossLeavesWeightsUntouchedAndIsCounted() throws {
        let method = try makeOCL()
        let before = try method.model.stateDict().map { try $0.tensor.toArray(Double.self) }
        var poisoned = try Tensor.zeros([1, 3, 12, 16])
        poisoned = try poisoned / 0  // NaN everywhere
        let result = try method.process(poisoned)
        XCTAssertTrue(result.nonFiniteLoss)
        XCTAssertTrue(result.losses["loss"]?.isNaN ?? false)
        let after = try method.model.stateDict().map { try $0.tensor.toArray(Double.self) }
        XCTAssertEqual(before.count, after.count)
        for (a, b) in zip(before, after) { XCTAssertEqual(a, b) }
    }

    func testEpisodicModeResetsToSourceAfterEveryFrame() throws {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.05
        config.episodic = true
        let net = try TinySegNet(generator: Generator(seed: 9))
        let before = try net.conv1.weight.value.toArray(Float.self)
        let method = try OCL(model: net, config: config)
        _ = try method.process(NoiseStream().sample(at: 0).image.to(.float32).unsqueeze(dim: 0))
        XCTAssertEqual(try net.conv1.weight.value.toArray(Float.self), before)
    }

    func testStochasticRestorationRatios() throws {
        let net = try TinySegNet(generator: Generator(seed: 1))
        let source = try Snapshot(of: net)
        let parameters = net.trainableParameters()
        func perturbAndRestore(_ ratio: Double) throws -> Double {
            try withNoGrad { for p in parameters { try p.value.add_(Tensor.ones(p.value.shape)) } }
            try StochasticRestoration(ratio: ratio, source: source).apply(
                to: net, adapted: parameters, generator: Generator(seed: 2))
            var restored = 0
            var total = 0
            for (name, parameter) in net.namedParameters() {
                let now = try parameter.value.toArray(Double.self)
                let original = try XCTUnwrap(source.tensors[name]).toArray(Double.self)
                restored += zip(now, original).filter { $0 == $1 }.count
                total += now.count
            }
            try source.restore(net)
            return Double(restored) / Double(total)
        }
        XCTAssertEqual(try perturbAndRestore(0), 0)
        XCTAssertEqual(try perturbAndRestore(1), 1)
        XCTAssertEqual(try perturbAndRestore(0.3), 0.3, accuracy: 0.05)
    }

    func testSourceWithFlipAveragesProbabilities() throws {
        let net = try TinySegNet(generator: Generator(seed: 3))
        var config = AdaptationConfig.defaults(for: .source)
        config.flip = true
        let method = try SourceOnly(model: net, config: config)
        let x = try Tensor.normal([1, 3, 12, 16], generator: Generator(seed: 4))
        let expected = try withNoGrad {
            let a = try net.logits(x).softmax(dim: 1)
            let b = try net.logits(x.flip([3])).flip([3]).softmax(dim: 1)
            return try (a + b).argmax(dim: 1).squeeze(dim: 0)
        }
        XCTAssertEqual(try method.process(x).prediction.toArray(Int64.self), try expected.toArray(Int64.self))
        XCTAssertTrue(net.trainableParameters().isEmpty)
    }
}
