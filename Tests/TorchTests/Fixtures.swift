import Foundation
import SegTTTKernels
import Torch
import TorchNN
import XCTest

/// PyTorch's answers, written by `Scripts/fixtures/ops.py` into `Fixtures/ops.safetensors`.
///
/// Regenerate with `/usr/bin/python3 Scripts/fixtures/ops.py` (Debian's Python 3 with
/// python3-torch 1.13). Every name is `family.case.role`, e.g. `conv2d.dilated.input`.
enum Fixtures {
    /// Every tensor of ops.safetensors, read once per process.
    private static let ops: Result<StateDict, Error> = Result {
        guard let url = Bundle.module.url(forResource: "ops", withExtension: "safetensors", subdirectory: "Fixtures")
        else {
            throw TorchError(
                "Fixtures/ops.safetensors is missing from the test bundle; "
                    + "run /usr/bin/python3 Scripts/fixtures/ops.py")
        }
        return try SafeTensors.read(url).tensors
    }

    /// Loads the fixture file now, so that its tensors count among the live handles before a
    /// leak measurement starts.
    static func preload() throws {
        _ = try ops.get()
    }

    /// A fresh copy of the fixture tensor `name` (its own storage, no gradient), so a test may
    /// mark it as requiring grad or change it in place without touching other tests.
    static func tensor(_ name: String) throws -> Tensor {
        guard let stored = try ops.get()[name] else {
            throw TorchError("no tensor '\(name)' in Fixtures/ops.safetensors; rerun Scripts/fixtures/ops.py")
        }
        return try stored.clone()
    }
}

/// The tensors of one fixture case `family.case` (its inputs, `out`, `g` and `grad_*`).
struct FixtureCase {
    let prefix: String

    init(_ prefix: String) {
        self.prefix = prefix
    }

    /// The tensor `prefix.role`, a fresh copy.
    func callAsFunction(_ role: String) throws -> Tensor {
        try Fixtures.tensor("\(prefix).\(role)")
    }

    /// The input `prefix.role` as a leaf that requires grad.
    func leaf(_ role: String) throws -> Tensor {
        try self(role).requiresGrad(true)
    }

    /// Checks `output` against `prefix.out`.
    func assertOutput(
        _ output: Tensor, rtol: Double = 1e-5, atol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        assertClose(output, try self("out"), rtol: rtol, atol: atol, "\(prefix).out", file: file, line: line)
    }

    /// Backpropagates (output * g).sum() with the stored cotangent `prefix.g` and checks the
    /// gradient of each named leaf against `prefix.grad_<name>`.
    func assertGradients(
        of output: Tensor, _ leaves: KeyValuePairs<String, Tensor>, rtol: Double = 1e-5, atol: Double = 1e-5,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        try (output * self("g")).sum().backward()
        for (name, leaf) in leaves {
            guard let grad = leaf.grad else {
                XCTFail("\(prefix): no gradient reached '\(name)'", file: file, line: line)
                continue
            }
            let label = "\(prefix).grad_\(name)"
            assertClose(grad, try self("grad_\(name)"), rtol: rtol, atol: atol, label, file: file, line: line)
        }
    }
}

