import TestSupport
import Torch
import XCTest

/// Whole scalars keep integer tensors integer, as PyTorch does (regression: they were all
/// passed as doubles, so `i + 1` became float32).
final class IntegerScalarTests: ConfiguredTestCase {
    func testWholeScalarsKeepIntegerTypes() throws {
        let i = try Tensor([Int64(1), 2, 300])
        for result in [try i + 1, try i * 2, try i.pow(2), try 2 - i, try i.clamp(min: 0, max: 5)] {
            XCTAssertEqual(result.dtype, .int64)
        }
        XCTAssertEqual(try (2 - i).toArray(Int64.self), [1, 0, -298])
        XCTAssertEqual(try i.clamp(min: 0, max: 5).toArray(Int64.self), [1, 2, 5])
        XCTAssertEqual(try (Tensor([UInt8(250)]) + 1).dtype, .uint8)
        XCTAssertEqual(try (i + 1.5).dtype, .float32)
        XCTAssertEqual(try (i + 1.5).toArray(Float.self), [2.5, 3.5, 301.5])
    }

    func testIntegerFillAndAlpha() throws {
        let counter = try Tensor.zeros([], dtype: .int64)
        try counter.add_(Tensor(scalar: Int64(3)), alpha: 2)
        try counter.add_(Tensor(scalar: Int64(1)))
        XCTAssertEqual(try counter.itemInt(), 7)
        let t = try Tensor.zeros([2], dtype: .int32)
        try t.fill_(9)
        XCTAssertEqual(try t.toArray(Int32.self), [9, 9])
    }

    func testStrideCountIsCheckedForEmptyShapes() {
        XCTAssertThrowsError(
            try [UInt8]().withUnsafeBytes { try Tensor(bytes: $0, shape: [0, 2], strides: [5], dtype: .float32) })
    }
}

/// Sizes from a corrupt file must throw, not trap on overflow (regression).
final class HugeShapeTests: ConfiguredTestCase {
    func testOverflowingShapeThrows() {
        let bytes = [UInt8](repeating: 0, count: 16)
        XCTAssertThrowsError(
            try bytes.withUnsafeBytes { try Tensor(bytes: $0, shape: [Int.max / 2, 4], dtype: .float32) })
        XCTAssertThrowsError(
            try bytes.withUnsafeBytes { try Tensor(bytes: $0, shape: [3, 3], strides: [Int.max, 1], dtype: .uint8) })
    }
}
