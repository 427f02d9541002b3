import SegTTTKernels
import TestSupport
import Torch
import TorchNN
import XCTest

/// The fused batch norm + PReLU kernel against libtorch's batch_norm and prelu (in float64),
/// and the statistics a BatchNorm layer hands to it.
final class BatchNormPReLUTests: ConfiguredTestCase {
    /// Output and the gradients of input, weight, bias and slope, for one slope per channel, one
    /// shared slope and a zero one, on planes shorter and longer than a vector, and on a non-contiguous
    /// input (a channels-last copy).
    func testFusedKernelMatchesBatchNormThenPReLU() throws {
        // (shape, slope count, slope scale); a zero slope makes the kernel batch norm + ReLU.
        let cases: [([Int], Int, Double)] = [
            ([2, 5, 3, 7], 5, 0.5), ([2, 19, 33, 40], 19, 0.5), ([3, 4, 9, 9], 1, 0.5), ([2, 8, 6, 5], 1, 0),
        ]
        for (seed, (shape, slopes, slopeScale)) in cases.enumerated() {
            let generator = try Generator(seed: UInt64(seed))
            let channels = shape[1]
            let x = try Tensor.normal(shape, generator: generator) * 2.0
            let mean = try Tensor.normal([channels], generator: generator) * 0.5
            let variance = try Tensor.uniform([channels], low: 0.5, high: 1.5, generator: generator)
            let weight = try Tensor.normal([channels], generator: generator)
            let bias = try Tensor.normal([channels], generator: generator) * 0.1
            let slope = try Tensor.uniform([slopes], generator: generator) * slopeScale
            let upstream = try Tensor.normal(shape, generator: generator)
            for layout in [MemoryFormat.contiguous, .channelsLast] {
                let leaves = try [x.contiguous(layout), weight, bias, slope].map { try $0.clone().requiresGrad(true) }
                let fused = try Kernels.batchNormPReLU(
                    leaves[0], mean: mean, variance: variance, weight: leaves[1], bias: leaves[2], slope: leaves[3],
                    eps: 1e-3)
                try fused.backward(upstream)
                let reference = try [x, weight, bias, slope].map { try $0.to(.float64).requiresGrad(true) }
                let composed = try prelu(
                    batchNorm(
                        reference[0], runningMean: mean.to(.float64), runningVar: variance.to(.float64),
                        weight: reference[1], bias: reference[2], training: false, momentum: 0.1, eps: 1e-3),
                    weight: reference[3])
                try composed.backward(upstream.to(.float64))
                let label = "shape \(shape), \(slopes) slope(s), \(layout)"
                try assertClose(fused, composed, rtol: 1e-5, atol: 1e-5, "output, \(label)")
                for (name, (leaf, expected)) in zip(["input", "weight", "bias", "slope"], zip(leaves, reference)) {
                    try assertClose(leaf.grad, expected.grad, rtol: 1e-4, atol: 1e-4, "\(name) gradient, \(label)")
                }
            }
        }
    }

    func testFusedKernelNamesWhatDoesNotFit() throws {
        let x = try Tensor.normal([2, 4, 3, 3], generator: Generator(seed: 1))
        let four = try Tensor.ones([4])
        XCTAssertThrowsError(
            try Kernels.batchNormPReLU(
                x, mean: try Tensor.zeros([3]), variance: four, weight: four, bias: four, slope: four, eps: 1e-5)
        ) { error in
            XCTAssertTrue(
                "\(error)".contains("statistics, weight and bias of 4 elements on the CPU, got [3]"), "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.batchNormPReLU(
                x, mean: four, variance: four, weight: four, bias: four, slope: try Tensor.ones([2]), eps: 1e-5)
        ) { error in
            XCTAssertTrue("\(error)".contains("one PReLU slope or 4, got [2]"), "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.batchNormPReLU(
                x.to(.float64), mean: four, variance: four, weight: four, bias: four, slope: four, eps: 1e-5)
        ) { error in
            XCTAssertTrue("\(error)".contains("runs on float32 CPU input"), "\(error)")
        }
    }

