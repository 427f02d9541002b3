import Foundation
import TestSupport
import Torch
import XCTest

@testable import SegTTT

final class CamVidTests: ConfiguredTestCase {
    /// ../shared/data/camvid next to the package (three levels up from this file).
    static let sharedRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/data/camvid").standardizedFileURL

    func openShared() throws -> CamVid {
        guard FileManager.default.fileExists(atPath: Self.sharedRoot.appendingPathComponent("test.txt").path) else {
            throw XCTSkip("CamVid is not at \(Self.sharedRoot.path); these tests read the shared copy when it is there")
        }
        return try CamVid(root: Self.sharedRoot)
    }

    // MARK: the real test split

    func testSharedSplitHas233FramesInSortedOrder() throws {
        let camvid = try openShared()
        XCTAssertEqual(camvid.count, 233)
        XCTAssertEqual(camvid.name, "camvid")
        XCTAssertEqual(camvid.classNames.count, 11)
        XCTAssertEqual(camvid.classNames.first, "Sky")
        XCTAssertEqual(camvid.classNames.last, "Bicyclist")
        let names = camvid.frames.map(\.name)
        XCTAssertEqual(names, names.sorted())
        XCTAssertEqual(names.first, "0001TP_008550")
        XCTAssertEqual(Set(names).count, 233)
        for frame in camvid.frames {
            XCTAssertTrue(FileManager.default.fileExists(atPath: frame.image.path), frame.image.path)
            XCTAssertTrue(FileManager.default.fileExists(atPath: frame.label.path), frame.label.path)
            XCTAssertEqual(frame.label.lastPathComponent, frame.image.lastPathComponent)
        }
    }

    func testSharedSplitHas62DuskAnd171DayFrames() throws {
        let camvid = try openShared()
        XCTAssertEqual(camvid.frames.filter { $0.sequence == .dusk }.count, 62)
        XCTAssertEqual(camvid.frames.filter { $0.sequence == .day }.count, 171)
        let day = camvid.only(.day)
        XCTAssertEqual(day.count, 171)
        XCTAssertEqual(day.name, "camvid-day")
        XCTAssertTrue(day.frames.allSatisfy { $0.name.hasPrefix("Seq05VD_") })
        let dusk = try CamVid(root: Self.sharedRoot, sequence: .dusk)
        XCTAssertEqual(dusk.count, 62)
        XCTAssertEqual(dusk.name, "camvid-dusk")
        XCTAssertEqual(dusk.frames.map(\.name), camvid.frames.prefix(62).map(\.name))
    }

    func testSharedFramesDecodeTo480x360WithLabelsInProtocol() throws {
        let camvid = try openShared()
        for index in [0, 61, 62, 232] {
            let sample = try camvid.sample(at: index)
            XCTAssertEqual(sample.name, camvid.frames[index].name)
            XCTAssertEqual(sample.image.shape, [3, 360, 480])
            XCTAssertEqual(sample.image.dtype, .uint8)
            let label = try XCTUnwrap(sample.label)
            XCTAssertEqual(label.shape, [360, 480])
            XCTAssertEqual(label.dtype, .int64)
            let values = Set(try label.toArray(Int.self))
            XCTAssertTrue(values.isSubset(of: Set(0...10).union([ignoreLabel])), "frame \(index): \(values.sorted())")
            XCTAssertFalse(values.contains(11), "void must become ignoreLabel")
        }
        // Frame 0 has void pixels in its annotation: they are ignoreLabel now.
        let raw = try ImageIO.readLabel(camvid.frames[0].label)
        let voids = try raw.eq(11).to(.int64).sum().itemInt()
        XCTAssertGreaterThan(voids, 0)
        let ignored = try XCTUnwrap(camvid.sample(at: 0).label).eq(Double(ignoreLabel)).to(.int64).sum().itemInt()
        XCTAssertEqual(ignored, voids)
    }

    func testSequenceOfFrameNames() {
        XCTAssertEqual(CamVid.sequence(of: "0001TP_008550"), .dusk)
        XCTAssertEqual(CamVid.sequence(of: "Seq05VD_f00000"), .day)
        XCTAssertNil(CamVid.sequence(of: "0016E5_07959"))
        XCTAssertNil(CamVid.sequence(of: "Seq05VD"))  // no frame number: not a frame name
    }

    // MARK: a fake tree

