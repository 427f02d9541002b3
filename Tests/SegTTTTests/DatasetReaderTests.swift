import Foundation
import TestSupport
import Torch
import XCTest

@testable import SegTTT

/// The benchmark readers on fake directory trees built here (small PNGs written with
/// ImageIO) and SYNTHIA label fixtures made by Fixtures/SYNTHIA/make_fixtures.py.
final class DatasetReaderTests: ConfiguredTestCase {
    // MARK: helpers

    /// A new empty folder, removed when the test ends.
    private func makeRoot() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-readers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Writes an RGB PNG [3, h, w] whose pixels depend on `tag` at `root/path`.
    @discardableResult
    private func writeImage(_ root: URL, _ path: String, height: Int = 3, width: Int = 4, tag: Int = 0) throws -> URL {
        var values = [UInt8]()
        for c in 0..<3 {
            for y in 0..<height { for x in 0..<width { values.append(UInt8((tag * 31 + c * 50 + y * 7 + x) % 256)) } }
        }
        return try write(Tensor(values, shape: [3, height, width]), root, path)
    }

    /// Writes a gray 8-bit label PNG of `rows` (raw ids) at `root/path`.
    @discardableResult
    private func writeLabel(_ root: URL, _ path: String, _ rows: [[Int]]) throws -> URL {
        let values = rows.flatMap { $0.map { UInt8($0) } }
        return try write(Tensor(values, shape: [rows.count, rows[0].count]), root, path)
    }

    private func write(_ image: Tensor, _ root: URL, _ path: String) throws -> URL {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try ImageIO.writePNG(image, to: url)
        return url
    }