    /// Each channel is reduced by one thread, so output and gradients are the same bits on one
    /// thread as on two; and the kernel does run on two.
    func testFusedKernelGivesTheSameBitsOnOneAndTwoThreads() throws {
        let generator = try Generator(seed: 9)
        let x = try Tensor.normal([2, 12, 30, 40], generator: generator)
        let mean = try Tensor.normal([12], generator: generator) * 0.5
        let variance = try Tensor.uniform([12], low: 0.5, high: 1.5, generator: generator)
        let upstream = try Tensor.normal([2, 12, 30, 40], generator: generator)
        let original = Runtime.numThreads
        defer { Runtime.numThreads = original }
        var results: [[[Float]]] = []
        for threads in [1, 2] {
            Runtime.numThreads = threads
            let leaves = try [x, Tensor.ones([12]), Tensor.zeros([12]), Tensor.full([12], value: 0.25)].map {
                try $0.clone().requiresGrad(true)
            }
            var output: Tensor?
            let used = try Kernels.threadsUsed {
                output = try Kernels.batchNormPReLU(
                    leaves[0], mean: mean, variance: variance, weight: leaves[1], bias: leaves[2],
                    slope: leaves[3], eps: 1e-5)
                try output?.backward(upstream)
            }
            XCTAssertEqual(used, threads, "forward and backward on \(threads) thread(s)")
            let y = try XCTUnwrap(output)
            let gradients = try leaves.map { try XCTUnwrap($0.grad) }
            results.append(try ([y] + gradients).map { try $0.toArray(Float.self) })
        }
        XCTAssertTrue(results[0] == results[1], "output or gradients differ between 1 and 2 threads")
    }

    /// `fixedStatistics` gives what `forward` normalises with, and nil (changing nothing)
    /// where the statistics carry a gradient.
    func testFixedStatisticsFollowTheMode() throws {
        let bn = try BatchNorm2d(3)
        let x = try Tensor.normal([2, 3, 4, 5], generator: Generator(seed: 4)) * 3.0 + 1.0
        let (variance, mean) = try x.varMean(dims: [0, 2, 3])
        bn.statistics = .prior(0.75)
        let prior = try XCTUnwrap(bn.fixedStatistics(for: x))
        try assertClose(prior.mean, 0.25 * mean, rtol: 1e-5, atol: 1e-6, "prior mean")
        try assertClose(prior.variance, 0.75 + 0.25 * variance, rtol: 1e-5, atol: 1e-6, "prior variance")
        XCTAssertNil(bn.inputShift, "no shift recorded unless asked")
        bn.recordsInputShift = true
        let recorded = try XCTUnwrap(bn.fixedStatistics(for: x))
        try assertClose(recorded.mean, prior.mean, rtol: 1e-6, atol: 1e-6, "prior mean while recording the shift")
        try assertClose(recorded.variance, prior.variance, rtol: 1e-6, atol: 1e-6, "prior variance while recording the shift")
        // KL(N(m, v) || N(0, 1)) per channel, eps added to both variances, averaged.
        let divergence = try ((variance + 1e-5) / (1 + 1e-5) + mean * mean / (1 + 1e-5) - 1
            - ((variance + 1e-5) / (1 + 1e-5)).log()) * 0.5
        XCTAssertEqual(try XCTUnwrap(bn.inputShift), try divergence.mean().item(), accuracy: 1e-5, "the recorded shift")
        bn.recordsInputShift = false
        bn.statistics = .movingAverage(0.5)
        _ = try XCTUnwrap(bn.fixedStatistics(for: x))
        try assertClose(bn.runningMean.value, 0.5 * mean, rtol: 1e-5, atol: 1e-6, "moving average mean")
        for mode in [BatchNormStatistics.batch, .followMode] {
            bn.statistics = mode
            bn.train()
            let before = try bn.runningMean.value.clone()
            XCTAssertNil(try bn.fixedStatistics(for: x), "\(mode)")
            try assertClose(bn.runningMean.value, before, rtol: 0, atol: 0, "\(mode) leaves the statistics")
        }
        bn.eval()
        bn.statistics = .followMode
        XCTAssertEqual(
            try XCTUnwrap(bn.fixedStatistics(for: x)).mean.toArray(Float.self),
            try bn.runningMean.value.toArray(Float.self))
    }
}