    /// A CamVid-shaped tree with `names` (label values 0...11 in a pattern) and the given
    /// test.txt prefix before "test/..." paths.
    func makeTree(_ names: [String], prefix: String = "/SegNet/CamVid/") throws -> URL {
        let root = try DataTestSupport.temporaryFolder(self)
        var lines = [String]()
        for (i, name) in names.enumerated() {
            let image = try DataTestSupport.rgb(6, 8) { c, y, x in 30 * c + 5 * y + x + i }
            let label = try DataTestSupport.gray(6, 8) { y, x in (x + y + i) % 12 }
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent("test"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent("testannot"), withIntermediateDirectories: true)
            try ImageIO.writePNG(image, to: root.appendingPathComponent("test/\(name).png"))
            try ImageIO.writePNG(label, to: root.appendingPathComponent("testannot/\(name).png"))
            lines.append("\(prefix)test/\(name).png \(prefix)testannot/\(name).png")
        }
        try DataTestSupport.write(Data((lines.joined(separator: "\n") + "\n").utf8), "test.txt", in: root)
        return root
    }

    func testFakeTreeWithSegNetAbsolutePaths() throws {
        let root = try makeTree(["0001TP_000030", "0001TP_000060", "Seq05VD_f00000"])
        let camvid = try CamVid(root: root)
        XCTAssertEqual(camvid.frames.map(\.name), ["0001TP_000030", "0001TP_000060", "Seq05VD_f00000"])
        XCTAssertEqual(camvid.frames[2].image, root.appendingPathComponent("test/Seq05VD_f00000.png"))
        XCTAssertEqual(camvid.frames.map(\.sequence), [.dusk, .dusk, .day])
        XCTAssertEqual(camvid.only(.day).frames.map(\.name), ["Seq05VD_f00000"])

        let sample = try camvid.sample(at: 1)
        XCTAssertEqual(sample.image.shape, [3, 6, 8])
        let expected = (0..<48).map { p -> Int in
            let v = (p % 8 + p / 8 + 1) % 12
            return v == 11 ? ignoreLabel : v
        }
        XCTAssertEqual(try XCTUnwrap(sample.label).toArray(Int.self), expected)
    }

    func testRelativePathsResolveToo() throws {
        let root = try makeTree(["Seq05VD_f00030"], prefix: "")
        XCTAssertEqual(try CamVid(root: root).sample(at: 0).name, "Seq05VD_f00030")
    }

    func testMissingTestListNamesTheLayout() throws {
        let root = try DataTestSupport.temporaryFolder(self)
        XCTAssertThrowsError(try CamVid(root: root)) { error in
            let message = "\(error)"
            XCTAssertTrue(error is DatasetError)
            XCTAssertTrue(message.contains(root.path), message)
            XCTAssertTrue(message.contains("has no test.txt"), message)
            XCTAssertTrue(message.contains("test/, testannot/, test.txt"), message)
        }
        let missing = root.appendingPathComponent("elsewhere")
        XCTAssertThrowsError(try CamVid(root: missing)) { error in
            XCTAssertTrue("\(error)".contains("no such folder"), "\(error)")
        }
    }

    func testMalformedLineNamesItsNumber() throws {
        let root = try makeTree(["0001TP_000030"])
        try DataTestSupport.write(
            Data("test/0001TP_000030.png testannot/0001TP_000030.png\n\nonly-one-path\n".utf8), "test.txt", in: root)
        XCTAssertThrowsError(try CamVid(root: root)) { error in
            XCTAssertTrue("\(error)".contains("line 3"), "\(error)")
            XCTAssertTrue("\(error)".contains("test.txt"), "\(error)")
        }
    }

    func testLabelOutsideTheProtocolAndSizeMismatchAreErrors() throws {
        let root = try makeTree(["0001TP_000030", "0001TP_000060"])
        let camvid = try CamVid(root: root)
        // A value of the 32-class annotations.
        let label0 = root.appendingPathComponent("testannot/0001TP_000030.png")
        try ImageIO.writePNG(DataTestSupport.gray(6, 8) { y, _ in y == 3 ? 31 : 2 }, to: label0)
        XCTAssertThrowsError(try camvid.sample(at: 0)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(label0.path), message)
            XCTAssertTrue(message.contains("31"), message)
        }
        // A label of another size than its image.
        let label1 = root.appendingPathComponent("testannot/0001TP_000060.png")
        try ImageIO.writePNG(DataTestSupport.gray(3, 4) { _, _ in 1 }, to: label1)
        XCTAssertThrowsError(try camvid.sample(at: 1)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(label1.path), message)
            XCTAssertTrue(message.contains(root.appendingPathComponent("test/0001TP_000060.png").path), message)
            XCTAssertTrue(message.contains("4x3"), message)
            XCTAssertTrue(message.contains("8x6"), message)
        }
        XCTAssertThrowsError(try camvid.sample(at: 2))
    }
}
