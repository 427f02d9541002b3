import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// SegTTT's 1x1 convolution kernel for few output channels (`pointwiseConv`) against libtorch's
/// convolution of the same tensors, in values and gradients, and the cases `conv2d` sends to it.
final class PointwiseConvTests: ConfiguredTestCase {
    /// (input shape, output channels, bias, channels-last input)
    private let cases: [([Int], Int, Bool, Bool)] = [
        ([2, 128, 45, 60], 25, false, false),  // ESPNet's reduction, spans split between threads
        ([3, 7, 5, 13], 11, true, false),  // 65 pixels: a partial vector per plane, a partial block
        ([1, 40, 6, 8], 4, true, true),  // whole vectors of 8 (and 3 of 16), channels-last input
        ([2, 3, 1, 5], 2, false, false),  // fewer pixels than a vector: the plain loop alone
        ([1, 300, 9, 10], 36, true, false),  // inputs in many blocks of the weight gradient
    ]

    /// Against libtorch's convolution in float64, under every instruction set this CPU runs:
    /// values and gradients within 2e-6 of the largest magnitude of each.
    func testMatchesLibtorchInValuesAndGradients() throws {
        try Kernels.forEachInstructionSet { set in
            for (index, (shape, outputs, hasBias, channelsLast)) in cases.enumerated() {
                let label = "\(shape) -> \(outputs), \(set.rawValue) code"
                let drawn = try Tensor.normal(shape, generator: Generator(seed: UInt64(30 + index)))
                let input = try (channelsLast ? drawn.contiguous(.channelsLast) : drawn).requiresGrad(true)
                let weight = try (Tensor.normal([outputs, shape[1], 1, 1], generator: Generator(seed: 3)) * 0.1)
                    .requiresGrad(true)
                let bias =
                    hasBias ? try Tensor.normal([outputs], generator: Generator(seed: 4)).requiresGrad(true) : nil
                let leaves = [input, weight] + (bias.map { [$0] } ?? [])
                let references = try leaves.map { try $0.detach().to(.float64).requiresGrad(true) }

                let out = try Kernels.pointwiseConv(input, weight: weight, bias: bias)
                let expected = try conv2d(references[0], weight: references[1], bias: hasBias ? references[2] : nil)
                try assertNearInValuesAndGradients(out, expected, leaves: leaves, references: references, label)
            }
        }
    }

    func testInputWithoutGradientGetsNone() throws {
        let input = try Tensor.normal([1, 6, 8, 9], generator: Generator(seed: 1))
        let weight = try Tensor.normal([5, 6, 1, 1], generator: Generator(seed: 2)).requiresGrad(true)
        let reference = try weight.detach().to(.float64).requiresGrad(true)
        try Kernels.pointwiseConv(input, weight: weight).sum().backward()
        try conv2d(input.to(.float64), weight: reference).sum().backward()
        XCTAssertNil(input.grad)
        try assertNear(try XCTUnwrap(weight.grad), try XCTUnwrap(reference.grad), "gradient of the weight")
    }

    /// `Kernels.conv2d` takes the kernel for 1x1, stride 1, unpadded, ungrouped float32 CPU
    /// convolutions to at most 36 channels, as `takesConv2d` says. Told apart by the profiler's
    /// record of the kernel.
    func testConv2dTakesTheKernelWhereItFits() throws {
        func takesKernel(
            _ shape: [Int], outputs: Int, stride: Pair = 1, padding: Pair = 0, groups: Int = 1,
            dtype: DType = .float32
        ) throws -> Bool {
            let input = try Tensor.normal(shape, generator: Generator(seed: 1)).to(dtype)
            let weight = try Tensor.normal([outputs, shape[1] / groups, 1, 1], generator: Generator(seed: 2)).to(dtype)
            let (_, operators) = try OperatorTime.profile {
                _ = try Kernels.conv2d(input, weight: weight, stride: stride, padding: padding, groups: groups)
            }
            let taken = operators.contains { $0.name == "segttt::pointwise_conv" }
            let rule = Kernels.takesConv2d(
                input, weight: weight, bias: nil, stride: stride, padding: padding, dilation: 1, groups: groups)
            XCTAssertEqual(taken, rule, "the rule and the call disagree on \(shape) -> \(outputs)")
            return taken
        }
        XCTAssertTrue(try takesKernel([1, 128, 9, 10], outputs: 25))
        XCTAssertTrue(try takesKernel([1, 64, 9, 10], outputs: 32), "multiples of 8 too")
        XCTAssertTrue(try takesKernel([1, 8, 9, 10], outputs: 36))
        XCTAssertFalse(try takesKernel([1, 16, 9, 10], outputs: 37), "more than 36 outputs")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, stride: 2), "strided")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, padding: 1), "padded")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, groups: 2), "grouped")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, dtype: .float64), "float64")
    }

    func testRejectsWhatItCannotCompute() throws {
        let input = try Tensor.zeros([1, 4, 5, 5])
        XCTAssertThrowsError(try Kernels.pointwiseConv(input, weight: Tensor.zeros([2, 3, 1, 1]))) { error in
            XCTAssertTrue(
                "\(error)".contains(
                    "needs input [N, C, H, W] and weight [O, C, 1, 1], got [1, 4, 5, 5] and [2, 3, 1, 1]"),
                "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.pointwiseConv(input, weight: Tensor.zeros([2, 4, 1, 1]), bias: Tensor.zeros([3]))
        ) { error in
            XCTAssertTrue("\(error)".contains("needs a bias of 2 values, got [3]"), "\(error)")
        }
    }
}
