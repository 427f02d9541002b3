import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// conv2d, conv_transpose2d (libtorch's, and SegTTT's kernels under their rules), batch norm,
/// pooling and interpolation against PyTorch (fixtures from Scripts/fixtures/ops.py), values
/// and gradients.
final class ConvolutionParityTests: ConfiguredTestCase {
    // MARK: conv2d

    /// Runs libtorch's conv2d and `Kernels.conv2d` on the case's input/weight/(bias) and checks
    /// output and gradients of each.
    private func checkConv2d(
        _ name: String, hasBias: Bool, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1, groups: Int = 1,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let c = FixtureCase("conv2d.\(name)")
        for convolve in [Torch.conv2d, Kernels.conv2d] {
            let input = try c.leaf("input")  // [N, Cin, H, W]
            let weight = try c.leaf("weight")  // [Cout, Cin / groups, kH, kW]
            let bias = hasBias ? try c.leaf("bias") : nil
            let out = try convolve(input, weight, bias, stride, padding, dilation, groups)
            try c.assertOutput(out, file: file, line: line)
            if let bias {
                try c.assertGradients(
                    of: out, ["input": input, "weight": weight, "bias": bias], file: file, line: line)
            } else {
                try c.assertGradients(of: out, ["input": input, "weight": weight], file: file, line: line)
            }
        }
    }

    func testConv2dPaddedWithBias() throws {
        try checkConv2d("basic", hasBias: true, padding: 1)
    }

    func testConv2dStridedAsymmetricPaddingWithoutBias() throws {
        try checkConv2d("strided", hasBias: false, stride: 2, padding: [1, 0])
    }

    func testConv2dDilated() throws {
        try checkConv2d("dilated", hasBias: true, padding: 2, dilation: 2)
    }

    func testConv2dGrouped() throws {
        try checkConv2d("grouped", hasBias: true, stride: [2, 1], padding: 1, groups: 2)
    }

    func testConv2dDepthwise() throws {
        try checkConv2d("depthwise", hasBias: true, padding: 1, groups: 4)
        try checkConv2d("depthwise_nobias", hasBias: false, stride: 2, groups: 3)
    }

    // MARK: conv_transpose2d

    private func checkConvTranspose2d(
        _ name: String, hasBias: Bool, stride: Pair = 1, padding: Pair = 0, outputPadding: Pair = 0, groups: Int = 1,
        dilation: Pair = 1, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let c = FixtureCase("conv_transpose2d.\(name)")
        for convolve in [Torch.convTranspose2d, Kernels.convTranspose2d] {
            let input = try c.leaf("input")
            let weight = try c.leaf("weight")  // [Cin, Cout / groups, kH, kW]
            let bias = hasBias ? try c.leaf("bias") : nil
            let out = try convolve(input, weight, bias, stride, padding, outputPadding, groups, dilation)
            try c.assertOutput(out, file: file, line: line)
            if let bias {
                try c.assertGradients(
                    of: out, ["input": input, "weight": weight, "bias": bias], file: file, line: line)
            } else {
                try c.assertGradients(of: out, ["input": input, "weight": weight], file: file, line: line)
            }
        }
    }

    func testConvTranspose2dStride2OutputPadding() throws {
        try checkConvTranspose2d("stride2", hasBias: true, stride: 2, padding: 1, outputPadding: 1)
    }

    func testConvTranspose2dGrouped() throws {
        try checkConvTranspose2d("grouped", hasBias: false, stride: 2, groups: 2)
    }

    func testConvTranspose2dDilated() throws {
        try checkConvTranspose2d(
            "dilated", hasBias: true, stride: [2, 1], padding: 1, outputPadding: [1, 0], dilation: 2)
    }

    func testConvTranspose2dWithKernelEqualToStride() throws {
        try checkConvTranspose2d("blocks", hasBias: true, stride: 2)
        try checkConvTranspose2d("blocks_rect", hasBias: false, stride: [2, 3])
    }

