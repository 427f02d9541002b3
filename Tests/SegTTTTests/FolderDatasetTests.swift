import Foundation
import TestSupport
import Torch
import XCTest

@testable import SegTTT

final class FolderDatasetTests: ConfiguredTestCase {
    /// A dataset folder with classes.json `json` and, per frame, an image (of `ext`) and a
    /// 5 x 4 label of raw values from `raw(frame, y, x)`.
    func makeFolder(
        json: String?, frames: [(name: String, ext: String)],
        raw: @escaping (Int, Int, Int) -> Int = { i, y, x in (i + y + x) % 2 }
    ) throws -> URL {
        let root = try DataTestSupport.temporaryFolder(self)
        if let json { try DataTestSupport.write(Data(json.utf8), "classes.json", in: root) }
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("labels"), withIntermediateDirectories: true)
        for (i, frame) in frames.enumerated() {
            let image = try DataTestSupport.rgb(4, 5) { c, y, x in 50 * c + 10 * y + x }
            let imageURL = root.appendingPathComponent("images/\(frame.name).\(frame.ext)")
            if frame.ext == "png" {
                try ImageIO.writePNG(image, to: imageURL)
            } else {
                try ImageIO.encodeJPEG(image, quality: 95).write(to: imageURL)
            }
            try ImageIO.writePNG(
                DataTestSupport.gray(4, 5) { y, x in raw(i, y, x) },
                to: root.appendingPathComponent("labels/\(frame.name).png"))
        }
        return root
    }

    let twoClasses = #"{"classes": ["road", "car"]}"#

    func assertDatasetError(
        mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any
    ) {
        do {
            _ = try body()
            XCTFail("expected a DatasetError", file: file, line: line)
        } catch let error as DatasetError {
            for text in mentions {
                XCTAssertTrue(
                    error.message.contains(text), "'\(error.message)' does not mention '\(text)'", file: file,
                    line: line)
            }
        } catch {
            XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
        }
    }

    func testFramesPairedByStemInNameOrder() throws {
        let root = try makeFolder(json: twoClasses, frames: [("b", "jpg"), ("a", "png"), ("c", "jpeg"), ("Z", "PNG")])
        let dataset = try FolderDataset(root: root)
        XCTAssertEqual(dataset.frames.map(\.name), ["Z", "a", "b", "c"])  // byte order
        XCTAssertEqual(dataset.classNames, ["road", "car"])
        XCTAssertEqual(dataset.name, root.lastPathComponent)
        XCTAssertEqual(dataset.frameName(at: 2), "b")
        let sample = try dataset.sample(at: 1)
        XCTAssertEqual(sample.name, "a")
        XCTAssertEqual(sample.image.shape, [3, 4, 5])
        let label = try XCTUnwrap(sample.label)
        XCTAssertEqual(label.shape, [4, 5])
        XCTAssertEqual(try label.toArray(Int.self), (0..<20).map { (1 + $0 / 5 + $0 % 5) % 2 })
        // JPEG images decode too.
        XCTAssertEqual(try dataset.sample(at: 3).image.shape, [3, 4, 5])
    }

    func testIgnoreValueBecomesIgnoreLabel() throws {
        let root = try makeFolder(
            json: #"{"classes": ["a", "b", "c"], "ignore": 7}"#, frames: [("x", "png")],
            raw: { _, y, _ in [0, 1, 2, 7][y] })
        let label = try XCTUnwrap(try FolderDataset(root: root).sample(at: 0).label)
        XCTAssertEqual(try label.toArray(Int.self), [0, 1, 2, ignoreLabel].flatMap { Array(repeating: $0, count: 5) })
    }

    func testMappingFromRawIds() throws {
        // Cityscapes-like: 7 -> road, 26 -> car, 0 ignore; unlisted raw ids (5) are ignored.
        let json = #"{"classes": ["road", "car"], "ignore": 0, "mapping": {"7": 0, "26": 1, "3": 255}}"#
        let root = try makeFolder(json: json, frames: [("x", "png")], raw: { _, y, _ in [7, 26, 0, 5][y] })
        let dataset = try FolderDataset(root: root)
        XCTAssertEqual(dataset.classesFile.mapping?["7"], 0)
        let label = try XCTUnwrap(try dataset.sample(at: 0).label)
        XCTAssertEqual(
            try label.toArray(Int.self), [0, 1, ignoreLabel, ignoreLabel].flatMap { Array(repeating: $0, count: 5) })
    }

    func testValueOutsideTheClassesIsAnErrorNamingTheFile() throws {
        let root = try makeFolder(json: twoClasses, frames: [("x", "png")], raw: { _, y, _ in y == 2 ? 9 : 1 })
        let dataset = try FolderDataset(root: root)
        assertDatasetError(mentions: [root.appendingPathComponent("labels/x.png").path, "label value 9", "mapping"]) {
            try dataset.sample(at: 0)
        }
    }

    func testClassesJSONErrors() throws {
        let frames = [(name: "x", ext: "png")]
        let missing = try makeFolder(json: nil, frames: frames)
        assertDatasetError(mentions: [missing.appendingPathComponent("classes.json").path, "missing", "\"classes\""]) {
            try FolderDataset(root: missing)
        }
        let cases: [(String, [String])] = [
            (#"{"classes": ["a", "b"]"#, ["not valid classes JSON"]),
            (#"{"names": ["a"]}"#, ["no \"classes\" key"]),
            (#"{"classes": "road"}"#, ["classes is not"]),
            (#"{"classes": []}"#, ["empty"]),
            (#"{"classes": ["a", "b"], "ignore": 1}"#, ["\"ignore\" 1 is also a class index"]),
            (#"{"classes": ["a"], "mapping": {"x7": 0}}"#, ["mapping key \"x7\""]),
            (#"{"classes": ["a"], "mapping": {"7": 4}}"#, ["mapping \"7\": 4"]),
            (#"{"classes": ["a"], "ignore": 7, "mapping": {"7": 0}}"#, ["ignore value 7"]),
        ]
        for (json, mentions) in cases {
            let root = try makeFolder(json: json, frames: frames)
            assertDatasetError(mentions: [root.appendingPathComponent("classes.json").path] + mentions) {
                try FolderDataset(root: root)
            }
        }
    }

    func testImageWithoutLabelAndLabelWithoutImage() throws {
        let root = try makeFolder(json: twoClasses, frames: [("a", "png"), ("b", "png")])
        try FileManager.default.removeItem(at: root.appendingPathComponent("labels/b.png"))
        try ImageIO.writePNG(DataTestSupport.gray(4, 5) { _, _ in 0 }, to: root.appendingPathComponent("labels/b.jpg"))
        assertDatasetError(
            mentions: [
                root.appendingPathComponent("images/b.png").path, "labels/b.png", "labels must be .png",
                "requireLabels",
            ]
        ) {
            try FolderDataset(root: root)
        }
        // Unlabelled frames are allowed when asked for.
        let loose = try FolderDataset(root: root, requireLabels: false)
        XCTAssertNil(try loose.sample(at: 1).label)
        XCTAssertNotNil(try loose.sample(at: 0).label)

        let orphan = try makeFolder(json: twoClasses, frames: [("a", "png")])
        try ImageIO.writePNG(
            DataTestSupport.gray(4, 5) { _, _ in 0 }, to: orphan.appendingPathComponent("labels/z.png"))
        assertDatasetError(mentions: [orphan.appendingPathComponent("labels/z.png").path, "has no image"]) {
            try FolderDataset(root: orphan)
        }
    }

    func testLayoutErrors() throws {
        let root = try makeFolder(json: twoClasses, frames: [("a", "png")])
        try ImageIO.writePNG(DataTestSupport.gray(4, 5) { _, _ in 0 }, to: root.appendingPathComponent("images/a.jpg"))
        assertDatasetError(mentions: [root.appendingPathComponent("images").path, "a.jpg", "a.png"]) {
            try FolderDataset(root: root)
        }
        try FileManager.default.removeItem(at: root.appendingPathComponent("labels"))
        try FileManager.default.removeItem(at: root.appendingPathComponent("images/a.jpg"))
        assertDatasetError(mentions: [root.appendingPathComponent("labels").path, "missing"]) {
            try FolderDataset(root: root)
        }
        XCTAssertNil(try FolderDataset(root: root, requireLabels: false).sample(at: 0).label)
        assertDatasetError(mentions: ["nowhere", "no such folder"]) {
            try FolderDataset(root: root.appendingPathComponent("nowhere"))
        }
        assertDatasetError(mentions: ["frame index 5"]) {
            try FolderDataset(root: root, requireLabels: false).sample(at: 5)
        }
    }

    func testSizeMismatchNamesBothFiles() throws {
        let root = try makeFolder(json: twoClasses, frames: [("a", "png")])
        let label = root.appendingPathComponent("labels/a.png")
        try ImageIO.writePNG(DataTestSupport.gray(8, 10) { _, _ in 0 }, to: label)
        let dataset = try FolderDataset(root: root)
        assertDatasetError(mentions: [
            label.path, root.appendingPathComponent("images/a.png").path, "10x8", "5x4", "Resize.label",
        ]) {
            try dataset.sample(at: 0)
        }
    }

    func testStreamSkipsBadFramesAndReportsThem() throws {
        let root = try makeFolder(json: twoClasses, frames: [("a", "png"), ("b", "png"), ("c", "png"), ("d", "png")])
        // b: truncated image; c: label of the wrong size.
        let image = root.appendingPathComponent("images/b.png")
        let whole = try Data(contentsOf: image)
        try whole.prefix(whole.count / 2).write(to: image)
        try ImageIO.writePNG(DataTestSupport.gray(2, 2) { _, _ in 0 }, to: root.appendingPathComponent("labels/c.png"))
        let dataset = try FolderDataset(root: root)

        let stream = try FrameStream(dataset, options: .init(prefetch: 2, skipBadFrames: true))
        var names = [String]()
        while let frame = try stream.next() { names.append(frame.sample.name) }
        XCTAssertEqual(names, ["a", "d"])
        XCTAssertEqual(stream.skipped.map(\.index), [1, 2])
        XCTAssertEqual(stream.skipped.map(\.name), ["b", "c"])
        XCTAssertTrue(stream.skipped[0].message.contains(image.path), stream.skipped[0].message)
        XCTAssertTrue(stream.skipped[0].message.contains("truncated"), stream.skipped[0].message)
        XCTAssertTrue(stream.skipped[1].message.contains("labels/c.png"), stream.skipped[1].message)

        // Without skipping, the first bad frame ends the stream with its error.
        let strict = try FrameStream(dataset, options: .init(prefetch: 2))
        XCTAssertEqual(try strict.next()?.sample.name, "a")
        XCTAssertThrowsError(try strict.next()) { error in
            XCTAssertEqual((error as? ImageError)?.kind, .corrupt)
        }
        XCTAssertNil(try strict.next())
    }
}

final class LabelMapTests: ConfiguredTestCase {
    /// The readers' Swift lookup and the libtorch lookup give the same classes and errors,
    /// for 8- and 16-bit labels.
    func testSwiftAndTensorLookupsAgree() throws {
        let file = URL(fileURLWithPath: "/labels/x.png")
        for name in ["gray.png", "gray16.png", "palette.png"] {
            let url = try DataTestSupport.fixture(name)
            let raw = try ImageIO.readLabel(url)
            let pixels = try ImageIO.readLabelPixels(url)
            let values = try raw.toArray(Int.self)
            // Half of the values present become classes 0 and 1, the rest unlisted.
            let present = Array(Set(values)).sorted()
            var mapping = [Int: Int]()
            for (i, value) in present.enumerated() where i % 2 == 0 { mapping[value] = i % 4 == 0 ? 0 : 1 }
            let lenient = LabelMap(classCount: 2, mapping: mapping, unlisted: ignoreLabel)
            let viaTensor = try lenient.apply(raw, file: file, fix: "fix").toArray(Int.self)
            XCTAssertEqual(try lenient.apply(pixels, file: file, fix: "fix").toArray(Int.self), viaTensor, name)
            XCTAssertEqual(viaTensor, values.map { mapping[$0] ?? ignoreLabel }, name)

            let strict = LabelMap(classCount: 2, mapping: mapping, unlisted: nil)
            let largestUnknown = try XCTUnwrap(values.filter { mapping[$0] == nil }.max())
            for result in [
                Result { try strict.apply(raw, file: file, fix: "fix") },
                Result { try strict.apply(pixels, file: file, fix: "fix") },
            ] {
                XCTAssertThrowsError(try result.get()) { error in
                    XCTAssertEqual(
                        error as? DatasetError,
                        DatasetError(
                            path: file.path, problem: "label value \(largestUnknown) is not a class of this dataset",
                            fix: "fix"))
                }
            }
        }
    }
}
