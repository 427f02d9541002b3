import Foundation
import Torch
import XCTest

@testable import SegTTT

/// Synthetic streets: frames fixed by (index, seed), labels shared by every style, every
/// class drawn, shapes and dtypes, and the errors.
final class SyntheticStreetsTests: SingleThreadedTestCase {
    static let size = Pair(48, 64)

    private func streets(_ style: StreetStyle = .source, count: Int = 8, seed: UInt64 = 0) throws -> SyntheticStreets {
        try SyntheticStreets(style: style, count: count, size: Self.size, seed: seed)
    }

    private func label(_ sample: Sample) throws -> Tensor { try XCTUnwrap(sample.label) }

    func testShapesDtypesAndValueRange() throws {
        let data = try streets(count: 3)
        XCTAssertEqual(data.count, 3)
        XCTAssertEqual(data.name, "synthetic-streets-source")
        XCTAssertEqual(
            data.classNames, ["sky", "road", "sidewalk", "building", "vegetation", "car", "person", "pole"])
        XCTAssertEqual(data.frameName(at: 12), "source-000012")
        let sample = try data.sample(at: 2)
        XCTAssertEqual(sample.name, "source-000002")
        XCTAssertEqual(sample.image.shape, [3, 48, 64])
        XCTAssertEqual(sample.image.dtype, .uint8)
        let label = try label(sample)
        XCTAssertEqual(label.shape, [48, 64])
        XCTAssertEqual(label.dtype, .int64)
        XCTAssertGreaterThanOrEqual(try label.amin().itemInt(), 0)
        XCTAssertLessThanOrEqual(try label.amax().itemInt(), 7)
        // The default size suits ESPNet (sides multiples of 8).
        let full = try SyntheticStreets(count: 1).sample(at: 0)
        XCTAssertEqual(full.image.shape, [3, 96, 128])
    }

    func testTheSameIndexAndSeedGiveTheSameFrameBitForBit() throws {
        let a = try streets(.night, seed: 5).sample(at: 3)
        let b = try streets(.night, seed: 5).sample(at: 3)
        XCTAssertEqual(try a.image.contiguousBytes(), try b.image.contiguousBytes())
        XCTAssertEqual(try label(a).toArray(Int64.self), try label(b).toArray(Int64.self))
        // Asking for other frames in between changes nothing.
        let data = try streets(.night, seed: 5)
        _ = try data.sample(at: 0)
        XCTAssertEqual(try data.sample(at: 3).image.contiguousBytes(), try a.image.contiguousBytes())
    }

    func testOtherSeedsAndIndicesGiveOtherScenes() throws {
        let reference = try label(streets(seed: 0).sample(at: 0)).toArray(Int64.self)
        XCTAssertNotEqual(try label(streets(seed: 1).sample(at: 0)).toArray(Int64.self), reference)
        XCTAssertNotEqual(try label(streets(seed: 0).sample(at: 1)).toArray(Int64.self), reference)
        XCTAssertNotEqual(
            try streets(seed: 1).sample(at: 0).image.contiguousBytes(),
            try streets(seed: 0).sample(at: 0).image.contiguousBytes())
    }

    func testEveryStyleHasTheSameLabelsAndAnotherImage() throws {
        for index in [1] {
            let source = try streets(.source, seed: 3).sample(at: index)
            let sourceLabel = try label(source).toArray(Int64.self)
            let sourceImage = try source.image.contiguousBytes()
            for style in StreetStyle.targets {
                let target = try streets(style, seed: 3).sample(at: index)
                XCTAssertEqual(try label(target).toArray(Int64.self), sourceLabel, "\(style) frame \(index)")
                XCTAssertNotEqual(try target.image.contiguousBytes(), sourceImage, "\(style) frame \(index)")
            }
        }
        XCTAssertEqual(StreetStyle.targets, [.dusk, .fog, .night, .palette, .texture])
    }

    func testEveryClassIsDrawnInAFewFrames() throws {
        let data = try streets(count: 4)
        var counts = [Int64](repeating: 0, count: 8)
        for index in 0..<data.count {
            let frame = try label(data.sample(at: index)).reshape([-1]).bincount(minLength: 8).toArray(Int64.self)
            for k in 0..<8 { counts[k] += frame[k] }
        }
        for (k, name) in SyntheticStreets.classes.enumerated() {
            XCTAssertGreaterThan(counts[k], 0, "class \(name) never drawn: \(counts)")
        }
    }

    func testDuskAndNightAreDarkerAndFogFlatterThanDaylight() throws {
        func mean(_ style: StreetStyle) throws -> Double {
            try streets(style, seed: 2).sample(at: 0).image.to(.float32).mean().item()
        }
        func spread(_ style: StreetStyle) throws -> Double {
            try streets(style, seed: 2).sample(at: 0).image.to(.float32).var().item().squareRoot()
        }
        let daylight = try mean(.source)
        XCTAssertLessThan(try mean(.dusk), 0.7 * daylight)
        XCTAssertLessThan(try mean(.night), 0.4 * daylight)
        XCTAssertLessThan(try spread(.fog), try spread(.source))
    }

    func testErrorsSayWhatToAskFor() throws {
        XCTAssertThrowsError(try SyntheticStreets(count: 1, size: Pair(8, 64))) { error in
            XCTAssertEqual(error as? SyntheticStreetsError, .invalidSize(Pair(8, 64)))
            XCTAssertTrue("\(error)".contains("at least 16"), "\(error)")
        }
        XCTAssertThrowsError(try SyntheticStreets(count: -1))
        XCTAssertThrowsError(try streets(count: 2).sample(at: 2)) { error in
            XCTAssertEqual(error as? SyntheticStreetsError, .indexOutOfRange(index: 2, count: 2))
            XCTAssertTrue("\(error)".contains("0..<2"), "\(error)")
        }
    }
}
