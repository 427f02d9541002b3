import SegTTT
import XCTest

@testable import SegTTTReports

final class ClassPaletteTests: XCTestCase {
    func testCityscapesClassesGetTheirConventionalColours() {
        let expected: [[UInt8]] = [
            [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153],
            [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
            [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
        ]
        XCTAssertEqual(ClassPalette.colours(for: ClassNames.cityscapes), expected)
    }

    func testCamVidClassesGetTheirConventionalColours() {
        let expected: [[UInt8]] = [
            [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
            [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
        ]
        XCTAssertEqual(ClassPalette.colours(for: ClassNames.camVid), expected)
    }

    func testSyntheticStreetsClassesTakeTheCityscapesColoursOfTheirNames() {
        let names = StreetClass.allCases.map(\.name)
        XCTAssertEqual(names, ["sky", "road", "sidewalk", "building", "vegetation", "car", "person", "pole"])
        XCTAssertEqual(
            ClassPalette.colours(for: names),
            [
                [70, 130, 180], [128, 64, 128], [244, 35, 232], [70, 70, 70], [107, 142, 35], [0, 0, 142],
                [220, 20, 60], [153, 153, 153],
            ])
    }

    func testExactSpellingPicksTheProtocolAndOtherCasesFallBackToCityscapes() {
        XCTAssertEqual(ClassPalette.conventionalColour(of: "Sky"), [128, 128, 128])  // CamVid
        XCTAssertEqual(ClassPalette.conventionalColour(of: "sky"), [70, 130, 180])  // Cityscapes
        XCTAssertEqual(ClassPalette.conventionalColour(of: "SKY"), [70, 130, 180])
        XCTAssertEqual(ClassPalette.conventionalColour(of: "Traffic Light"), [250, 170, 30])
        XCTAssertEqual(ClassPalette.conventionalColour(of: "pedestrian"), [64, 64, 0])  // CamVid, case folded
        XCTAssertNil(ClassPalette.conventionalColour(of: "lamp post"))
    }

    func testUnknownNamesGetDistinctDeterministicColoursThatAreNeverBlack() {
        let names = ["road"] + (0..<60).map { "class \($0)" } + ["car"]
        let palette = ClassPalette.colours(for: names)
        XCTAssertEqual(palette.count, names.count)
        XCTAssertEqual(Set(palette).count, names.count, "colours repeat")
        XCTAssertFalse(palette.contains(ClassPalette.unlabelled))
        XCTAssertTrue(palette.allSatisfy { $0.count == 3 && $0.max()! >= 100 }, "a generated colour is too dark")
        XCTAssertEqual(ClassPalette.colours(for: names), palette)
        XCTAssertEqual(palette.first, [128, 64, 128])
        XCTAssertEqual(palette.last, [0, 0, 142])
    }

    func testGeneratedColoursAreDistinctFromEachOtherAndFromConventionalColours() {
        let generated = (0..<ClassPalette.generatedCount).map(ClassPalette.generatedColour)
        XCTAssertEqual(Set(generated).count, generated.count)
        let conventional = Set(ClassPalette.cityscapes.values).union(ClassPalette.camVid.values)
        XCTAssertTrue(conventional.isDisjoint(with: generated))
        XCTAssertTrue(generated.allSatisfy { $0.max()! >= 128 }, "a generated colour is too dark")
    }

    func testHSVConversionHitsThePrimaries() {
        XCTAssertEqual(ClassPalette.rgb(hue: 0, saturation: 1, value: 1), [255, 0, 0])
        XCTAssertEqual(ClassPalette.rgb(hue: 1.0 / 3, saturation: 1, value: 1), [0, 255, 0])
        XCTAssertEqual(ClassPalette.rgb(hue: 2.0 / 3, saturation: 1, value: 1), [0, 0, 255])
        XCTAssertEqual(ClassPalette.rgb(hue: 0.5, saturation: 0, value: 0.5), [128, 128, 128])
    }
}
