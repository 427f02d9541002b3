import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// Reductions, norms, bincount and matmul against PyTorch (fixtures from Scripts/fixtures/ops.py).
final class ReductionParityTests: ConfiguredTestCase {
    /// Applies `op` to the case's input, checks the output and, when the case stores one,
    /// the gradient.
    private func check(
        _ name: String, gradient: Bool = true, file: StaticString = #filePath, line: UInt = #line,
        _ op: (Tensor) throws -> Tensor
    ) throws {
        let c = FixtureCase(name)
        let input = gradient ? try c.leaf("input") : try c("input")
        let out = try op(input)
        try c.assertOutput(out, file: file, line: line)
        if gradient {
            try c.assertGradients(of: out, ["input": input], file: file, line: line)
        }
    }

    func testSum() throws {
        try check("sum.dim1") { try $0.sum(dims: [1]) }
        try check("sum.dims02_keep") { try $0.sum(dims: [0, 2], keepDim: true) }
        try check("sum.all") { try $0.sum() }
    }

    func testMean() throws {
        try check("mean.dim1") { try $0.mean(dims: [1]) }
        try check("mean.dims02_keep") { try $0.mean(dims: [0, 2], keepDim: true) }
        try check("mean.all") { try $0.mean() }
    }

    func testVarianceUnbiasedAndBiased() throws {
        try check("var.unbiased_dim1_keep") { try $0.var(dims: [1], unbiased: true, keepDim: true) }
        try check("var.biased_dims02") { try $0.var(dims: [0, 2], unbiased: false) }
        try check("var.unbiased_all") { try $0.var(unbiased: true) }
        try check("var.biased_all") { try $0.var(unbiased: false) }
    }

    func testVarMeanIsVarianceAndMeanInOnePass() throws {
        // Checked against the fixtures of var and mean, which share their input.
        try check("var.unbiased_dim1_keep") { try $0.varMean(dims: [1], unbiased: true, keepDim: true).variance }
        try check("var.biased_dims02") { try $0.varMean(dims: [0, 2], unbiased: false).variance }
        try check("mean.dim1") { try $0.varMean(dims: [1]).mean }
        try check("mean.dims02_keep") { try $0.varMean(dims: [0, 2], keepDim: true).mean }
    }

    func testAmaxAmin() throws {
        try check("amax.dim2") { try $0.amax(dims: [2]) }
        try check("amax.dims01_keep") { try $0.amax(dims: [0, 1], keepDim: true) }
        try check("amax.all", gradient: false) { try $0.amax() }
        try check("amin.dim0", gradient: false) { try $0.amin(dims: [0]) }
    }

    func testArgmax() throws {
        try check("argmax.dim1", gradient: false) { try $0.argmax(dim: 1) }
        try check("argmax.dim2_keep", gradient: false) { try $0.argmax(dim: 2, keepDim: true) }
        try check("argmax.dim1", gradient: false) { try Kernels.argmax($0, dim: 1) }
        try check("argmax.dim2_keep", gradient: false) { try Kernels.argmax($0, dim: 2, keepDim: true) }
    }

    /// Over the classes of [1, C, H, W] scores, as PyTorch, by libtorch and by `Kernels.argmax`
    /// (its kernel for float32, libtorch's max for float64, libtorch's argmax for int64): the
    /// first of tied maxima, the first NaN before any number, -inf everywhere gives 0.
    func testArgmaxTiesAndNaNOverClasses() throws {
        let nan = Float.nan
        // Four pixels, five classes, stored class by class.
        let scores: [Float] = [
            1, 0, nan, -.infinity,
            2, 3, 1, -.infinity,
            2, 3, nan, -.infinity,
            0, 3, 5, -.infinity,
            -1, 1, 5, -.infinity,
        ]
        let expected: [Int64] = [1, 1, 0, 0]
        let floats = try Tensor(scores, shape: [1, 5, 2, 2])
        let integers = try Tensor([Int64](arrayLiteral: 0, 4, 4, 2, 1, 4, 0, 3), shape: [1, 4, 2])
        for argmax in [{ try $0.argmax(dim: $1, keepDim: $2) }, Kernels.argmax]
            as [(Tensor, Int, Bool) throws -> Tensor]
        {
            XCTAssertEqual(try argmax(floats, 1, false).toArray(Int64.self), expected)
            XCTAssertEqual(try argmax(floats.to(.float64), 1, true).shape, [1, 1, 2, 2])
            XCTAssertEqual(try argmax(floats.to(.float64), 1, false).toArray(Int64.self), expected)
            XCTAssertEqual(try argmax(integers, 1, false).toArray(Int64.self), [1, 0])
        }
    }

