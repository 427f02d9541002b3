import TestSupport
import Torch
import TorchNN
import XCTest

final class ModuleTests: ConfiguredTestCase {
    func testModesAndFreezingReachEveryDescendant() throws {
        let net = try SmallNet(generator: Generator(seed: 1))
        XCTAssertTrue(net.namedModules().allSatisfy { $0.module.isTraining })
        net.eval()
        XCTAssertTrue(net.namedModules().allSatisfy { !$0.module.isTraining })
        let total = net.namedParameters().count
        XCTAssertEqual(net.trainableParameters().count, total)
        try net.features.freeze()
        XCTAssertEqual(net.trainableParameters().count, total - net.features.namedParameters().count)
        try net.unfreeze()
        XCTAssertEqual(net.trainableParameters().count, total)
    }

    func testSeededInitialisationIsReproducible() throws {
        let a = try SmallNet(generator: Generator(seed: 7)).stateDict()
        let b = try SmallNet(generator: Generator(seed: 7)).stateDict()
        let c = try SmallNet(generator: Generator(seed: 8)).stateDict()
        let weight = "features.0.weight"
        XCTAssertEqual(try a[weight]?.toArray(Float.self), try b[weight]?.toArray(Float.self))
        XCTAssertNotEqual(try a[weight]?.toArray(Float.self), try c[weight]?.toArray(Float.self))
    }

    func testLoadingAcceptsTheDataParallelPrefix() throws {
        let source = try SmallNet(generator: Generator(seed: 3))
        let target = try SmallNet(generator: Generator(seed: 4))
        try target.load(source.stateDict().addingPrefix("module."))
        XCTAssertEqual(
            try target.head.weight.value.toArray(Float.self), try source.head.weight.value.toArray(Float.self))
    }

    func testLoadingReportsMismatchesByNameAndShapeAndChangesNothing() throws {
        let net = try SmallNet(generator: Generator(seed: 3))
        let before = try net.head.weight.value.toArray(Float.self)
        var state = try SmallNet(generator: Generator(seed: 4)).stateDict()
        state["head.weight"] = try Tensor.zeros([6, 8, 1, 1])
        state["up.weight"] = nil
        state["extra.bias"] = try Tensor.zeros([2])
        XCTAssertThrowsError(try net.load(state)) { error in
            guard let mismatch = error as? StateDictMismatch else { return XCTFail("\(error)") }
            XCTAssertEqual(mismatch.missing, ["up.weight"])
            XCTAssertEqual(mismatch.unexpected, ["extra.bias"])
            XCTAssertEqual(mismatch.shapeMismatches.map(\.name), ["head.weight"])
            let text = mismatch.description
            XCTAssertTrue(text.contains("head.weight: model expects [5, 8, 1, 1], checkpoint has [6, 8, 1, 1]"), text)
            XCTAssertTrue(text.contains("missing from the checkpoint (1): up.weight"), text)
            XCTAssertTrue(text.contains("not in the model (1): extra.bias"), text)
        }
        XCTAssertEqual(try net.head.weight.value.toArray(Float.self), before)
    }

    func testNonStrictLoadingLoadsWhatFitsAndReportsTheRest() throws {
        let net = try SmallNet(generator: Generator(seed: 3))
        let source = try SmallNet(generator: Generator(seed: 4))
        var state = source.stateDict()
        state["up.weight"] = nil
        state["extra.bias"] = try Tensor.zeros([2])
        let report = try net.load(state, strict: false)
        XCTAssertEqual(report.missing, ["up.weight"])
        XCTAssertEqual(report.unexpected, ["extra.bias"])
        XCTAssertEqual(try net.head.bias?.value.toArray(Float.self), try source.head.bias?.value.toArray(Float.self))
    }

    func testCheckpointsWithoutNumBatchesTrackedLoadStrictly() throws {
        let net = try SmallNet(generator: Generator(seed: 3))
        var state = net.stateDict()
        for name in state.names where name.hasSuffix("num_batches_tracked") { state[name] = nil }
        XCTAssertNoThrow(try net.load(state))
    }

    func testSnapshotRestoresWholeAndThroughAMask() throws {
        let net = try SmallNet(generator: Generator(seed: 5))
        let snapshot = try Snapshot(of: net)
        let original = try net.head.weight.value.toArray(Float.self)
        try withNoGrad { try net.head.weight.value.fill_(2) }
        // Restore the first output channel only.
        try snapshot.restoreParameters(net) { name, parameter in
            guard name == "head.weight" else { return nil }
            let rows = try Tensor.arange(0, 5).reshape([5, 1, 1, 1])
            return try rows.eq(0).expand(parameter.value.shape)
        }
        let mixed = try net.head.weight.value.toArray(Float.self)
        XCTAssertEqual(Array(mixed.prefix(8)), Array(original.prefix(8)))
        XCTAssertEqual(Array(mixed.dropFirst(8)), [Float](repeating: 2, count: 32))
        try snapshot.restore(net)
        XCTAssertEqual(try net.head.weight.value.toArray(Float.self), original)
    }

    func testOptimizerStateCanBeSavedAndRestored() throws {
        let x = try Tensor.normal([1, 3, 9, 9], generator: Generator(seed: 1))
        func run(steps: Int, optimizerFor: ([Parameter]) throws -> Optimizer) throws -> (SmallNet, Optimizer) {
            let net = try SmallNet(generator: Generator(seed: 2))
            net.eval()
            let optimizer = try optimizerFor(net.trainableParameters())
            for _ in 0..<steps {
                try optimizer.zeroGrad()
                try net(x).pow(2).mean().backward()
                try optimizer.step()
            }
            return (net, optimizer)
        }
        let makers: [([Parameter]) throws -> Optimizer] = [
            { try SGD($0, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3) },
            { Adam($0, learningRate: 0.01) },
        ]
        for make in makers {
            let (straight, _) = try run(steps: 3, optimizerFor: make)
            let (resumed, first) = try run(steps: 2, optimizerFor: make)
            let saved = try first.state()
            XCTAssertFalse(saved.names.isEmpty)
            // A fresh optimizer on the same weights, given the saved state, takes the same third step.
            let second = try make(resumed.trainableParameters())
            try second.loadState(saved)
            try second.zeroGrad()
            try resumed(x).pow(2).mean().backward()
            try second.step()
            try assertClose(resumed.head.weight.value, straight.head.weight.value, rtol: 1e-6, "resumed step")
        }
    }

    func testInspectableMomentum() throws {
        let p = try Parameter(Tensor([1.0, 2.0] as [Float]))
        let sgd = try SGD([p], learningRate: 0.1, momentum: 0.9)
        try (p.value * p.value).sum().backward()  // grad = 2p = [2, 4]
        try sgd.step()
        XCTAssertEqual(try sgd.momentumBuffers[0]?.toArray(Float.self), [2, 4])
        XCTAssertEqual(try p.value.toArray(Float.self), [0.8, 1.6])
    }
}
