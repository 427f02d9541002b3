import TestSupport
import Torch
import XCTest

/// Every handle the shim hands out is freed once its Swift owner goes away: after a workload
/// touching every operation family (thrown errors, autograd and generators included), the
/// live tensor and generator counts are back where they started.
final class LeakTests: ConfiguredTestCase {
    func testWorkloadReleasesEveryHandle() throws {
        // The fixture cache holds tensors for the whole process; load it before counting.
        try Fixtures.preload()
        let tensorsBefore = Runtime.liveTensorCount
        let generatorsBefore = Runtime.liveGeneratorCount

        try workload()

        XCTAssertEqual(Runtime.liveTensorCount, tensorsBefore, "tensor handles leaked")
        XCTAssertEqual(Runtime.liveGeneratorCount, generatorsBefore, "generator handles leaked")
    }

    /// The counts do go up while tensors and generators are alive (so the test above can fail).
    func testCountsTrackLiveHandles() throws {
        let tensorsBefore = Runtime.liveTensorCount
        let generatorsBefore = Runtime.liveGeneratorCount
        func makeAndCount() throws {
            let held = (try Tensor.zeros([2]), try Tensor.ones([3]), try Generator(seed: 1))
            withExtendedLifetime(held) {
                XCTAssertEqual(Runtime.liveTensorCount, tensorsBefore + 2)
                XCTAssertEqual(Runtime.liveGeneratorCount, generatorsBefore + 1)
            }
        }
        try makeAndCount()
        XCTAssertEqual(Runtime.liveTensorCount, tensorsBefore)
        XCTAssertEqual(Runtime.liveGeneratorCount, generatorsBefore)
    }

    /// Runs in its own function so that every Swift object it makes is released on return.
    private func workload() throws {
        let g = try Generator(seed: 42)
        let x = try Tensor.normal([2, 3, 8, 8], generator: g).requiresGrad(true)
        let weight = try Tensor.uniform([4, 3, 3, 3], low: -0.2, high: 0.2, generator: g).requiresGrad(true)
        let bias = try Tensor.zeros([4]).requiresGrad(true)
        var h = try conv2d(x, weight: weight, bias: bias, padding: 1)
        let runningMean = try Tensor.zeros([4])
        let runningVar = try Tensor.ones([4])
        h = try batchNorm(h, runningMean: runningMean, runningVar: runningVar, training: true)
        h = try prelu(h, weight: try Tensor.full([1], value: 0.25))
        h = try maxPool2d(h, kernelSize: 2, ceilMode: true)
        h = try avgPool2d(h, kernelSize: 3, stride: 1, padding: 1, countIncludePad: false)
        h = try interpolate(h, size: [8, 8], mode: .bilinear(alignCorners: false))
        h = try interpolate(h, size: [5, 5], mode: .nearest)
        h = try convTranspose2d(h, weight: try Tensor.ones([4, 2, 2, 2]), stride: 2, groups: 2)
        let logits = try h.narrow(dim: 1, start: 0, length: 3)
        let target = try logits.argmax(dim: 1)
        let loss = try crossEntropy(logits, target: target, ignoreIndex: 255)
        try (loss + h.relu().mean() + h.var() + h.norm() + h.amax() + h.sigmoid().tanh().sum()).backward()
        _ = x.grad
        _ = weight.grad
        try x.zeroGrad()

        try withNoGrad {
            try weight.add_(try XCTUnwrap(weight.grad), alpha: -0.1)
            try weight.addcmul_(weight, weight, value: 0.01)
            try weight.addcdiv_(weight, try weight.abs() + 1, value: 0.01)
            try weight.mul_(0.9)
        }

        // Shapes, elementwise, reductions, conversions.
        let a = try Tensor.arange(0, 24, dtype: .float32).reshape([2, 3, 4])
        let parts = [a, try a.flip([2]), try a.slice(dim: 2, start: 0, end: 4, step: 2).expand([2, 3, 2])]
        _ = try Tensor.cat(parts.map { try $0.sum(dims: [2], keepDim: true) }, dim: 2)
        _ = try Tensor.stack([a, a], dim: 1).permute([1, 0, 2, 3]).transpose(0, 1).contiguous()
        _ = try a.indexSelect(dim: 2, index: try Tensor([Int64(3), 0])).squeeze(dim: 0).unsqueeze(dim: 0)
        _ = try Tensor.where(try a.gt(5).logicalAnd(a.lt(20)), a, try a.zerosLike())
        _ = try (2 - a) / (1 + a) * a.pow(2) - 3 / (a + 1)
        _ = try a.clamp(min: 2, max: 9).exp().log().sqrt().rsqrt().floor().isFinite().logicalNot()
        _ = try a.softmax(dim: 1).logSoftmax(dim: 2).normalize(dim: 1).mean(dims: [0, 1]).amin()
        _ = try a.max(dim: 2, keepDim: true)
        let product = try a.reshape([6, 4]).matmul(a.reshape([4, 6]))
        _ = try product.to(.float64).to(.bfloat16).to(.int64).reshape([-1]).bincount()
        _ = try a.toArray(Int32.self)
        _ = try a.transpose(0, 2).contiguousBytes()
        _ = try a.reshape([1, 2, 3, 4]).contiguous(.channelsLast).clone().detach()
        let targets = try Tensor([Int64(0), 1, 2, 3, 255, 1])
        _ = try nllLoss(try a.reshape([6, 4]).logSoftmax(dim: 1), target: targets, ignoreIndex: 255, mean: false)
        _ = try Tensor(bytes: UnsafeRawBufferPointer(start: nil, count: 0), shape: [0, 3], dtype: .float32)
        _ = a.description

        // Random numbers with several generators and states.
        let saved = try g.state()
        _ = try Tensor.bernoulli([4, 4], p: 0.5, generator: g)
        _ = try Tensor.uniform([4]).bernoulli(generator: g)
        try g.setState(saved)
        let other = try Generator(seed: 1)
        try other.setState(try g.state())
        _ = try Tensor.normal([3], generator: other)

        // Errors thrown from every layer: libtorch, the Swift checks, the shim.
        XCTAssertThrowsError(try a.matmul(a))
        XCTAssertThrowsError(try conv2d(a, weight: weight))
        XCTAssertThrowsError(try Tensor.cat([a, try Tensor.zeros([5])], dim: 0))
        XCTAssertThrowsError(try a.max(dim: 7))
        XCTAssertThrowsError(try Tensor([Float(1)], shape: [2]))
        XCTAssertThrowsError(try g.setState(a))
        XCTAssertThrowsError(try Tensor([Int64(1)]).requiresGrad(true))
        XCTAssertThrowsError(try a.requiresGrad(true).mul_(2))
        XCTAssertThrowsError(try (x * 2).backward())
        XCTAssertThrowsError(try Generator(seed: 3).setState(try Tensor.zeros([3], dtype: .uint8)))
    }
}
