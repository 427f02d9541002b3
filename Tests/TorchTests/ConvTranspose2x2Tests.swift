import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// SegTTT's 2x2 stride-2 transposed convolution kernel (`convTranspose2x2`) against libtorch's
/// transposed convolution in float64, in values and gradients, and the cases
/// `convTranspose2d` sends to it.
final class ConvTranspose2x2Tests: ConfiguredTestCase {
    /// (input shape, output channels, bias, channels-last input)
    private let cases: [([Int], Int, Bool, Bool)] = [
        ([2, 20, 45, 60], 20, false, false),  // ESPNet's decoder, split between threads; 60 = 7.5 vectors
        ([3, 5, 9, 13], 7, true, false),  // blocks of 3 outputs and 4 inputs, both partial
        ([1, 3, 4, 32], 2, true, true),  // whole vectors, channels-last input
        ([2, 6, 3, 1], 4, false, false),  // one column
        ([1, 4, 3, 24], 5, true, false),  // dy rows of 3 vectors of 16: a pair, then a half pair
        ([1, 4, 2, 40], 3, true, false),  // x rows of 2.5 vectors of 16: a pair, then a half vector alone
    ]

    /// Under every instruction set this CPU runs.
    func testMatchesLibtorchInValuesAndGradients() throws {
        try Kernels.forEachInstructionSet { try matchesLibtorch($0) }
    }

    private func matchesLibtorch(_ set: Kernels.InstructionSet) throws {
        for (index, (shape, outputs, hasBias, channelsLast)) in cases.enumerated() {
            let label = "\(shape) -> \(outputs), \(set.rawValue) code"
            let drawn = try Tensor.normal(shape, generator: Generator(seed: UInt64(20 + index)))
            let input = try (channelsLast ? drawn.contiguous(.channelsLast) : drawn).requiresGrad(true)
            let weight = try (Tensor.normal([shape[1], outputs, 2, 2], generator: Generator(seed: 3)) * 0.3)
                .requiresGrad(true)
            let bias = hasBias ? try Tensor.normal([outputs], generator: Generator(seed: 4)).requiresGrad(true) : nil
            let leaves = [input, weight] + (bias.map { [$0] } ?? [])
            let references = try leaves.map { try $0.detach().to(.float64).requiresGrad(true) }

            let out = try Kernels.convTranspose2x2(input, weight: weight, bias: bias)
            let expected = try convTranspose2d(
                references[0], weight: references[1], bias: hasBias ? references[2] : nil, stride: 2)
            try assertNearInValuesAndGradients(out, expected, leaves: leaves, references: references, label)
        }
    }

    /// convTranspose2d takes the kernel for 2x2 stride-2 float32 CPU transposed convolutions of
    /// at most 32 channels in and out; the 1x1 convolution and block shuffle, or libtorch's own
    /// kernel, otherwise. Told apart by the profiler's record of the kernel.
    func testConvTranspose2dTakesTheKernelWhereItFits() throws {
        func takesKernel(
            _ shape: [Int], outputs: Int, kernel: Pair = 2, stride: Pair = 2, padding: Pair = 0,
            dtype: DType = .float32
        ) throws -> Bool {
            let input = try Tensor.normal(shape, generator: Generator(seed: 1)).to(dtype)
            let weight = try Tensor.normal(
                [shape[1], outputs, kernel.height, kernel.width], generator: Generator(seed: 2)
            ).to(dtype)
            let (_, operators) = try OperatorTime.profile {
                _ = try Kernels.convTranspose2d(input, weight: weight, stride: stride, padding: padding)
            }
            return operators.contains { $0.name == "segttt::conv_transpose2x2" }
        }
        XCTAssertTrue(try takesKernel([1, 20, 5, 6], outputs: 20))
        XCTAssertTrue(try takesKernel([2, 32, 5, 6], outputs: 3))
        XCTAssertFalse(try takesKernel([1, 40, 5, 6], outputs: 20), "more than 32 channels")
        XCTAssertFalse(try takesKernel([1, 4, 5, 6], outputs: 4, kernel: [2, 3], stride: [2, 3]), "2x3 blocks")
        XCTAssertFalse(try takesKernel([1, 4, 5, 6], outputs: 4, kernel: 3, padding: 1), "3x3, overlapping")
        XCTAssertFalse(try takesKernel([1, 4, 5, 6], outputs: 4, dtype: .float64), "float64")
    }

    func testRejectsWhatItCannotCompute() throws {
        let input = try Tensor.zeros([1, 4, 5, 5])
        XCTAssertThrowsError(try Kernels.convTranspose2x2(input, weight: Tensor.zeros([3, 2, 2, 2]))) { error in
            XCTAssertTrue(
                "\(error)".contains(
                    "needs input [N, C, H, W] and weight [C, O, 2, 2], got [1, 4, 5, 5] and [3, 2, 2, 2]"),
                "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.convTranspose2x2(input, weight: Tensor.zeros([4, 2, 2, 2]), bias: Tensor.zeros([3]))
        ) {
            error in
            XCTAssertTrue("\(error)".contains("needs a bias of 2 values, got [3]"), "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.convTranspose2x2(input.to(.float64), weight: Tensor.zeros([4, 2, 2, 2]).to(.float64))
        ) { error in
            XCTAssertTrue("\(error)".contains("runs on float32 CPU tensors, got Double on cpu"), "\(error)")
        }
    }
}
