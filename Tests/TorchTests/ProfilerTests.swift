import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// `OperatorTime.profile` reports the operators that ran inside it, with their call counts,
/// nesting (self within total) and, on request, input sizes, and always stops the profiler.
final class ProfilerTests: ConfiguredTestCase {
    private func row(_ name: String, in operators: [OperatorTime], file: StaticString = #filePath, line: UInt = #line)
        throws -> OperatorTime
    {
        try XCTUnwrap(
            operators.first { $0.name == name }, "\(name) missing from \(operators.map(\.name))", file: file,
            line: line)
    }

    func testCountsCallsAndSplitsNestedTime() throws {
        let a = try Tensor.uniform([64, 64], generator: Generator(seed: 1))
        let b = try Tensor.uniform([64, 64], generator: Generator(seed: 2))
        let (result, operators) = try OperatorTime.profile { () throws -> Tensor in
            for _ in 0..<3 { _ = try a.matmul(b) }
            return try a + b
        }
        XCTAssertEqual(result.shape, [64, 64])
        XCTAssertEqual(try row("aten::add", in: operators).calls, 1)
        let matmul = try row("aten::matmul", in: operators)
        let mm = try row("aten::mm", in: operators)
        XCTAssertEqual(matmul.calls, 3)
        XCTAssertEqual(mm.calls, 3)
        // aten::matmul calls aten::mm: mm's time is inside matmul's total, not in its self time.
        XCTAssertGreaterThan(mm.totalMilliseconds, 0)
        XCTAssertGreaterThanOrEqual(matmul.totalMilliseconds, mm.totalMilliseconds)
        XCTAssertLessThanOrEqual(matmul.selfMilliseconds, matmul.totalMilliseconds - mm.totalMilliseconds + 1e-3)
        for entry in operators {
            XCTAssertLessThanOrEqual(entry.selfMilliseconds, entry.totalMilliseconds + 1e-6, entry.name)
        }
        let selfTimes = operators.map(\.selfMilliseconds)
        XCTAssertEqual(selfTimes, selfTimes.sorted(by: >), "rows come by self time, largest first")
    }

    func testShapesTellCallsApart() throws {
        let small = try Tensor.ones([2, 3])
        let large = try Tensor.ones([4, 5])
        let (_, operators) = try OperatorTime.profile(byShapes: true) {
            _ = try small + small
            _ = try large + large
            _ = try large + large
        }
        XCTAssertEqual(try row("aten::add [2,3] [2,3]", in: operators).calls, 1)
        XCTAssertEqual(try row("aten::add [4,5] [4,5]", in: operators).calls, 2)
        XCTAssertNil(operators.first { $0.name == "aten::add" })
    }

    func testFusedKernelsAndTheirBackwardNodesAreNamed() throws {
        let x = try Tensor.uniform([2, 3, 4, 4], generator: Generator(seed: 3)).requiresGrad(true)
        let (_, operators) = try OperatorTime.profile {
            let y = try Kernels.batchNormPReLU(
                x, mean: Tensor.zeros([3]), variance: Tensor.ones([3]), weight: Tensor.ones([3]),
                bias: Tensor.zeros([3]), slope: Tensor.full([1], value: 0.25), eps: 1e-5)
            try y.sum().backward()
        }
        XCTAssertEqual(try row("segttt::batch_norm_prelu", in: operators).calls, 1)
        XCTAssertTrue(
            operators.contains { $0.name.contains("BatchNormPReLUFunction") }, "\(operators.map(\.name))")
    }

    /// A body that throws leaves the profiler stopped: the next profile starts, and sees only
    /// its own operators.
    func testAThrowingBodyStopsTheProfiler() throws {
        struct Interrupted: Error {}
        XCTAssertThrowsError(
            try OperatorTime.profile {
                _ = try Tensor.ones([3]) * 2
                throw Interrupted()
            }
        ) { XCTAssertTrue($0 is Interrupted, "\($0)") }
        let (_, operators) = try OperatorTime.profile { _ = try Tensor.ones([3]) - 1 }
        XCTAssertNotNil(operators.first { $0.name == "aten::sub" })
        XCTAssertNil(operators.first { $0.name == "aten::mul" })
    }
}
