import TestSupport
import Torch
import XCTest

/// Elementwise arithmetic (with broadcasting and scalars), comparisons, where, clamp and
/// unary functions against PyTorch (fixtures from Scripts/fixtures/ops.py).
final class ElementwiseParityTests: ConfiguredTestCase {
    /// a [2, 3, 4] op b [3, 1]: output and both gradients (b's summed over the broadcast).
    func testBinaryWithBroadcasting() throws {
        let ops: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("add", { try $0 + $1 }), ("sub", { try $0 - $1 }), ("mul", { try $0 * $1 }), ("div", { try $0 / $1 }),
            ("pow", { try $0.pow($1) }), ("maximum", { try $0.maximum($1) }), ("minimum", { try $0.minimum($1) }),
        ]
        for (name, op) in ops {
            let c = FixtureCase("binary.\(name)")
            let a = try c.leaf("a")
            let b = try c.leaf("b")
            let out = try op(a, b)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["a": a, "b": b])
        }
    }

    /// Tensor-scalar and scalar-tensor arithmetic, including s - x and s / x.
    func testScalarArithmetic() throws {
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("add", { try $0 + 2.5 }), ("sub", { try $0 - 1.5 }), ("mul", { try $0 * -3.0 }), ("div", { try $0 / 4.0 }),
            ("rsub", { try 2.5 - $0 }), ("rdiv", { try 3.0 / $0 }), ("radd", { try 2.5 + $0 }),
            ("rmul", { try 0.5 * $0 }), ("pow2", { try $0.pow(2.0) }), ("pow_half", { try $0.pow(0.5) }),
            ("neg", { try -$0 }),
        ]
        for (name, op) in ops {
            let c = FixtureCase("scalar.\(name)")
            let a = try c.leaf("a")
            let out = try op(a)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["a": a])
        }
    }

    func testComparisonsWithTensorsAndScalars() throws {
        let tensorOps: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("eq", { try $0.eq($1) }), ("ne", { try $0.ne($1) }), ("lt", { try $0.lt($1) }),
            ("le", { try $0.le($1) }), ("gt", { try $0.gt($1) }), ("ge", { try $0.ge($1) }),
        ]
        for (name, op) in tensorOps {
            let c = FixtureCase("compare.\(name)")
            try c.assertOutput(try op(try c("a"), try c("b")))
        }
        let scalarOps: [(String, (Tensor) throws -> Tensor)] = [
            ("eq", { try $0.eq(1) }), ("ne", { try $0.ne(1) }), ("lt", { try $0.lt(1) }),
            ("le", { try $0.le(1) }), ("gt", { try $0.gt(1) }), ("ge", { try $0.ge(1) }),
        ]
        for (name, op) in scalarOps {
            let c = FixtureCase("compare_scalar.\(name)")
            try c.assertOutput(try op(try c("a")))
        }
    }

    func testLogicalOperations() throws {
        let and = FixtureCase("logical.and")
        try and.assertOutput(try and("a").logicalAnd(try and("b")))
        let or = FixtureCase("logical.or")
        try or.assertOutput(try or("a").logicalOr(try or("b")))
        let not = FixtureCase("logical.not")
        try not.assertOutput(try not("a").logicalNot())
    }

    func testWhereBroadcasts() throws {
        let c = FixtureCase("where.broadcast")
        let a = try c.leaf("a")
        let b = try c.leaf("b")
        let out = try Tensor.where(try c("condition"), a, b)
        try c.assertOutput(out)
        try c.assertGradients(of: out, ["a": a, "b": b])
    }

    func testClamp() throws {
        let cases: [(String, Double?, Double?)] = [("min", -0.5, nil), ("max", nil, 0.7), ("both", -1.0, 0.25)]
        for (name, low, high) in cases {
            let c = FixtureCase("clamp.\(name)")
            let input = try c.leaf("input")
            let out = try input.clamp(min: low, max: high)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["input": input])
        }
    }

    func testUnaryFunctions() throws {
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("exp", { try $0.exp() }), ("log", { try $0.log() }), ("sqrt", { try $0.sqrt() }),
            ("rsqrt", { try $0.rsqrt() }), ("abs", { try $0.abs() }), ("sigmoid", { try $0.sigmoid() }),
            ("tanh", { try $0.tanh() }),
        ]
        for (name, op) in ops {
            let c = FixtureCase("unary.\(name)")
            let input = try c.leaf("input")
            let out = try op(input)
            try c.assertOutput(out)
            try c.assertGradients(of: out, ["input": input])
        }
        let floor = FixtureCase("unary.floor")
        try floor.assertOutput(try floor("input").floor())
        let finite = FixtureCase("unary.isfinite")
        try finite.assertOutput(try finite("input").isFinite())
    }
}