    /// Contiguous float32 tensors reduced over a dimension that is not the innermost take
    /// SegTTT's kernel; it gives libtorch's indices (those of the same values in float64),
    /// ties and NaNs included, on tensors split into many tiles and between threads.
    func testArgmaxKernelAgreesWithLibtorchOnLargeTensors() throws {
        // Whole numbers tie often; a few NaNs among them.
        var values = try (Tensor.normal([2, 7, 45, 61], generator: Generator(seed: 8)) * 2).floor().toArray(Float.self)
        for i in stride(from: 5, to: values.count, by: 997) { values[i] = .nan }
        let floats = try Tensor(values, shape: [2, 7, 45, 61])
        let doubles = try floats.to(.float64)
        for (dim, keep) in [(0, false), (1, false), (1, true), (2, false), (-2, true)] {
            let ours = try Kernels.argmax(floats, dim: dim, keepDim: keep)
            let libtorchs = try doubles.argmax(dim: dim, keepDim: keep)
            XCTAssertEqual(ours.shape, libtorchs.shape, "dim \(dim)")
            let differing = zip(try ours.toArray(Int64.self), try libtorchs.toArray(Int64.self)).filter { $0 != $1 }
            XCTAssertEqual(differing.count, 0, "indices that differ, dim \(dim), keep \(keep)")
        }
        // A contiguous tensor's dimensions of size 1 may have any stride: here dim 0 keeps the
        // stride of the 7 channels that were narrowed to 1.
        let narrowed = try floats.narrow(dim: 0, start: 1, length: 1).narrow(dim: 1, start: 2, length: 1)
        try assertValues(Kernels.argmax(narrowed, dim: 0), [Int64](repeating: 0, count: 45 * 61), shape: [1, 45, 61])
        try assertValues(Kernels.argmax(narrowed, dim: 1), [Int64](repeating: 0, count: 45 * 61), shape: [1, 45, 61])
    }

    func testMaxAlongDimension() throws {
        let input = try Fixtures.tensor("max_dim.dim2.input")
        let (values, indices) = try input.max(dim: 2)
        assertClose(values, try Fixtures.tensor("max_dim.dim2.values"), "values")
        assertClose(indices, try Fixtures.tensor("max_dim.dim2.indices"), "indices")
        let kept = try input.max(dim: 0, keepDim: true)
        assertClose(kept.values, try Fixtures.tensor("max_dim.dim0_keep.values"), "values keepdim")
        assertClose(kept.indices, try Fixtures.tensor("max_dim.dim0_keep.indices"), "indices keepdim")
    }

    func testNorm() throws {
        try check("norm.p2_dim1") { try $0.norm(p: 2, dims: [1]) }
        try check("norm.p1_dims02_keep") { try $0.norm(p: 1, dims: [0, 2], keepDim: true) }
        try check("norm.p2_all") { try $0.norm() }
        try check("norm.p3_all") { try $0.norm(p: 3) }
    }

    func testBincount() throws {
        try check("bincount.plain", gradient: false) { try $0.bincount() }
        try check("bincount.minlength", gradient: false) { try $0.bincount(minLength: 10) }
    }

    private func checkMatmul(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = FixtureCase("matmul.\(name)")
        let a = try c.leaf("a")
        let b = try c.leaf("b")
        let out = try a.matmul(b)
        try c.assertOutput(out, file: file, line: line)
        try c.assertGradients(of: out, ["a": a, "b": b], file: file, line: line)
    }

    func testMatmul() throws {
        try checkMatmul("2d")
        try checkMatmul("batched")
        try checkMatmul("broadcast")
        try checkMatmul("vector")
    }
}
