import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// The Winograd 3x3 convolution (`Kernels.winogradConv3x3`, oneDNN's F(4x4, 3x3) kernels on the
/// input's dilation phases) against libtorch's convolution of the same tensors, in values and
/// gradients, and the calls `conv2d` sends to it. Skipped where this build or CPU has no
/// Winograd kernels (oneDNN has them for AVX-512 only; the build links them with Debian's
/// libtorch and libdnnl-dev).
final class WinogradConvTests: ConfiguredTestCase {
    /// (input shape, output channels, dilation, bias, channels-last input)
    private let cases: [([Int], Int, Pair, Bool, Bool)] = [
        ([2, 64, 13, 21], 64, 1, true, false),  // undilated: no phases, tiles past the edge
        ([1, 64, 17, 30], 80, 2, false, true),  // DeepLab's layer3 kind, channels last
        ([1, 96, 9, 11], 64, [1, 3], true, false),  // rectangular dilation, sides not multiples of it
        ([2, 64, 10, 13], 64, 4, false, false),  // layer4's dilation on odd sides
        ([1, 64, 5, 7], 64, 8, true, true),  // dilation beyond the image: one pixel per phase
    ]

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard Kernels.winogradAvailable else {
            throw XCTSkip(
                "this build or CPU has no Winograd kernels (oneDNN's, for AVX-512, linked with Debian's libtorch)")
        }
    }

    /// Against libtorch's convolution in float64: values and gradients within 2e-5 of the
    /// largest magnitude of each. Winograd's transforms multiply and divide by up to 8 on the
    /// way, so float32 rounding weighs about ten times what it does in a direct sum (the direct
    /// kernels are held to 2e-6).
    func testMatchesLibtorchInValuesAndGradients() throws {
        for (index, (shape, outputs, dilation, hasBias, channelsLast)) in cases.enumerated() {
            let label = "\(shape) -> \(outputs), dilation \(dilation)\(channelsLast ? ", channels last" : "")"
            let drawn = try Tensor.normal(shape, generator: Generator(seed: UInt64(20 + index)))
            let input = try (channelsLast ? drawn.contiguous(.channelsLast) : drawn).requiresGrad(true)
            let weight = try (Tensor.normal([outputs, shape[1], 3, 3], generator: Generator(seed: 3)) * 0.05)
                .requiresGrad(true)
            let bias = hasBias ? try Tensor.normal([outputs], generator: Generator(seed: 4)).requiresGrad(true) : nil
            let leaves = [input, weight] + (bias.map { [$0] } ?? [])
            let references = try leaves.map { try $0.detach().to(.float64).requiresGrad(true) }

            let out = try Kernels.winogradConv3x3(input, weight: weight, bias: bias, dilation: dilation)
            XCTAssertEqual(out.shape, [shape[0], outputs, shape[2], shape[3]], label)
            XCTAssertEqual(out.isContiguous(.channelsLast), channelsLast, "the output keeps the input's layout, \(label)")
            let expected = try conv2d(
                references[0], weight: references[1], bias: hasBias ? references[2] : nil, padding: dilation,
                dilation: dilation)
            try assertNearWinograd(out, expected, "values, \(label)")
            let upstream = try Tensor.normal([shape[0], outputs, shape[3], shape[2]], generator: Generator(seed: 5))
                .transpose(2, 3)
            try (out * upstream).sum().backward()
            try (expected * upstream.to(.float64)).sum().backward()
            for (name, (leaf, reference)) in zip(["input", "weight", "bias"], zip(leaves, references)) {
                try assertNearWinograd(
                    try XCTUnwrap(leaf.grad), try XCTUnwrap(reference.grad), "gradient of the \(name), \(label)")
            }
            XCTAssertEqual(
                try XCTUnwrap(input.grad).isContiguous(.channelsLast), channelsLast,
                "the input's gradient in the input's layout, \(label)")
        }
    }

    private func assertNearWinograd(
        _ actual: Tensor, _ expected: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let scale = try expected.abs().amax().item()
        assertClose(try actual.to(.float64), expected, rtol: 0, atol: 2e-5 * scale, label, file: file, line: line)
    }

    /// `Kernels.conv2d` takes the Winograd kernel for 3x3, stride 1, padding = dilation,
    /// ungrouped float32 CPU convolutions with at least 64 channels in and out, both multiples of
    /// 16, as `takesConv2d` says, and not after `useWinograd(false)`. Told apart by the
    /// profiler's record of the kernel.
    func testConv2dTakesTheKernelWhereItFits() throws {
        func takesKernel(_ shape: [Int], outputs: Int, padding: Pair = 2, dilation: Pair = 2) throws -> Bool {
            let input = try Tensor.normal(shape, generator: Generator(seed: 1))
            let weight = try Tensor.normal([outputs, shape[1], 3, 3], generator: Generator(seed: 2))
            return try conv2dTakes("segttt::winograd_conv3x3", input, weight: weight, padding: padding, dilation: dilation)
        }
        XCTAssertTrue(try takesKernel([1, 64, 9, 10], outputs: 64))
        XCTAssertTrue(try takesKernel([1, 256, 9, 10], outputs: 128, padding: 1, dilation: 1))
        XCTAssertFalse(try takesKernel([1, 48, 9, 10], outputs: 64), "fewer than 64 channels in")
        XCTAssertFalse(try takesKernel([1, 64, 9, 10], outputs: 19), "19 classes out")
        XCTAssertFalse(try takesKernel([1, 72, 9, 10], outputs: 64), "72 channels: not a multiple of 16")
        XCTAssertFalse(try takesKernel([1, 64, 9, 10], outputs: 64, padding: 1), "padding other than the dilation")

        try Kernels.useWinograd(false)
        defer { XCTAssertNoThrow(try Kernels.useWinograd(true)) }
        XCTAssertFalse(Kernels.winogradAvailable)
        XCTAssertFalse(try takesKernel([1, 64, 9, 10], outputs: 64), "turned off")
    }

    func testRejectsWhatItCannotCompute() throws {
        let input = try Tensor.zeros([1, 64, 5, 5])
        XCTAssertThrowsError(try Kernels.winogradConv3x3(input, weight: Tensor.zeros([64, 32, 3, 3]))) { error in
            XCTAssertTrue(
                "\(error)".contains(
                    "needs input [N, C, H, W] and weight [O, C, 3, 3], got [1, 64, 5, 5] and [64, 32, 3, 3]"),
                "\(error)")
        }
        XCTAssertThrowsError(
            try Kernels.winogradConv3x3(input, weight: Tensor.zeros([64, 64, 3, 3]), bias: Tensor.zeros([3]))
        ) { error in
            XCTAssertTrue("\(error)".contains("needs a bias of 64 values, got [3]"), "\(error)")
        }
        XCTAssertThrowsError(try Kernels.winogradConv3x3(input, weight: Tensor.zeros([64, 64, 3, 3]), dilation: [1, 0]))
        { error in
            XCTAssertTrue("\(error)".contains("needs dilations of 1 or more, got 1x0"), "\(error)")
        }
    }
}

/// Where the build or CPU has no Winograd kernels, the kernel says so and `conv2d` never
/// takes it; these run on every machine.
final class WinogradAbsenceTests: ConfiguredTestCase {
    func testAbsentKernelsAreNeverTakenAndSayWhy() throws {
        let input = try Tensor.normal([1, 64, 6, 6], generator: Generator(seed: 1))
        let weight = try Tensor.normal([64, 64, 3, 3], generator: Generator(seed: 2))
        let before = Kernels.winogradAvailable
        try Kernels.useWinograd(false)
        defer { if before { XCTAssertNoThrow(try Kernels.useWinograd(true)) } }
        XCTAssertFalse(
            Kernels.takesConv2d(input, weight: weight, bias: nil, stride: 1, padding: 1, dilation: 1, groups: 1))
        if !before {
            XCTAssertThrowsError(try Kernels.useWinograd(true)) { error in
                XCTAssertTrue("\(error)".contains("has no Winograd kernels"), "\(error)")
            }
            XCTAssertThrowsError(try Kernels.winogradConv3x3(input, weight: weight)) { error in
                XCTAssertTrue("\(error)".contains("needs oneDNN's Winograd kernels"), "\(error)")
            }
        }
    }
}
