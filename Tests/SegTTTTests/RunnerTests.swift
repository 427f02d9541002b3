import Foundation
import SegTTT
import TestSupport
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

final class RunnerTests: ConfiguredTestCase {
    func makeOCL(seed: UInt64 = 4, maskRatio: Double = 0.1) throws -> OCL {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.05
        config.maskRatio = maskRatio
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
        let runner = try Runner(method: makeOCL(), methodName: "ocl", dataset: dataset, mapping: mapping)
        try runner.run(until: 1)
        try runner.save(to: state)
        let other = try Runner(
            method: Tent(model: TinySegNet(generator: Generator(seed: 9))), methodName: "tent", dataset: dataset,
            mapping: mapping)
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

    /// The weights after a run of `frames` frames in `mode`.
    func weights(after frames: Int, of dataset: any SegmentationDataset, mode: StreamMode) throws -> [Float] {
        let method = try makeOCL()
        let runner = try Runner(
            method: method, dataset: dataset, mapping: .identity(classes: 5, outputs: 5), mode: mode)
        try runner.run(until: frames)
        return try method.model.stateDict()["conv1.weight"].map { try $0.toArray(Float.self) } ?? []
    }

    func testEpisodicModeResetsToSourceAfterEveryFrame() throws {
        let source = try makeOCL().model.stateDict()["conv1.weight"].map { try $0.toArray(Float.self) }
        XCTAssertEqual(try weights(after: 2, of: NoiseStream(), mode: .episodic), source)
        XCTAssertNotEqual(try weights(after: 2, of: NoiseStream(), mode: .continual), source, "the control moves")
    }

    /// Domain reset: at the change of domain the weights return to the source, so the run's
    /// weights after the change equal those of a run that starts at the new domain (without
    /// restoration, whose random draws go on across a reset).
    func testDomainResetStartsEachDomainFromTheSource() throws {
        let schedule = try CorruptionSchedule(parsing: "clean@2,gaussian_noise:2@3")
        let stream = CorruptedDataset(NoiseStream(), schedule: schedule, seed: 1)
        let method = try makeOCL(maskRatio: 0)
        let runner = try Runner(
            method: method, dataset: stream, mapping: .identity(classes: 5, outputs: 5), mode: .domainReset)
        try runner.run(until: 4)
        let fresh = try makeOCL(maskRatio: 0)
        let second = DatasetSlice(stream, range: 2..<4)
        try Runner(method: fresh, dataset: second, mapping: .identity(classes: 5, outputs: 5)).run()
        let a = try XCTUnwrap(method.model.stateDict()["conv1.weight"]).toArray(Float.self)
        let b = try XCTUnwrap(fresh.model.stateDict()["conv1.weight"]).toArray(Float.self)
        XCTAssertEqual(a, b)
        XCTAssertEqual(runner.domainMatrices.map(\.domain), ["clean", "gaussian_noise:2"])
        XCTAssertNotEqual(
            try weights(after: 4, of: stream, mode: .continual), a, "the control carries the first domain's steps over")
    }

    /// Rounds: one matrix per round and per domain, which add up to the stream's, and survive a
    /// save and resume.
    func testRoundsAndDomainsHaveTheirOwnMatricesThatResume() throws {
        let schedule = try CorruptionSchedule(parsing: "clean@2,contrast:2@4")
        let stream = RepeatedDataset(CorruptedDataset(NoiseStream(), schedule: schedule, seed: 1), rounds: 2)
        XCTAssertEqual(stream.count, 12)
        XCTAssertEqual(try stream.sample(at: 7).name, "round2/frame1")
        let mapping = ClassMapping.identity(classes: 5, outputs: 5)
        let straight = try Runner(method: makeOCL(), dataset: stream, mapping: mapping)
        try straight.run()
        XCTAssertEqual(straight.roundMatrices.count, 2)
        XCTAssertEqual(straight.domainMatrices.map(\.domain), ["clean", "contrast:2"])
        for parts in [straight.roundMatrices, straight.domainMatrices.map(\.matrix)] {
            let sum = parts.reduce(into: mapping.makeConfusionMatrix()) { $0.merge($1) }
            XCTAssertEqual(sum.counts, straight.matrix.counts)
        }
        XCTAssertNotEqual(straight.roundMatrices[0].counts, straight.roundMatrices[1].counts, "round 2 meets adapted weights")

        let state = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-run-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: state) }
        let first = try Runner(method: makeOCL(), dataset: stream, mapping: mapping)
        try first.run(until: 7)
        try first.save(to: state)
        let resumed = try Runner(method: makeOCL(), dataset: stream, mapping: mapping)
        try resumed.resume(from: state)
        try resumed.run()
        XCTAssertEqual(resumed.matrix.counts, straight.matrix.counts)
        XCTAssertEqual(resumed.roundMatrices.map(\.counts), straight.roundMatrices.map(\.counts))
        XCTAssertEqual(resumed.domainMatrices.map(\.matrix.counts), straight.domainMatrices.map(\.matrix.counts))
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
