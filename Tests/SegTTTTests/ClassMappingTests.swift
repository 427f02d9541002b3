import Foundation
import SegTTT
import TestSupport
import Torch
import XCTest

/// Cross-taxonomy evaluation: known pairs, matching names (the 16/13-class protocols),
/// class-map files, and a clear error otherwise.
final class ClassMappingTests: ConfiguredTestCase {
    func testKnownPairCityscapesToCamVid() throws {
        let mapping = try ClassMapping.resolve(
            modelClasses: ClassNames.cityscapes, numOutputs: 20, datasetClasses: ClassNames.camVid)
        XCTAssertEqual(mapping, .cityscapesToCamVid)
    }

    func testSixteenAndThirteenClassProtocolsByName() throws {
        for labelProtocol in [LabelProtocol.synthia16, .synthia13] {
            let mapping = try ClassMapping.resolve(
                modelClasses: ClassNames.cityscapes, numOutputs: 19, datasetClasses: labelProtocol.classNames)
            XCTAssertEqual(mapping.numTargetClasses, labelProtocol.count)
            // Each kept trainId goes to its protocol index; dropped ones (terrain = 9) are unmapped.
            for (index, trainId) in labelProtocol.trainIds.enumerated() {
                XCTAssertEqual(mapping.target[trainId], index)
            }
            XCTAssertNil(mapping.target[9])
            XCTAssertTrue(mapping.hasUnmapped)
        }
        // A 13-class evaluation of 19-class predictions: terrain (9) counts as unmapped.
        let mapping = try ClassMapping.resolve(
            modelClasses: ClassNames.cityscapes, numOutputs: 19, datasetClasses: LabelProtocol.synthia13.classNames)
        var matrix = mapping.makeConfusionMatrix()
        try matrix.add(prediction: mapping.apply(Tensor([0, 9, 18] as [Int64])), label: Tensor([0, 0, 12] as [Int64]))
        XCTAssertEqual(matrix[0, 0], 1)
        XCTAssertEqual(matrix[0, 13], 1)
        XCTAssertEqual(matrix[12, 12], 1)
        XCTAssertEqual(matrix.meanIoU, (0.5 + 1) / 2, accuracy: 1e-12)
    }

    func testSameClassesAreTheIdentityWithTheVoidOutputUnmapped() throws {
        let mapping = try ClassMapping.resolve(
            modelClasses: ClassNames.camVid, numOutputs: 12, datasetClasses: ClassNames.camVid)
        XCTAssertEqual(mapping, .identity(classes: 11, outputs: 12))
    }

    func testUnknownPairIsAnErrorThatExplainsTheClassMapFile() {
        XCTAssertThrowsError(
            try ClassMapping.resolve(modelClasses: ["a", "b"], numOutputs: 2, datasetClasses: ["road", "sky"])
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("road, sky") && text.contains("--class-map"), text)
        }
    }

    func testClassMapFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("map-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(#"{"a": "sky", "b": null}"#.utf8).write(to: url)
        let mapping = try ClassMapping.resolve(
            modelClasses: ["a", "b"], numOutputs: 3, datasetClasses: ["road", "sky"], classMapFile: url)
        XCTAssertEqual(mapping.target, [1, nil, nil])
        for (text, complaint) in [
            (#"{"a": "sea", "b": null}"#, "'a' maps to sea"), (#"{"a": "sky"}"#, "'b' is not listed"),
        ] {
            try Data(text.utf8).write(to: url)
            XCTAssertThrowsError(
                try ClassMapping.resolve(
                    modelClasses: ["a", "b"], numOutputs: 2, datasetClasses: ["road", "sky"], classMapFile: url)
            ) { error in
                XCTAssertTrue("\(error)".contains(complaint) && "\(error)".contains(url.path), "\(error)")
            }
        }
    }
}
