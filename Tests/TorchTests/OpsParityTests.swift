import TestSupport
import Torch
import XCTest

/// Activations, softmax, normalize, shape operations, losses and dtype conversions against
/// PyTorch (fixtures from Scripts/fixtures/ops.py), values and gradients.
final class OpsParityTests: ConfiguredTestCase {
    /// Applies `op` to the case's `input`, checks the output and the gradient wrt the input.
    private func check(
        _ name: String, file: StaticString = #filePath, line: UInt = #line, _ op: (Tensor) throws -> Tensor
    ) throws {
        let c = FixtureCase(name)
        let input = try c.leaf("input")
        let out = try op(input)
        try c.assertOutput(out, file: file, line: line)
        try c.assertGradients(of: out, ["input": input], file: file, line: line)
    }

    // MARK: activations and normalisation

    func testRelu() throws {
        try check("relu.basic") { try $0.relu() }
    }

    func testReluInPlaceOnAnIntermediateMatchesRelu() throws {
        // The fixture's gradient wrt the input flows through `input * 1`, which keeps nothing;
        // the intermediate itself is compared, so a relu_ that is not in place fails.
        try check("relu.basic") {
            let intermediate = try $0 * 1.0
            try intermediate.relu_()
            return intermediate
        }
    }

    func testReluInPlaceOnAnOutputKeptForTheBackwardFailsTheBackward() throws {
        let input = try Tensor.ones([3]).requiresGrad(true)
        let kept = try input.sigmoid()  // sigmoid's backward reads its output
        try kept.relu_()
        XCTAssertThrowsError(try kept.sum().backward()) { error in
            XCTAssertTrue("\(error)".contains("inplace"), "\(error)")
        }
    }

