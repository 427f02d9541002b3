import Foundation
import SegTTT
import TestSupport
import Torch
import XCTest

/// The released ESPNet checkpoints on the CamVid test split give the accuracies measured
/// independently (shared/MODELS.md). Runs the whole stream twice (466 forward passes).
final class ReferenceAccuracyTests: ConfiguredTestCase {
    private var data: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data")
    }

    private func camVid() throws -> CamVid {
        let root = data.appendingPathComponent("camvid")
        guard FileManager.default.fileExists(atPath: root.path) else {
            throw XCTSkip("\(root.path) is absent: the CamVid test split lives in ../shared/data")
        }
        return try CamVid(root: root)
    }

    func testCamVidCheckpointOnCamVid() throws {
        let dataset = try camVid()
        let model = try ESPNet.load(data.appendingPathComponent("weights/espnet/espnet_p_2_q_8_camvid.pth"))
        let matrix = try evaluateFrozen(model, on: dataset, mapping: .identity(classes: 11, outputs: 12))
        print("ESPNet-CamVid on CamVid test: mIoU \(matrix.meanIoU * 100)")
        XCTAssertEqual(matrix.meanIoU * 100, 57.2, accuracy: 0.3)
    }

    func testCityscapesCheckpointOnCamVidThroughTheClassMapping() throws {
        let dataset = try camVid()
        let model = try ESPNet.load(data.appendingPathComponent("weights/espnet/espnet_p_2_q_8.pth"))
        let day = try evaluateFrozen(model, on: dataset.only(.day), mapping: .cityscapesToCamVid)
        let dusk = try evaluateFrozen(model, on: dataset.only(.dusk), mapping: .cityscapesToCamVid)
        // The whole stream's matrix is the sum of its two sequences'.
        var all = day
        all.merge(dusk)
        print(
            "ESPNet-Cityscapes on CamVid: all \(all.meanIoU * 100), day \(day.meanIoU * 100), dusk \(dusk.meanIoU * 100)"
        )
        XCTAssertEqual(all.meanIoU * 100, 31.0, accuracy: 0.5)
        XCTAssertEqual(day.meanIoU * 100, 35.8, accuracy: 0.5)
        XCTAssertEqual(dusk.meanIoU * 100, 17.6, accuracy: 0.5)
    }
}