/// Asserts that `actual` has `expected`'s shape and dtype and that every element satisfies
/// |actual - expected| <= atol + rtol * |expected| (NaNs must match NaNs, infinities must be
/// equal). Integer and boolean tensors must match exactly. A failure names the first
/// mismatching index.
func assertClose(
    _ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-5, atol: Double = 1e-6, _ label: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    let name = label.isEmpty ? "" : "\(label): "
    guard actual.shape == expected.shape else {
        return XCTFail("\(name)shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
    }
    guard actual.dtype == expected.dtype else {
        return XCTFail("\(name)dtype \(actual.dtype), expected \(expected.dtype)", file: file, line: line)
    }
    let a: [Double]
    let e: [Double]
    do {
        a = try actual.toArray(Double.self)
        e = try expected.toArray(Double.self)
    } catch {
        return XCTFail("\(name)cannot read values: \(error)", file: file, line: line)
    }
    let exact = !expected.dtype.isFloatingPoint
    for i in 0..<e.count {
        let (x, y) = (a[i], e[i])
        let ok: Bool
        if y.isNaN {
            ok = x.isNaN
        } else if y.isInfinite || exact {
            ok = x == y
        } else {
            ok = Swift.abs(x - y) <= atol + rtol * Swift.abs(y)
        }
        if !ok {
            let index = unravel(i, shape: expected.shape)
            let mismatches = zip(a, e).filter { x, y in
                y.isNaN ? !x.isNaN : (exact || y.isInfinite ? x != y : Swift.abs(x - y) > atol + rtol * Swift.abs(y))
            }.count
            return XCTFail(
                "\(name)element \(index) is \(x), expected \(y) (rtol \(rtol), atol \(atol)); "
                    + "\(mismatches) of \(e.count) elements differ",
                file: file, line: line)
        }
    }
}

/// Asserts that a float32 result of SegTTT's own kernels is within 2e-6 of the largest
/// magnitude of `expected`, computed in float64 by libtorch: room for float32 rounding over
/// sums of thousands of terms.
func assertNear(
    _ actual: Tensor, _ expected: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line
) throws {
    let scale = try expected.abs().amax().item()
    assertClose(try actual.to(.float64), expected, rtol: 0, atol: 2e-6 * scale, label, file: file, line: line)
}

/// Asserts `out` (float32, [N, C, H, W], from `leaves`: input, weight and optional bias) near
/// `expected` (float64, from `references`, the same leaves in float64), and so each leaf's
/// gradient after the same upstream gradient goes back through both: a drawn one, made
/// non-contiguous by a transpose.
func assertNearInValuesAndGradients(
    _ out: Tensor, _ expected: Tensor, leaves: [Tensor], references: [Tensor], _ label: String,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    try assertNear(out, expected, "values, \(label)", file: file, line: line)
    let shape = out.shape
    let upstream = try Tensor.normal([shape[0], shape[1], shape[3], shape[2]], generator: Generator(seed: 5))
        .transpose(2, 3)
    try (out * upstream).sum().backward()
    try (expected * upstream.to(.float64)).sum().backward()
    for (name, (leaf, reference)) in zip(["input", "weight", "bias"], zip(leaves, references)) {
        try assertNear(
            try XCTUnwrap(leaf.grad), try XCTUnwrap(reference.grad), "gradient of the \(name), \(label)", file: file,
            line: line)
    }
}

/// Asserts that a tensor holds exactly `values` (row-major) in `shape`.
func assertValues<T: TensorScalar & Equatable>(
    _ tensor: Tensor, _ values: [T], shape: [Int], file: StaticString = #filePath, line: UInt = #line
) throws {
    XCTAssertEqual(tensor.shape, shape, "shape", file: file, line: line)
    XCTAssertEqual(tensor.dtype, T.dtype, "dtype", file: file, line: line)
    XCTAssertEqual(try tensor.toArray(T.self), values, file: file, line: line)
}

/// The multi-dimensional index of row-major position `flat` in `shape`.
private func unravel(_ flat: Int, shape: [Int]) -> [Int] {
    var rest = flat
    var index = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        index[d] = rest % shape[d]
        rest /= shape[d]
    }
    return index
}

/// Whether `Kernels.conv2d` took the kernel whose profiler record is `record` (for example
/// "segttt::winograd_conv3x3") on a convolution of `input` by `weight`, asserting that the
/// kernel's rule (`Kernels.takesConv2d`) says the same.
func conv2dTakes(
    _ record: String, _ input: Tensor, weight: Tensor, stride: Pair = 1, padding: Pair, dilation: Pair,
    groups: Int = 1, file: StaticString = #filePath, line: UInt = #line
) throws -> Bool {
    let (_, operators) = try OperatorTime.profile {
        _ = try Kernels.conv2d(
            input, weight: weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
    let taken = operators.contains { $0.name == record }
    let rule = Kernels.takesConv2d(
        input, weight: weight, bias: nil, stride: stride, padding: padding, dilation: dilation, groups: groups)
    XCTAssertEqual(
        taken, rule, "the rule and the call disagree on \(input.shape) -> \(weight.shape[0])", file: file, line: line)
    return taken
}