    /// The block shuffle's kernel against its definition as reshape, permute and reshape, in
    /// values and in the gradient of a random, non-contiguous upstream one, on inputs large
    /// enough to be split between threads (one channels-last); and the error for channels that
    /// do not make whole blocks.
    func testBlockShuffleMatchesItsDefinition() throws {
        let cases = [([2, 12, 37, 53], 2, 2), ([2, 18, 60, 47], 2, 3), ([1, 8, 5, 3], 1, 4)]
        for (index, (shape, sh, sw)) in cases.enumerated() {
            // The first case starts from a channels-last tensor.
            let drawn = try Tensor.normal(shape, generator: Generator(seed: 6))
            let blocks = try (index == 0 ? drawn.contiguous(.channelsLast) : drawn).requiresGrad(true)
            let reference = try blocks.detach().requiresGrad(true)
            let o = shape[1] / (sh * sw)
            let out = try Kernels.blockShuffle(blocks, height: sh, width: sw)
            let expected = try reference.reshape([shape[0], o, sh, sw, shape[2], shape[3]])
                .permute([0, 1, 4, 2, 5, 3]).reshape([shape[0], o, shape[2] * sh, shape[3] * sw])
            XCTAssertEqual(out.shape, expected.shape)
            assertClose(out, expected, rtol: 0, atol: 0, "values, \(shape) in \(sh)x\(sw) blocks")
            // A non-contiguous upstream gradient: the transpose of a drawn one.
            let drawnUpstream = try Tensor.normal(
                [expected.shape[0], expected.shape[1], expected.shape[3], expected.shape[2]],
                generator: Generator(seed: 7))
            let upstream = try drawnUpstream.transpose(2, 3)
            try (out * upstream).sum().backward()
            try (expected * upstream).sum().backward()
            assertClose(
                try XCTUnwrap(blocks.grad), try XCTUnwrap(reference.grad), rtol: 0, atol: 0,
                "gradient, \(shape) in \(sh)x\(sw) blocks")
        }
        XCTAssertThrowsError(try Kernels.blockShuffle(Tensor.zeros([1, 6, 2, 2]), height: 2, width: 2)) { error in
            XCTAssertTrue("\(error)".contains("needs blocks [N, O * 2 * 2, H, W], got [1, 6, 2, 2]"), "\(error)")
        }
    }

    // MARK: batch norm

