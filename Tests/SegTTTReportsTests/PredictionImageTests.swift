import SegTTTReports
import Torch
import XCTest

final class PredictionImageTests: XCTestCase {
    let palette: [[UInt8]] = [[10, 20, 30], [40, 50, 60], [70, 80, 90]]

    func testColourizePaintsClassesAndPaintsEverythingElseBlack() throws {
        // 255 is the ignore value, 3 the index of unmapped classes, -1 out of range.
        let labels = try Tensor([0, 1, 255, 2, -1, 3] as [Int64], shape: [2, 3])
        let image = try PredictionImage.colourize(labels, palette: palette)
        XCTAssertEqual(image.shape, [3, 2, 3])
        XCTAssertEqual(image.dtype, .uint8)
        XCTAssertEqual(
            try image.toArray(UInt8.self),
            [
                10, 40, 0, 70, 0, 0,  // red
                20, 50, 0, 80, 0, 0,  // green
                30, 60, 0, 90, 0, 0,  // blue
            ])
    }

    func testColourizeAcceptsOtherIntegerTypes() throws {
        let labels = try Tensor([2, 0] as [Int32], shape: [1, 2])
        let image = try PredictionImage.colourize(labels, palette: palette)
        XCTAssertEqual(try image.toArray(UInt8.self), [70, 10, 80, 20, 90, 30])
    }

    func testColourizeRefusesFloatsWrongShapesAndBadPalettes() throws {
        XCTAssertThrowsError(
            try PredictionImage.colourize(Tensor([0, 1] as [Float], shape: [1, 2]), palette: palette))
        XCTAssertThrowsError(try PredictionImage.colourize(Tensor([0, 1] as [Int64]), palette: palette)) { error in
            XCTAssertTrue("\(error)".contains("[H, W]"), "\(error)")
        }
        XCTAssertThrowsError(
            try PredictionImage.colourize(Tensor([0, 1] as [Int64], shape: [1, 2]), palette: [[1, 2, 3], [4, 5]]))
    }

    func testOverlayBlendsAndRoundsHalvesUp() throws {
        let image = try Tensor([10, 1, 2, 255, 0, 100] as [UInt8], shape: [3, 1, 2])
        let colours = try Tensor([20, 2, 3, 0, 255, 100] as [UInt8], shape: [3, 1, 2])
        let half = try PredictionImage.overlay(image, colours: colours)
        XCTAssertEqual(half.dtype, .uint8)
        // 15, 1.5 -> 2, 2.5 -> 3, 127.5 -> 128, 127.5 -> 128, 100.
        XCTAssertEqual(try half.toArray(UInt8.self), [15, 2, 3, 128, 128, 100])
        let quarter = try PredictionImage.overlay(image, colours: colours, alpha: 0.25)
        // 12.5 -> 13, 1.25 -> 1, 2.25 -> 2, 191.25 -> 191, 63.75 -> 64, 100.
        XCTAssertEqual(try quarter.toArray(UInt8.self), [13, 1, 2, 191, 64, 100])
        XCTAssertEqual(
            try PredictionImage.overlay(image, colours: colours, alpha: 0).toArray(UInt8.self),
            try image.toArray(UInt8.self))
        XCTAssertEqual(
            try PredictionImage.overlay(image, colours: colours, alpha: 1).toArray(UInt8.self),
            try colours.toArray(UInt8.self))
    }

    func testOverlayOfDifferentShapesIsAClearError() throws {
        let image = try Tensor.zeros([3, 4, 5], dtype: .uint8)
        let colours = try Tensor.zeros([3, 2, 5], dtype: .uint8)
        XCTAssertThrowsError(try PredictionImage.overlay(image, colours: colours)) { error in
            XCTAssertTrue("\(error)".contains("[3, 2, 5]") && "\(error)".contains("[3, 4, 5]"), "\(error)")
        }
        XCTAssertThrowsError(try PredictionImage.overlay(image, colours: image, alpha: 1.5))
        XCTAssertThrowsError(try PredictionImage.overlay(image.to(.float32), colours: image))
    }

    func testSideSetsImagesLeftToRight() throws {
        let left = try Tensor([1, 2, 3] as [UInt8], shape: [3, 1, 1])
        let right = try Tensor([4, 5, 6, 7, 8, 9] as [UInt8], shape: [3, 1, 2])
        let both = try PredictionImage.side([left, right])
        XCTAssertEqual(both.shape, [3, 1, 3])
        XCTAssertEqual(try both.toArray(UInt8.self), [1, 4, 5, 2, 6, 7, 3, 8, 9])
        XCTAssertThrowsError(try PredictionImage.side([left, Tensor.zeros([3, 2, 1], dtype: .uint8)]))
        XCTAssertThrowsError(try PredictionImage.side([]))
    }

    func testColourizedPredictionOverlaysAnImageOfItsSize() throws {
        let labels = try Tensor.zeros([4, 6], dtype: .int64)
        let colours = try PredictionImage.colourize(labels, palette: palette)
        let image = try Tensor.full([3, 4, 6], value: 30, dtype: .uint8)
        let blended = try PredictionImage.overlay(image, colours: colours)
        XCTAssertEqual(Set(try blended.narrow(dim: 0, start: 0, length: 1).toArray(UInt8.self)), [20])
    }
}