    func testPreluPerChannelAndSingleSlope() throws {
        for name in ["prelu.per_channel", "prelu.single"] {
            let c = FixtureCase(name)
            let input = try c.leaf("input")
            let weight = try c.leaf("weight")
            let out = try prelu(input, weight: weight)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["input": input, "weight": weight])
        }
    }

    func testSoftmax() throws {
        try check("softmax.dim1") { try $0.softmax(dim: 1) }
        try check("softmax.last") { try $0.softmax(dim: -1) }
    }

    func testLogSoftmax() throws {
        try check("log_softmax.dim1") { try $0.logSoftmax(dim: 1) }
        try check("log_softmax.last") { try $0.logSoftmax(dim: -1) }
    }

    func testNormalize() throws {
        try check("normalize.p2_dim1") { try $0.normalize(p: 2, dim: 1) }
        try check("normalize.p1_dim0") { try $0.normalize(p: 1, dim: 0) }
    }

    // MARK: shapes

    func testCat() throws {
        let c = FixtureCase("cat.dim1")
        let (a, b, d) = (try c.leaf("a"), try c.leaf("b"), try c.leaf("c"))
        let out = try Tensor.cat([a, b, d], dim: 1)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["a": a, "b": b, "c": d])

        let c0 = FixtureCase("cat.dim0")
        let (x, y) = (try c0.leaf("a"), try c0.leaf("b"))
        let out0 = try Tensor.cat([x, y])
        try c0.assertOutput(out0)
        try c0.assertGradients(of: out0, ["a": x, "b": y])
    }

    func testStack() throws {
        for (name, dim) in [("stack.dim0", 0), ("stack.last", -1)] {
            let c = FixtureCase(name)
            let (a, b) = (try c.leaf("a"), try c.leaf("b"))
            let out = try Tensor.stack([a, b], dim: dim)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["a": a, "b": b])
        }
    }

    func testFlip() throws {
        try check("flip.dims02") { try $0.flip([0, 2]) }
    }

    func testNarrow() throws {
        try check("narrow.dim1") { try $0.narrow(dim: 1, start: 2, length: 3) }
    }

    func testSliceWithStep() throws {
        try check("slice.step2") { try $0.slice(dim: 1, start: 1, end: 7, step: 2) }
        try check("slice.step3_open") { try $0.slice(dim: 2, start: 1, step: 3) }
    }

    func testIndexSelect() throws {
        let c = FixtureCase("index_select.dim1")
        let index = try c("index")
        XCTAssertEqual(index.dtype, .int64)
        let input = try c.leaf("input")
        let out = try input.indexSelect(dim: 1, index: index)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["input": input])
    }

    // MARK: losses

    func testNllLossMeanAndSumSkipIgnoreIndex() throws {
        for (name, mean) in [("nll_loss.mean_ignore", true), ("nll_loss.sum_ignore", false)] {
            let c = FixtureCase(name)
            let input = try c.leaf("input")
            let out = try nllLoss(input, target: try c("target"), ignoreIndex: -100, mean: mean)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["input": input])
        }
    }

    func testNllLossSegmentationShapeIgnore255() throws {
        let c = FixtureCase("nll_loss.seg_ignore255")
        let input = try c.leaf("input")  // [N, C, H, W] log-probabilities
        let out = try nllLoss(input, target: try c("target"), ignoreIndex: 255)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["input": input])
    }

    func testCrossEntropy() throws {
        let c = FixtureCase("cross_entropy.seg_ignore255")
        let input = try c.leaf("input")
        let out = try crossEntropy(input, target: try c("target"), ignoreIndex: 255)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["input": input])

        let plain = FixtureCase("cross_entropy.plain")
        let logits = try plain.leaf("input")
        let loss = try crossEntropy(logits, target: try plain("target"))
        try plain.assertOutput(loss)
        try plain.assertGradients(of: loss, ["input": logits])
    }

    // MARK: dtype conversions

    func testConversionsFromFloat32() throws {
        let x = try Fixtures.tensor("dtype.f32")
        let targets: [(String, DType)] = [
            ("to_f64", .float64), ("to_i64", .int64), ("to_bool", .bool), ("to_f16", .float16), ("to_bf16", .bfloat16),
        ]
        for (suffix, dtype) in targets {
            assertClose(try x.to(dtype), try Fixtures.tensor("dtype.f32.\(suffix)"), rtol: 0, atol: 0, suffix)
        }
        // Half-precision round trips lose exactly what PyTorch's lose.
        assertClose(try x.to(.float16).to(.float32), try Fixtures.tensor("dtype.f32.f16_f32"), rtol: 0, atol: 0, "f16")
        let bf16 = try x.to(.bfloat16).to(.float32)
        assertClose(bf16, try Fixtures.tensor("dtype.f32.bf16_f32"), rtol: 0, atol: 0, "bf16")
        let positive = try Fixtures.tensor("dtype.f32_pos")
        assertClose(try positive.to(.uint8), try Fixtures.tensor("dtype.f32_pos.to_u8"), rtol: 0, atol: 0, "to_u8")
    }

    func testConversionsFromOtherDtypes() throws {
        let cases: [(String, String, DType)] = [
            ("dtype.f64", "to_f32", .float32), ("dtype.i64", "to_f32", .float32), ("dtype.i64", "to_f64", .float64),
            ("dtype.i64", "to_bool", .bool), ("dtype.u8", "to_f32", .float32), ("dtype.u8", "to_i64", .int64),
            ("dtype.bool", "to_f32", .float32), ("dtype.bool", "to_i64", .int64),
        ]
        for (source, suffix, dtype) in cases {
            let x = try Fixtures.tensor(source)
            let label = "\(source).\(suffix)"
            assertClose(try x.to(dtype), try Fixtures.tensor(label), rtol: 0, atol: 0, label)
        }
        // Half-precision values PyTorch wrote widen exactly.
        let half = try Fixtures.tensor("dtype.f32.to_f16")
        assertClose(try half.to(.float32), try Fixtures.tensor("dtype.f32.f16_f32"), rtol: 0, atol: 0, "f16 to f32")
        let brain = try Fixtures.tensor("dtype.f32.to_bf16")
        assertClose(try brain.to(.float32), try Fixtures.tensor("dtype.f32.bf16_f32"), rtol: 0, atol: 0, "bf16 to f32")
    }

    /// The fixture file itself round-trips every dtype through safetensors: spot-check values
    /// PyTorch wrote against literals.
    func testFixtureDtypesReadBack() throws {
        XCTAssertEqual(try Fixtures.tensor("dtype.u8").toArray(UInt8.self), [0, 1, 128, 255])
        XCTAssertEqual(try Fixtures.tensor("dtype.bool").toArray(Bool.self), [true, false, true])
        XCTAssertEqual(
            try Fixtures.tensor("dtype.i64").toArray(Int64.self), [-5, 0, 3, 255, 1 << 40, -(1 << 31)])
        XCTAssertEqual(try Fixtures.tensor("dtype.i64.to_f64").toArray(Double.self), [-5, 0, 3, 255, 0x1p40, -0x1p31])
    }
}