    private func copyFixture(_ name: String, to root: URL, _ path: String) throws {
        let source = try fixture(name)
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source, to: url)
    }

    private func fixture(_ name: String) throws -> URL {
        let folder = try XCTUnwrap(Bundle.module.resourceURL, "the test bundle has no resources")
        let url = folder.appendingPathComponent("Fixtures/SYNTHIA").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip(
                "missing fixture \(name); run /usr/bin/python3 Tests/SegTTTTests/Fixtures/SYNTHIA/make_fixtures.py")
        }
        return url
    }

    private func labelValues(_ sample: Sample) throws -> [Int64] {
        try XCTUnwrap(sample.label, "the sample has no label").toArray(Int64.self)
    }

    /// Asserts that `body` throws a `DatasetError` whose text contains every string of `mentions`.
    private func assertDatasetError<T>(
        mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
    ) {
        do {
            _ = try body()
            XCTFail("expected a DatasetError", file: file, line: line)
        } catch let error as DatasetError {
            for text in mentions {
                XCTAssertTrue(
                    error.message.contains(text), "'\(text)' not in: \(error.message)", file: file, line: line)
            }
        } catch {
            XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
        }
    }

    /// Raw Cityscapes labelIds of the 4 x 3 label fixtures, and their 19-class trainIds.
    private let labelIds = [[7, 8, 26, 0], [33, 22, 255, 12], [24, 11, 19, 20]]
    private let trainIds: [Int64] = [0, 1, 13, 255, 18, 9, 255, 3, 11, 2, 6, 7]

    // MARK: class protocols

    func testClassProtocolLists() {
        XCTAssertEqual(ClassNames.cityscapes.count, 19)
        XCTAssertEqual(LabelProtocol.cityscapes19.trainIds, Array(0..<19))
        XCTAssertEqual(ClassProtocols.synthia16Names.count, 16)
        XCTAssertEqual(ClassProtocols.synthia16Names[3], "wall")
        XCTAssertEqual(ClassProtocols.synthia16Names[9], "sky")
        XCTAssertEqual(
            ClassProtocols.synthia13Names,
            [
                "road", "sidewalk", "building", "traffic light", "traffic sign", "vegetation", "sky", "person", "rider",
                "car", "bus", "motorcycle", "bicycle",
            ])
        XCTAssertEqual(LabelProtocol.synthia16.index(ofTrainId: 9), nil)  // terrain
        XCTAssertEqual(LabelProtocol.synthia16.index(ofTrainId: 18), 15)
        XCTAssertEqual(LabelProtocol.synthia13.index(ofTrainId: 3), nil)  // wall
        // Every 19-class table entry is one-to-one.
        XCTAssertEqual(Set(ClassProtocols.cityscapesLabelIdToTrainId.values), Set(0..<19))
        XCTAssertEqual(Set(ClassProtocols.synthiaIdToTrainId.values), Set(0..<19))
    }

    func testLabelMapLooksUpWholeLabelsIncluding16BitValues() throws {
        let raw = try Tensor([Int64(7), 26, 65535, 300, 0, 33], shape: [2, 3])
        let mapped = try LabelProtocol.cityscapes19.cityscapesLabelIdMap.apply(
            raw, file: URL(fileURLWithPath: "x"), fix: "")
        XCTAssertEqual(try mapped.toArray(Int64.self), [0, 13, 255, 255, 255, 18])
        XCTAssertEqual(mapped.shape, [2, 3])
    }

    // MARK: Cityscapes

    private func makeCityscapes(split: String = "val") throws -> URL {
        let root = try makeRoot()
        let stems = [
            "munster_000000_000019", "frankfurt_000001_000010", "frankfurt_000000_000294", "lindau_000000_000019",
        ]
        for (i, stem) in stems.enumerated() {
            let city = String(stem.prefix { $0 != "_" })
            try writeImage(root, "leftImg8bit/\(split)/\(city)/\(stem)_leftImg8bit.png", tag: i)
            try writeLabel(root, "gtFine/\(split)/\(city)/\(stem)_gtFine_labelIds.png", labelIds)
            // Other gtFine files of the real archive are not labels to read.
            try writeLabel(root, "gtFine/\(split)/\(city)/\(stem)_gtFine_instanceIds.png", labelIds)
        }
        // Files that are not frames are skipped.
        try writeImage(root, "leftImg8bit/\(split)/frankfurt/notes.png")
        try Data("x".utf8).write(to: root.appendingPathComponent("leftImg8bit/\(split)/README"))
        return root
    }

    func testCityscapesOrderCountAndMapping() throws {
        let root = try makeCityscapes()
        let dataset = try Cityscapes(root: root)
        XCTAssertEqual(dataset.count, 4)
        XCTAssertEqual(dataset.name, "cityscapes-val")
        XCTAssertEqual(dataset.classNames.count, 19)
        XCTAssertEqual(
            dataset.frames.map(\.name),
            ["frankfurt_000000_000294", "frankfurt_000001_000010", "lindau_000000_000019", "munster_000000_000019"])
        let sample = try dataset.sample(at: 2)
        XCTAssertEqual(sample.name, "lindau_000000_000019")
        XCTAssertEqual(sample.image.shape, [3, 3, 4])
        XCTAssertEqual(sample.image.dtype, .uint8)
        XCTAssertEqual(sample.label?.dtype, .int64)
        XCTAssertEqual(try labelValues(sample), trainIds)
        XCTAssertEqual(dataset.frameName(at: 0), "frankfurt_000000_000294")
        XCTAssertEqual(dataset.frameName(at: 9), "frame 9")
        assertDatasetError(mentions: ["frame index 4", root.path]) { try dataset.sample(at: 4) }
    }

    func testCityscapesInSYNTHIAProtocols() throws {
        let root = try makeCityscapes()
        // labelIds 7 8 26 0 | 33 22 255 12 | 24 11 19 20
        let sixteen = try Cityscapes(root: root, labelProtocol: .synthia16)
        XCTAssertEqual(sixteen.name, "cityscapes-val-16")
        XCTAssertEqual(try labelValues(sixteen.sample(at: 0)), [0, 1, 12, 255, 15, 255, 255, 3, 10, 2, 6, 7])
        let thirteen = try Cityscapes(root: root, labelProtocol: .synthia13)
        XCTAssertEqual(thirteen.classNames.count, 13)
        XCTAssertEqual(try labelValues(thirteen.sample(at: 0)), [0, 1, 9, 255, 12, 255, 255, 255, 7, 2, 3, 4])
    }

    func testCityscapesLayoutErrors() throws {
        let root = try makeRoot()
        assertDatasetError(mentions: ["leftImg8bit/val", "*_leftImg8bit.png", "gtFine/<split>/<city>"]) {
            try Cityscapes(root: root)
        }
        assertDatasetError(mentions: ["no such folder"]) { try Cityscapes(root: root.appendingPathComponent("absent")) }

        let full = try makeCityscapes()
        assertDatasetError(mentions: ["leftImg8bit/train"]) { try Cityscapes(root: full, split: .train) }
        // An image whose label is missing names both files.
        let image = try writeImage(full, "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png")
        assertDatasetError(mentions: [image.path, "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png"]) {
            try Cityscapes(root: full)
        }
        let unlabelled = try Cityscapes(root: full, requireLabels: false)
        XCTAssertEqual(unlabelled.count, 5)
        XCTAssertNil(try unlabelled.sample(at: 0).label)
        XCTAssertNotNil(try unlabelled.sample(at: 1).label)
    }

    /// The real validation split when ../shared/data/cityscapes is there: 500 frames.
    func testRealCityscapesValidationSplit() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("../shared/data/cityscapes").standardizedFileURL
        guard FileManager.default.fileExists(atPath: root.appendingPathComponent("leftImg8bit/val").path) else {
            throw XCTSkip("Cityscapes is not at \(root.path); this test reads it when it is there")
        }
        let dataset = try Cityscapes(root: root)
        XCTAssertEqual(dataset.count, 500)
        XCTAssertEqual(dataset.frames.first?.name, "frankfurt_000000_000294")
        let sample = try dataset.sample(at: 0)
        XCTAssertEqual(sample.image.shape, [3, 1024, 2048])
        XCTAssertLessThanOrEqual(try XCTUnwrap(sample.label).amax().itemInt(), 255)
    }

    // MARK: GTA5

    func testGTA5OrderMappingAndMismatchedLabelSize() throws {
        let root = try makeRoot()
        for (i, name) in ["00010", "00002", "00001"].enumerated() {
            try writeImage(root, "images/\(name).png", tag: i)
            try writeLabel(root, "labels/\(name).png", labelIds)
        }
        // 00003: a label half the image's size, resized by nearest neighbour.
        try writeImage(root, "images/00003.png", height: 6, width: 8)
        try writeLabel(root, "labels/00003.png", labelIds)
        let dataset = try GTA5(root: root)
        XCTAssertEqual(dataset.name, "gta5")
        XCTAssertEqual(dataset.frames.map(\.name), ["00001", "00002", "00003", "00010"])
        XCTAssertEqual(try labelValues(dataset.sample(at: 0)), trainIds)
        let resized = try dataset.sample(at: 2)
        XCTAssertEqual(resized.label?.shape, [6, 8])
        let values = try labelValues(resized)
        XCTAssertEqual(Array(values[0..<8]), [0, 0, 1, 1, 13, 13, 255, 255])
        XCTAssertEqual(values[8 * 5 + 7], 7)  // bottom right: labelId 20

        assertDatasetError(mentions: ["labels", "images/*.png and labels/*.png"]) {
            try FileManager.default.removeItem(at: root.appendingPathComponent("labels/00002.png"))
            return try GTA5(root: root)
        }
        assertDatasetError(mentions: ["images", "GTA5 layout"]) { try GTA5(root: try makeRoot()) }
    }

    // MARK: SYNTHIA

    /// The class ids of the fixtures (see make_fixtures.py).
    private func synthiaIds(sixteenBit: Bool) -> [Int64] {
        var ids = [Int64]()
        for y in 0..<12 {
            for x in 0..<20 {
                var id = (x + 3 * y) % 23
                if sixteenBit {
                    if y == 0 && x == 0 { id = 300 }
                    if y == 0 && x == 1 { id = 65535 }
                    if y == 1 && x == 0 { id = 259 }
                }
                ids.append(Int64(id))
            }
        }
        return ids
    }

    func testSYNTHIAFirstChannelOfColourLabelsAtFullDepth() throws {
        let ids16 = try SYNTHIA.readClassIds(fixture("label16.png"))
        XCTAssertEqual(ids16.shape, [12, 20])
        XCTAssertEqual(ids16.dtype, .int64)
        XCTAssertEqual(try ids16.toArray(Int64.self), synthiaIds(sixteenBit: true))
        let ids8 = try SYNTHIA.readClassIds(fixture("label8.png"))
        XCTAssertEqual(try ids8.toArray(Int64.self), synthiaIds(sixteenBit: false))
        // The 8-bit fixture's red channel as libpng (ImageIO) decodes it: the same unfiltered bytes.
        let red = try ImageIO.readImage(fixture("label8.png")).narrow(dim: 0, start: 0, length: 1).squeeze(dim: 0)
        XCTAssertEqual(try red.to(.int64).toArray(Int64.self), try ids8.toArray(Int64.self))
        // One-channel labels go through ImageIO.
        let root = try makeRoot()
        let gray = try writeLabel(root, "gray.png", labelIds)
        XCTAssertEqual(try SYNTHIA.readClassIds(gray).toArray(Int64.self), labelIds.flatMap { $0.map(Int64.init) })
    }

    func testSYNTHIAProtocolRenumbering() throws {
        let root = try makeRoot()
        try writeImage(root, "RGB/0000001.png", height: 12, width: 20, tag: 1)
        try writeImage(root, "RGB/0000000.png", height: 12, width: 20, tag: 0)
        try copyFixture("label16.png", to: root, "GT/LABELS/0000000.png")
        try copyFixture("label8.png", to: root, "GT/LABELS/0000001.png")
        // SYNTHIA id -> index, written out from the class table independently of the library.
        let to16: [Int64: Int64] = [
            3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 9, 10: 10, 17: 11, 8: 12, 19: 13, 12: 14, 11: 15,
        ]
        let to13: [Int64: Int64] = [
            3: 0, 4: 1, 2: 2, 15: 3, 9: 4, 6: 5, 1: 6, 10: 7, 17: 8, 8: 9, 19: 10, 12: 11, 11: 12,
        ]

        let sixteen = try SYNTHIA(root: root)
        XCTAssertEqual(sixteen.name, "synthia-16")
        XCTAssertEqual(sixteen.classNames.count, 16)
        XCTAssertEqual(sixteen.frames.map(\.name), ["0000000", "0000001"])
        let labels16 = try labelValues(sixteen.sample(at: 0))
        XCTAssertEqual(labels16, synthiaIds(sixteenBit: true).map { to16[$0] ?? 255 })
        XCTAssertEqual(Array(labels16[0..<2]), [255, 255])  // ids 300 and 65535
        XCTAssertEqual(labels16[20], 255)  // id 259, whose low byte (3, road) must not leak through
        XCTAssertEqual(labels16[3], 0)  // id 3: road
        XCTAssertEqual(labels16[38], 3)  // (1, 18): id 21, wall
        XCTAssertEqual(labels16[16], 255)  // id 16: terrain, not in the protocol
        XCTAssertEqual(try labelValues(sixteen.sample(at: 1)), synthiaIds(sixteenBit: false).map { to16[$0] ?? 255 })

        let thirteen = try SYNTHIA(root: root, labelProtocol: .synthia13)
        XCTAssertEqual(thirteen.name, "synthia-13")
        let labels13 = try labelValues(thirteen.sample(at: 0))
        XCTAssertEqual(labels13, synthiaIds(sixteenBit: true).map { to13[$0] ?? 255 })
        XCTAssertEqual(labels13[38], 255)  // wall is not one of the 13
        XCTAssertEqual(labels13[3], 0)  // road
    }

    func testSYNTHIALayoutAndDamagedLabelErrors() throws {
        let root = try makeRoot()
        assertDatasetError(mentions: ["GT/LABELS", "RGB/*.png and GT/LABELS/*.png"]) { try SYNTHIA(root: root) }
        try writeImage(root, "RGB/0000000.png", height: 12, width: 20)
        let label = try fixture("label16.png")
        let bytes = try Data(contentsOf: label)
        let target = root.appendingPathComponent("GT/LABELS/0000000.png")
        try FileManager.default.createDirectory(
            at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Cut inside the image data: libpng's error comes back as ImageIO's, naming the file.
        try bytes.prefix(bytes.count - 40).write(to: target)
        let dataset = try SYNTHIA(root: root)
        assertImageError(.corrupt, mentions: [target.path]) { try dataset.sample(at: 0) }
        // A label of another size than its image.
        try FileManager.default.removeItem(at: target)
        try writeLabel(root, "GT/LABELS/0000000.png", labelIds)
        assertDatasetError(mentions: [target.path, "4x3"]) { try dataset.sample(at: 0) }
    }

    // MARK: NTHU cross-city

    func testNTHUCrossCityLayoutOrderAndThirteenClasses() throws {
        let root = try makeRoot()
        // labelIds 28 12 19 33 | 7 26 0 21 | 23 24 25 32
        let rows = [[28, 12, 19, 33], [7, 26, 0, 21], [23, 24, 25, 32]]
        for (i, name) in ["pic_0902", "pic_0010"].enumerated() {
            try writeImage(root, "Rome/Images/Test/\(name).png", tag: i)
            try writeLabel(root, "Rome/Labels/Test/\(name)_eval.png", rows)
            try writeImage(root, "Rome/Labels/Test/\(name)_color.png")  // not a label to read
        }
        let dataset = try NTHUCrossCity(root: root, city: .rome)
        XCTAssertEqual(dataset.name, "nthu-rome")
        XCTAssertEqual(dataset.classNames.count, 13)
        XCTAssertEqual(dataset.frames.map(\.name), ["pic_0010", "pic_0902"])
        XCTAssertEqual(try labelValues(dataset.sample(at: 0)), [10, 255, 3, 12, 0, 9, 255, 5, 6, 7, 8, 11])

        assertDatasetError(mentions: ["Tokyo", "<City>/Images/Test/*.png"]) {
            try NTHUCrossCity(root: root, city: .tokyo)
        }
        // The unlabelled training frames are JPEGs.
        let jpeg = try ImageIO.encodeJPEG(Tensor.zeros([3, 3, 4], dtype: .uint8), quality: 90)
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("Rome/Images/Train"), withIntermediateDirectories: true)
        try jpeg.write(to: root.appendingPathComponent("Rome/Images/Train/pic_0001.jpg"))
        let train = try NTHUCrossCity(root: root, city: .rome, split: .train)
        XCTAssertEqual(train.name, "nthu-rome-train")
        XCTAssertEqual(train.count, 1)
        XCTAssertNil(try train.sample(at: 0).label)
        // A test image without its _eval label.
        try writeImage(root, "Rome/Images/Test/pic_0500.png")
        assertDatasetError(mentions: ["pic_0500.png", "Labels/Test/pic_0500_eval.png"]) {
            try NTHUCrossCity(root: root, city: .rome)
        }
    }

    // MARK: ACDC

    func testACDCConditionOrderAndMapping() throws {
        let root = try makeRoot()
        let rows = [[27, 31, 28, 0], [7, 8, 11, 12], [13, 17, 19, 20]]
        let files = [
            ("fog", "GOPR0478", "GOPR0478_frame_000005"), ("fog", "GOPR0475", "GOPR0475_frame_000041"),
            ("night", "GOPR0351", "GOPR0351_frame_000159"), ("fog", "GOPR0475", "GOPR0475_frame_000002"),
        ]
        for (i, (condition, sequence, stem)) in files.enumerated() {
            try writeImage(root, "rgb_anon/\(condition)/val/\(sequence)/\(stem)_rgb_anon.png", tag: i)
            try writeLabel(root, "gt/\(condition)/val/\(sequence)/\(stem)_gt_labelIds.png", rows)
        }
        let both = try ACDC(root: root, conditions: [.night, .fog])
        XCTAssertEqual(both.name, "acdc-night+fog-val")
        XCTAssertEqual(
            both.frames.map(\.name),
            ["GOPR0351_frame_000159", "GOPR0475_frame_000002", "GOPR0475_frame_000041", "GOPR0478_frame_000005"])
        XCTAssertEqual(both.frameConditions, [.night, .fog, .fog, .fog])
        XCTAssertEqual(try labelValues(both.sample(at: 1)), [14, 16, 15, 255, 0, 1, 2, 3, 4, 5, 6, 7])

        let fog = try ACDC(root: root, conditions: [.fog])
        XCTAssertEqual(fog.name, "acdc-fog-val")
        XCTAssertEqual(fog.count, 3)
        // The default stream wants all four conditions.
        assertDatasetError(mentions: ["gt/rain/val", "rgb_anon/<condition>/<split>/<sequence>/*_rgb_anon.png"]) {
            try ACDC(root: root)
        }
        assertDatasetError(mentions: ["rgb_anon/fog/test"]) {
            try ACDC(root: root, conditions: [.fog], split: .test, requireLabels: false)
        }
    }
}
