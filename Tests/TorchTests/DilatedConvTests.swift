import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// SegTTT's 3x3 convolution kernel for few channels (`dilatedConv3x3`) against libtorch's
/// convolution of the same tensors, in values and gradients, and the cases `conv2d` sends to it.
final class DilatedConvTests: ConfiguredTestCase {
    /// (input shape, output channels, dilation, bias, channels-last input)
    private let cases: [([Int], Int, Pair, Bool, Bool)] = [
        ([2, 25, 45, 60], 25, 2, false, false),  // an ESPNet branch, split between threads
        ([3, 5, 9, 13], 7, 4, true, false),  // 7 outputs in blocks of 4, the last partial
        ([1, 12, 11, 21], 13, [1, 8], true, false),  // rectangular dilation
        ([2, 4, 6, 5], 4, 16, false, false),  // dilation beyond the image: the centre tap alone
        ([2, 12, 17, 30], 16, 2, true, true),  // channels-last input
        ([1, 3, 7, 60], 2, 3, false, false),  // blocks of 3 outputs: 3 + 3 + 2 column vectors
        ([1, 3, 5, 55], 2, 1, true, false),  // 3 + 3 + 1 column vectors
        ([1, 3, 5, 7], 4, [2, 1000], false, false),  // a dilation far beyond the image
        ([1, 5, 6, 40], 12, 1, true, false),  // AVX-512: 3 column vectors, gradient blocks of 6
    ]

    /// Against libtorch's convolution in float64, under every instruction set this CPU runs:
    /// values and gradients within 2e-6 of the largest magnitude of each, room for float32
    /// rounding over the up to 5400 terms of a sum.
    func testMatchesLibtorchInValuesAndGradients() throws {
        try Kernels.forEachInstructionSet { try matchesLibtorch($0) }
    }

    private func matchesLibtorch(_ set: Kernels.InstructionSet) throws {
        for (index, (shape, outputs, dilation, hasBias, channelsLast)) in cases.enumerated() {
            let label = "\(shape) -> \(outputs), dilation \(dilation), \(set.rawValue) code"
            let drawn = try Tensor.normal(shape, generator: Generator(seed: UInt64(10 + index)))
            let input = try (channelsLast ? drawn.contiguous(.channelsLast) : drawn).requiresGrad(true)
            let weight = try (Tensor.normal([outputs, shape[1], 3, 3], generator: Generator(seed: 3)) * 0.2)
                .requiresGrad(true)
            let bias = hasBias ? try Tensor.normal([outputs], generator: Generator(seed: 4)).requiresGrad(true) : nil
            let leaves = [input, weight] + (bias.map { [$0] } ?? [])
            let references = try leaves.map { try $0.detach().to(.float64).requiresGrad(true) }

            let out = try Kernels.dilatedConv3x3(input, weight: weight, bias: bias, dilation: dilation)
            let expected = try conv2d(
                references[0], weight: references[1], bias: hasBias ? references[2] : nil, padding: dilation,
                dilation: dilation)
            try assertNearInValuesAndGradients(out, expected, leaves: leaves, references: references, label)
        }
    }

    /// The kernels run the widest instruction set the CPU supports unless told otherwise, and
    /// refuse one it does not, naming those it does.
    func testInstructionSetIsTheWidestSupported() throws {
        let supported = Kernels.InstructionSet.allCases.filter(\.isSupported)
        XCTAssertEqual(supported.first, .baseline)
        XCTAssertEqual(Kernels.instructionSet, supported.last)
        defer { XCTAssertNoThrow(try Kernels.use(try XCTUnwrap(supported.last))) }
        try Kernels.use(.baseline)
        XCTAssertEqual(Kernels.instructionSet, .baseline)
        if let missing = Kernels.InstructionSet.allCases.first(where: { !$0.isSupported }) {
            XCTAssertThrowsError(try Kernels.use(missing)) { error in
                XCTAssertTrue(
                    "\(error)".contains("does not run the kernels' \(missing.rawValue) code; it runs baseline"),
                    "\(error)")
            }
            XCTAssertEqual(Kernels.instructionSet, .baseline)
        }
    }

    /// The backward pass reads x's padded rows as the forward laid them out, for the forward's
    /// instruction set (their width follows its vectors: 40 columns are 5 vectors of 8 or 3 of 16):
    /// switching sets between the passes leaves the gradients right.
    func testInstructionSetSwitchedBetweenThePassesKeepsTheGradients() throws {
        let sets = Kernels.InstructionSet.allCases.filter(\.isSupported)
        guard let narrowest = sets.first, let widest = sets.last, narrowest != widest else {
            throw XCTSkip("this CPU runs one instruction set")
        }
        let before = Kernels.instructionSet
        defer { XCTAssertNoThrow(try Kernels.use(before)) }
        let input = try Tensor.normal([2, 12, 17, 40], generator: Generator(seed: 6)).requiresGrad(true)
        let weight = try (Tensor.normal([16, 12, 3, 3], generator: Generator(seed: 7)) * 0.2).requiresGrad(true)
        let references = try [input, weight].map { try $0.detach().to(.float64).requiresGrad(true) }
        let upstream = try Tensor.normal([2, 16, 17, 40], generator: Generator(seed: 8))
        try Kernels.use(narrowest)
        let out = try Kernels.dilatedConv3x3(input, weight: weight, dilation: 2)
        try Kernels.use(widest)
        try (out * upstream).sum().backward()
        try (conv2d(references[0], weight: references[1], padding: 2, dilation: 2) * upstream.to(.float64)).sum()
            .backward()
        for (name, (leaf, reference)) in zip(["input", "weight"], zip([input, weight], references)) {
            try assertNear(try XCTUnwrap(leaf.grad), try XCTUnwrap(reference.grad), "gradient of the \(name)")
        }
    }