    func testBatchNormEvalUsesGivenStatistics() throws {
        let c = FixtureCase("batch_norm.eval")
        let input = try c.leaf("input")
        let weight = try c.leaf("weight")
        let bias = try c.leaf("bias")
        let runningMean = try c("running_mean")
        let runningVar = try c("running_var")
        let out = try batchNorm(
            input, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias, training: false)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["input": input, "weight": weight, "bias": bias])
        // Evaluation leaves the statistics alone.
        assertClose(runningMean, try c("running_mean"), rtol: 0, atol: 0, "running_mean")
        assertClose(runningVar, try c("running_var"), rtol: 0, atol: 0, "running_var")
    }

    func testBatchNormTrainingUsesBatchStatisticsAndUpdatesRunningStatistics() throws {
        let c = FixtureCase("batch_norm.train")
        let input = try c.leaf("input")
        let weight = try c.leaf("weight")
        let bias = try c.leaf("bias")
        let runningMean = try c("running_mean")
        let runningVar = try c("running_var")
        let out = try batchNorm(
            input, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias, training: true,
            momentum: 0.2, eps: 1e-3)
        try c.assertOutput(out)
        assertClose(runningMean, try c("running_mean_after"), "running_mean_after")
        assertClose(runningVar, try c("running_var_after"), "running_var_after")
        try c.assertGradients(of: out, ["input": input, "weight": weight, "bias": bias])
    }

    func testBatchNormTrainingWithoutRunningStatisticsOrAffine() throws {
        let c = FixtureCase("batch_norm.train_nostats")
        let input = try c.leaf("input")
        let out = try batchNorm(input, runningMean: nil, runningVar: nil, training: true)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["input": input])
    }

    func testBatchNormUpdateStatisticsFoldsTheBatchIntoTheRunningStatistics() throws {
        let c = FixtureCase("batch_norm.update_stats")
        let input = try c("input")
        let runningMean = try c("running_mean")
        let runningVar = try c("running_var")
        try batchNormUpdateStatistics(input, runningMean: runningMean, runningVar: runningVar, momentum: 0.3)
        assertClose(runningMean, try c("running_mean_after"), "running_mean_after")
        assertClose(runningVar, try c("running_var_after"), "running_var_after")
        // The same as the two-pass formula with the unbiased variance.
        let (variance, mean) = try input.varMean(dims: [0, 2, 3], unbiased: true)
        assertClose(runningMean, try 0.3 * mean + 0.7 * c("running_mean"), "mean formula")
        assertClose(runningVar, try 0.3 * variance + 0.7 * c("running_var"), "variance formula")
        for wrong in [[2], [4], [1, 3]] {
            XCTAssertThrowsError(
                try batchNormUpdateStatistics(
                    input, runningMean: try Tensor.zeros(wrong), runningVar: runningVar, momentum: 1)
            ) { error in
                XCTAssertTrue("\(error)".contains("must have 3 elements, one per input channel"), "\(error)")
            }
        }
    }

    /// SegTTT's kernel (float32, contiguous: channels split between the threads) against the
    /// float64 formula, and against libtorch's kernel, which a channels-last copy of the same
    /// input takes.
    func testBatchNormUpdateStatisticsOnALargeInputMatchesTheFormulaAndLibtorch() throws {
        let input = try Tensor.normal([2, 40, 45, 61], generator: Generator(seed: 4)) * 3.0 + 1.5
        let start = (mean: try Tensor.uniform([40], generator: Generator(seed: 5)), var: try Tensor.ones([40]))
        func updated(_ x: Tensor) throws -> (mean: Tensor, var: Tensor) {
            let (mean, variance) = (try start.mean.clone(), try start.var.clone())
            try batchNormUpdateStatistics(x, runningMean: mean, runningVar: variance, momentum: 0.15)
            return (mean, variance)
        }
        let ours = try updated(input)
        let libtorchs = try updated(input.contiguous(.channelsLast))
        let (variance, mean) = try input.to(.float64).varMean(dims: [0, 2, 3], unbiased: true)
        let expected = (
            mean: try (0.15 * mean + 0.85 * start.mean.to(.float64)).to(.float32),
            var: try (0.15 * variance + 0.85 * start.var.to(.float64)).to(.float32)
        )
        assertClose(ours.mean, expected.mean, rtol: 1e-6, "mean against the formula")
        assertClose(ours.var, expected.var, rtol: 1e-6, "variance against the formula")
        assertClose(ours.mean, libtorchs.mean, "mean against libtorch's kernel")
        assertClose(ours.var, libtorchs.var, "variance against libtorch's kernel")
        // Two values per channel, the fewest that have an unbiased variance.
        let pairs = try Tensor([Float(1), 3, -2, 2, 0.5, 0.5], shape: [1, 3, 1, 2])
        let (pairMean, pairVar) = (try Tensor.zeros([3]), try Tensor.zeros([3]))
        try batchNormUpdateStatistics(pairs, runningMean: pairMean, runningVar: pairVar, momentum: 1)
        try assertValues(pairMean, [Float(2), 0, 0.5], shape: [3])
        try assertValues(pairVar, [Float(2), 8, 0], shape: [3])
    }

    func testBatchNormUpdateStatisticsRejectsAnInputWithoutChannels() throws {
        XCTAssertThrowsError(
            try batchNormUpdateStatistics(
                Tensor.zeros([2, 0, 3, 3]), runningMean: Tensor.zeros([0]), runningVar: Tensor.ones([0]), momentum: 1)
        ) { error in
            XCTAssertTrue("\(error)".contains("[N, C, ...] with C > 0, got [2, 0, 3, 3]"), "\(error)")
        }
    }

    /// Normalising with running statistics saves them for the backward; updating them in place
    /// afterwards must make that backward fail, as any in-place write does, not use new values.
    func testBatchNormUpdateStatisticsInvalidatesAGraphThatSavedThem() throws {
        let input = try Tensor.normal([2, 3, 4, 4], generator: Generator(seed: 3)).requiresGrad(true)
        let (runningMean, runningVar) = (try Tensor.zeros([3]), try Tensor.ones([3]))
        let weight = try Tensor.ones([3]).requiresGrad(true)
        let out = try batchNorm(
            input, runningMean: runningMean, runningVar: runningVar, weight: weight, training: false)
        try withNoGrad {
            try batchNormUpdateStatistics(input, runningMean: runningMean, runningVar: runningVar, momentum: 0.5)
        }
        XCTAssertThrowsError(try out.sum().backward()) { error in
            XCTAssertTrue("\(error)".contains("modified by an inplace operation"), "\(error)")
        }
    }

    // MARK: pooling

    private func checkMaxPool(
        _ name: String, kernel: Pair, stride: Pair? = nil, padding: Pair = 0, dilation: Pair = 1, ceil: Bool = false,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let c = FixtureCase("max_pool2d.\(name)")
        let input = try c.leaf("input")
        let out = try maxPool2d(
            input, kernelSize: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceil)
        try c.assertOutput(out, file: file, line: line)
        try c.assertGradients(of: out, ["input": input], file: file, line: line)
    }

    func testMaxPool2d() throws {
        try checkMaxPool("k2", kernel: 2)
        try checkMaxPool("k3s2p1", kernel: 3, stride: 2, padding: 1)
        try checkMaxPool("dilated", kernel: 2, stride: 1, padding: 1, dilation: 2)
    }

    func testMaxPool2dCeilMode() throws {
        try checkMaxPool("ceil", kernel: 3, stride: 2, ceil: true)
        try checkMaxPool("ceil_pad", kernel: [3, 2], stride: [2, 2], padding: [1, 1], ceil: true)
    }

    private func checkAvgPool(
        _ name: String, kernel: Pair, stride: Pair? = nil, padding: Pair = 0, ceil: Bool, includePad: Bool,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let c = FixtureCase("avg_pool2d.\(name)")
        let input = try c.leaf("input")
        let out = try avgPool2d(
            input, kernelSize: kernel, stride: stride, padding: padding, ceilMode: ceil, countIncludePad: includePad)
        try c.assertOutput(out, file: file, line: line)
        try c.assertGradients(of: out, ["input": input], file: file, line: line)
    }

    func testAvgPool2dPaddingCountIncludePad() throws {
        try checkAvgPool("k2", kernel: 2, ceil: false, includePad: true)
        try checkAvgPool("pad_include", kernel: 3, stride: 2, padding: 1, ceil: false, includePad: true)
        try checkAvgPool("pad_exclude", kernel: 3, stride: 2, padding: 1, ceil: false, includePad: false)
    }

    func testAvgPool2dCeilMode() throws {
        try checkAvgPool("ceil_include", kernel: 3, stride: 2, padding: 1, ceil: true, includePad: true)
        try checkAvgPool("ceil_exclude", kernel: 3, stride: 2, padding: 1, ceil: true, includePad: false)
        try checkAvgPool("ceil_nopad", kernel: [2, 3], stride: [2, 2], ceil: true, includePad: true)
    }

    // MARK: interpolation

    private func checkInterpolate(
        _ name: String, size: Pair, mode: InterpolationMode, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let c = FixtureCase("interpolate.\(name)")
        let input = try c.leaf("input")
        let out = try interpolate(input, size: size, mode: mode)
        try c.assertOutput(out, file: file, line: line)
        try c.assertGradients(of: out, ["input": input], file: file, line: line)
    }

    func testInterpolateBilinearAlignCorners() throws {
        try checkInterpolate("bilinear_ac_up", size: [9, 13], mode: .bilinear(alignCorners: true))
        try checkInterpolate("bilinear_ac_down", size: [3, 4], mode: .bilinear(alignCorners: true))
    }

    func testInterpolateBilinearHalfPixel() throws {
        try checkInterpolate("bilinear_up", size: [8, 11], mode: .bilinear(alignCorners: false))
        try checkInterpolate("bilinear_down", size: [2, 4], mode: .bilinear(alignCorners: false))
    }

    func testInterpolateNearest() throws {
        try checkInterpolate("nearest_up", size: [8, 13], mode: .nearest)
        try checkInterpolate("nearest_down", size: [3, 4], mode: .nearest)
    }
}
