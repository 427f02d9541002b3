import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// SegTTT's 3x3 stride-2 convolution kernel (`stridedConv3x3`) against libtorch's convolution of
/// the same tensors, in values and gradients, and the cases `conv2d` sends to it.
final class StridedConvTests: ConfiguredTestCase {
    /// (input shape, output channels, bias, channels-last input)
    private let cases: [([Int], Int, Bool, Bool)] = [
        ([2, 131, 18, 24], 25, false, false),  // ESPNet's level 3 downsampling, smaller
        ([1, 3, 13, 17], 7, true, false),  // odd sides: the last output column reads padding
        ([2, 5, 8, 66], 12, true, true),  // 33 output columns: a partial vector; channels-last input
        ([1, 4, 1, 2], 2, false, false),  // one input row, one output pixel
    ]

    /// Against libtorch's convolution in float64, under every instruction set this CPU runs.
    func testMatchesLibtorchInValuesAndGradients() throws {
        try Kernels.forEachInstructionSet { set in
            for (index, (shape, outputs, hasBias, channelsLast)) in cases.enumerated() {
                let label = "\(shape) -> \(outputs), \(set.rawValue) code"
                let drawn = try Tensor.normal(shape, generator: Generator(seed: UInt64(40 + index)))
                let input = try (channelsLast ? drawn.contiguous(.channelsLast) : drawn).requiresGrad(true)
                let weight = try (Tensor.normal([outputs, shape[1], 3, 3], generator: Generator(seed: 3)) * 0.1)
                    .requiresGrad(true)
                let bias =
                    hasBias ? try Tensor.normal([outputs], generator: Generator(seed: 4)).requiresGrad(true) : nil
                let leaves = [input, weight] + (bias.map { [$0] } ?? [])
                let references = try leaves.map { try $0.detach().to(.float64).requiresGrad(true) }

                let out = try Kernels.stridedConv3x3(input, weight: weight, bias: bias)
                let expected = try conv2d(
                    references[0], weight: references[1], bias: hasBias ? references[2] : nil, stride: 2, padding: 1)
                XCTAssertEqual(out.shape, expected.shape, label)
                try assertNearInValuesAndGradients(out, expected, leaves: leaves, references: references, label)
            }
        }
    }

    /// A frozen weight (as under TENT): the input's gradient alone, libtorch's.
    func testFrozenWeightGivesTheInputGradientAlone() throws {
        let input = try Tensor.normal([1, 6, 9, 10], generator: Generator(seed: 1)).requiresGrad(true)
        let weight = try Tensor.normal([5, 6, 3, 3], generator: Generator(seed: 2))
        let reference = try input.detach().to(.float64).requiresGrad(true)
        try Kernels.stridedConv3x3(input, weight: weight).sum().backward()
        try conv2d(reference, weight: weight.to(.float64), stride: 2, padding: 1).sum().backward()
        XCTAssertNil(weight.grad)
        try assertNear(try XCTUnwrap(input.grad), try XCTUnwrap(reference.grad), "gradient of the input")
    }

    /// `Kernels.conv2d` takes the kernel for 3x3, stride 2, padding 1, undilated, ungrouped
    /// float32 CPU convolutions to at most 36 channels, not a multiple of 8, as `takesConv2d`
    /// says. Told apart by the profiler's record of the kernel.
    func testConv2dTakesTheKernelWhereItFits() throws {
        func takesKernel(
            _ shape: [Int], outputs: Int, padding: Pair = 1, dilation: Pair = 1, dtype: DType = .float32
        ) throws -> Bool {
            let input = try Tensor.normal(shape, generator: Generator(seed: 1)).to(dtype)
            let weight = try Tensor.normal([outputs, shape[1], 3, 3], generator: Generator(seed: 2)).to(dtype)
            return try conv2dTakes(
                "segttt::strided_conv3x3", input, weight: weight, stride: 2, padding: padding, dilation: dilation)
        }
        XCTAssertTrue(try takesKernel([1, 131, 9, 10], outputs: 25))
        XCTAssertTrue(try takesKernel([1, 19, 9, 10], outputs: 12))
        XCTAssertFalse(try takesKernel([1, 3, 9, 10], outputs: 16), "a multiple of 8 outputs: oneDNN's")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 37), "more than 36 outputs")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, padding: 2), "padding other than 1")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, padding: 2, dilation: 2), "dilated")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, dtype: .float64), "float64")
    }

    func testRejectsWhatItCannotCompute() throws {
        let input = try Tensor.zeros([1, 4, 5, 5])
        XCTAssertThrowsError(try Kernels.stridedConv3x3(input, weight: Tensor.zeros([2, 3, 3, 3]))) { error in
            XCTAssertTrue(
                "\(error)".contains(
                    "the strided 3x3 convolution needs input [N, C, H, W] and weight [O, C, 3, 3], got [1, 4, 5, 5] and [2, 3, 3, 3]"
                ), "\(error)")
        }
    }
}