    func testInputWithoutGradientGetsNone() throws {
        let input = try Tensor.normal([1, 6, 8, 9], generator: Generator(seed: 1))
        let weight = try Tensor.normal([5, 6, 3, 3], generator: Generator(seed: 2)).requiresGrad(true)
        let reference = try weight.detach().to(.float64).requiresGrad(true)
        try Kernels.dilatedConv3x3(input, weight: weight, dilation: 2).sum().backward()
        try conv2d(input.to(.float64), weight: reference, padding: 2, dilation: 2).sum().backward()
        XCTAssertNil(input.grad)
        try assertNear(try XCTUnwrap(weight.grad), try XCTUnwrap(reference.grad), "gradient of the weight")
    }

    /// `Kernels.conv2d` takes the kernel for 3x3, stride 1, padding = dilation, ungrouped
    /// float32 CPU convolutions of at most 36 channels in and out, not all multiples of 8, as
    /// `takesConv2d` says; libtorch's otherwise, and `Torch.conv2d` always. Told apart by the
    /// profiler's record of the kernel.
    func testConv2dTakesTheKernelWhereItFits() throws {
        func takesKernel(
            _ shape: [Int], outputs: Int, kernel: Int = 3, stride: Pair = 1, padding: Pair = 2, dilation: Pair = 2,
            groups: Int = 1, dtype: DType = .float32
        ) throws -> Bool {
            let input = try Tensor.normal(shape, generator: Generator(seed: 1)).to(dtype)
            let weight = try Tensor.normal([outputs, shape[1] / groups, kernel, kernel], generator: Generator(seed: 2))
                .to(dtype)
            return try conv2dTakes(
                "segttt::dilated_conv3x3", input, weight: weight, stride: stride, padding: padding, dilation: dilation,
                groups: groups)
        }
        XCTAssertTrue(try takesKernel([1, 25, 9, 10], outputs: 25))
        XCTAssertTrue(try takesKernel([1, 36, 9, 10], outputs: 20, padding: 1, dilation: 1))
        XCTAssertTrue(try takesKernel([1, 16, 9, 10], outputs: 12, padding: [1, 4], dilation: [1, 4]))
        XCTAssertFalse(try takesKernel([1, 16, 9, 10], outputs: 32), "multiples of 8: oneDNN's direct kernels")
        XCTAssertFalse(try takesKernel([1, 40, 9, 10], outputs: 20), "more than 36 channels")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, stride: 2), "strided")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, padding: 1), "padding other than the dilation")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, groups: 2), "grouped")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, kernel: 5, padding: 4), "5x5")
        XCTAssertFalse(try takesKernel([1, 12, 9, 10], outputs: 12, dtype: .float64), "float64")
        // Torch's conv2d is libtorch's alone, where the kernel's rule would take the call.
        let input = try Tensor.normal([1, 25, 9, 10], generator: Generator(seed: 1))
        let weight = try Tensor.normal([25, 25, 3, 3], generator: Generator(seed: 2))
        let (_, operators) = try OperatorTime.profile { _ = try conv2d(input, weight: weight, padding: 2, dilation: 2) }
        XCTAssertFalse(operators.contains { $0.name == "segttt::dilated_conv3x3" }, "Torch.conv2d took the kernel")
    }

    func testRejectsWhatItCannotCompute() throws {
        let input = try Tensor.zeros([1, 4, 5, 5])
        XCTAssertThrowsError(try Kernels.dilatedConv3x3(input, weight: Tensor.zeros([2, 3, 3, 3]), dilation: 1)) {
            error in
            XCTAssertTrue(
                "\(error)".contains(
                    "needs input [N, C, H, W] and weight [O, C, 3, 3], got [1, 4, 5, 5] and [2, 3, 3, 3]"),
                "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.dilatedConv3x3(input, weight: Tensor.zeros([2, 4, 3, 3]), bias: Tensor.zeros([3]), dilation: 1)
        ) { error in
            XCTAssertTrue("\(error)".contains("needs a bias of 2 values, got [3]"), "\(error)")
        }
        XCTAssertThrowsError(try Kernels.dilatedConv3x3(input, weight: Tensor.zeros([2, 4, 3, 3]), dilation: [0, 1])) {
            error in
            XCTAssertTrue("\(error)".contains("needs dilations of 1 or more, got 0x1"), "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.dilatedConv3x3(
                input.to(.float64), weight: Tensor.zeros([2, 4, 3, 3]).to(.float64), dilation: 1)
        ) { error in
            XCTAssertTrue("\(error)".contains("runs on float32 CPU tensors, got Double on cpu"), "\(error)")
        }
    }
}
