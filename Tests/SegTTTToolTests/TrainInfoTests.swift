import Foundation
import SegTTT
import TestSupport
import XCTest

@testable import SegTTTTool

/// `segttt train` and `segttt info`.
final class TrainInfoTests: ConfiguredTestCase {
    func testTrainSavesAModelWithItsClassesThatInfoRecognises() throws {
        let folder = try temporaryFolder(self)
        let model = folder.appendingPathComponent("tiny.safetensors")
        XCTAssertNil(
            runTool([
                "train", "--dataset", "synthetic:source:12:1", "--espnet-p", "1", "--espnet-q", "1", "--iterations", "2",
                "--batch-size", "2", "--lr", "0.05", "--threads", "1", "--output", model.path,
            ]))
        let loaded = try ModelFile.load(model, family: ESPNetFamily())
        XCTAssertEqual(loaded.card.classNames, SyntheticStreets.classes)
        XCTAssertEqual(loaded.card.numOutputs, 8)
        XCTAssertNil(runTool(["info", model.path]))
    }

    func testTrainRefusesAnUnlabelledHoldoutFraction() {
        let (message, code) = report(
            runTool(["train", "--dataset", "synthetic:source:4", "--holdout-fraction", "1.5", "--iterations", "1"]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("--holdout-fraction"), message)
    }

    func testTrainRefusesSizesOutsideTheirRangeBeforeReadingAnything() {
        // A negative q once trapped in ESPNet's block range, and p = q = 1000 ran out of memory;
        // the dataset does not exist, so only the size check can give these messages.
        for (flag, value, range) in [("--espnet-q", "-1", "1 to 16"), ("--espnet-p", "1000", "1 to 16"),
                                     ("--batch-size", "0", "1 to 64"), ("--threads", "10000", "1 to 1024")] {
            let (message, code) = report(runTool(["train", "--dataset", "folder:/nonexistent", "\(flag)=\(value)"]))
            XCTAssertEqual(code, 1, message)
            XCTAssertTrue(message.contains("\(flag) \(value): give \(range)"), message)
        }
    }

    func testDemoRefusesAnAbsurdThreadCount() {
        let (message, code) = report(runTool(["demo", "--threads", "10000", "--frames", "1"]))
        XCTAssertEqual(code, 1, message)
        XCTAssertTrue(message.contains("--threads 10000: give 1 to 1024"), message)
    }

    func testShippedModelScoresWellOnItsOwnStyle() throws {
        let model = try ModelFile.load(try shippedModel(), family: ESPNetFamily())
        let stream = try SyntheticStreets(style: .source, count: 20, seed: 2)
        let mapping = ClassMapping.identity(classes: 8, outputs: 8)
        let miou = try evaluateFrozen(model, on: stream, mapping: mapping).meanIoU
        XCTAssertGreaterThan(miou, 0.6, "the shipped source model should segment its own style well")
    }

    func testInfoRecognisesTheReleasedESPNet() throws {
        let file = try sharedData().appendingPathComponent("weights/espnet/espnet_p_2_q_8.pth")
        XCTAssertNil(runTool(["info", file.path]))
        XCTAssertEqual(try ModelFile.load(file, family: ESPNetFamily()).card.numOutputs, 20)
    }
}
