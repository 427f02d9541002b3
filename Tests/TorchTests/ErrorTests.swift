import TestSupport
import Torch
import XCTest

final class ErrorTests: ConfiguredTestCase {
    /// A libtorch shape error arrives as a thrown Swift error carrying libtorch's message.
    func testShapeErrorRoundTrip() throws {
        let a = try Tensor.zeros([2, 3])
        let b = try Tensor.zeros([4, 5])
        XCTAssertThrowsError(try a.matmul(b)) { error in
            guard let error = error as? TorchError else { return XCTFail("not a TorchError: \(error)") }
            XCTAssertTrue(error.message.contains("cannot be multiplied"), error.message)
            XCTAssertTrue(error.message.contains("2x3") && error.message.contains("4x5"), error.message)
        }
        // The shim still works after an error.
        XCTAssertEqual(try (a + 1).sum().item(), 6)
    }

    func testConvolutionChannelMismatchNamesShapes() throws {
        let input = try Tensor.zeros([1, 3, 8, 8])
        let weight = try Tensor.zeros([4, 5, 3, 3])
        XCTAssertThrowsError(try conv2d(input, weight: weight)) { error in
            let message = (error as? TorchError)?.message ?? ""
            XCTAssertTrue(message.contains("expected input[1, 3, 8, 8] to have 5 channels"), message)
        }
    }

    func testWrongValueCountIsRejected() {
        XCTAssertThrowsError(try Tensor([Float](repeating: 0, count: 5), shape: [2, 3])) { error in
            XCTAssertEqual((error as? TorchError)?.message, "shape [2, 3] holds 6 elements but 5 values were given")
        }
    }
}
