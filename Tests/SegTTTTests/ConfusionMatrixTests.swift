import SegTTT
import TestSupport
import Torch
import XCTest

/// Metrics against hand-computed confusion matrices.
final class ConfusionMatrixTests: ConfiguredTestCase {
    func testHandComputedMatrixAndMetrics() throws {
        // Labels and predictions of 8 pixels, 3 classes; 255 is ignored.
        let label = try Tensor([0, 0, 1, 1, 1, 2, 255, 2] as [Int64], shape: [2, 4])
        let prediction = try Tensor([0, 1, 1, 1, 0, 2, 0, 1] as [Int64], shape: [2, 4])
        var matrix = ConfusionMatrix(numClasses: 3)
        try matrix.add(prediction: prediction, label: label)
        XCTAssertEqual(matrix.counts, [1, 1, 0, 1, 2, 0, 0, 1, 1])
        // IoU: class 0: 1 / (2 + 2 - 1); class 1: 2 / (3 + 4 - 2); class 2: 1 / (2 + 1 - 1).
        let iou = matrix.iouPerClass.map { $0 ?? -1 }
        XCTAssertEqual(iou[0], 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(iou[1], 2.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(iou[2], 1.0 / 2, accuracy: 1e-12)
        XCTAssertEqual(matrix.meanIoU, (1.0 / 3 + 0.4 + 0.5) / 3, accuracy: 1e-12)
        XCTAssertEqual(matrix.pixelAccuracy, 4.0 / 7, accuracy: 1e-12)
        XCTAssertEqual(matrix.meanClassAccuracy, (0.5 + 2.0 / 3 + 0.5) / 3, accuracy: 1e-12)
        XCTAssertEqual(matrix.frequencyWeightedIoU, 2.0 / 7 / 3 + 3.0 / 7 * 0.4 + 2.0 / 7 * 0.5, accuracy: 1e-12)
    }

    func testClassesAbsentFromLabelAndPredictionAreSkipped() throws {
        var matrix = ConfusionMatrix(numClasses: 4)
        try matrix.add(prediction: Tensor([0, 1, 1] as [Int64]), label: Tensor([0, 1, 0] as [Int64]))
        XCTAssertNil(matrix.iouPerClass[2])
        XCTAssertNil(matrix.iouPerClass[3])
        XCTAssertEqual(matrix.meanIoU, (0.5 + 0.5) / 2, accuracy: 1e-12)
    }

    func testAccumulationOverFramesEqualsOneBigFrame() throws {
        let generator = try Generator(seed: 3)
        let labels = try (Tensor.uniform([4, 10, 10], high: 5, generator: generator)).floor().to(.int64)
        let predictions = try (Tensor.uniform([4, 10, 10], high: 5, generator: generator)).floor().to(.int64)
        var streamed = ConfusionMatrix(numClasses: 5)
        for i in 0..<4 {
            try streamed.add(
                prediction: predictions.narrow(dim: 0, start: i, length: 1),
                label: labels.narrow(dim: 0, start: i, length: 1))
        }
        var whole = ConfusionMatrix(numClasses: 5)
        try whole.add(prediction: predictions, label: labels)
        XCTAssertEqual(streamed, whole)
        XCTAssertEqual(whole.counts.reduce(0, +), 400)
    }

    func testCityscapesToCamVidMappingCountsBackgroundAsUnmapped() throws {
        let mapping = ClassMapping.cityscapesToCamVid
        XCTAssertEqual(mapping.target.count, 20)
        // road -> Road (3), wall -> Building (1), rider -> Bicyclist (10), background -> unmapped (11).
        let mapped = try mapping.apply(Tensor([0, 3, 12, 19] as [Int64]))
        XCTAssertEqual(try mapped.toArray(Int64.self), [3, 1, 10, 11])
        var matrix = mapping.makeConfusionMatrix()
        XCTAssertEqual(matrix.numColumns, 12)
        try matrix.add(prediction: mapped, label: Tensor([3, 1, 4, 3] as [Int64]))
        // The background prediction is a false negative for Road and a false positive for no class.
        XCTAssertEqual(matrix[3, 11], 1)
        XCTAssertEqual(matrix.iouPerClass[3] ?? -1, 0.5, accuracy: 1e-12)
    }

    func testPredictionOutsideTheColumnsIsAnError() {
        var matrix = ConfusionMatrix(numClasses: 2)
        XCTAssertThrowsError(try matrix.add(prediction: Tensor([5] as [Int64]), label: Tensor([1] as [Int64])))
        // Out of range but landing on a valid cell (0 * 2 + 3 = cell (1, 1)) is refused too.
        XCTAssertThrowsError(try matrix.add(prediction: Tensor([3] as [Int64]), label: Tensor([0] as [Int64])))
    }
}
