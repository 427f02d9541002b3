import Foundation
import TestSupport
import Torch
import XCTest

@testable import SegTTT

/// Helpers shared by the data tests: fixture files, temporary folders, tensors from values.
enum DataTestSupport {
    /// A fixture of `Fixtures/ImageIO` (written by its make_fixtures.py).
    static func fixture(_ name: String) throws -> URL {
        let folder = try XCTUnwrap(Bundle.module.resourceURL, "the test bundle has no resources")
        let url = folder.appendingPathComponent("Fixtures/ImageIO").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip(
                "missing fixture \(name); run /usr/bin/python3 Tests/SegTTTTests/Fixtures/ImageIO/make_fixtures.py")
        }
        return url
    }

    /// A new empty folder, removed when `testCase` ends.
    static func temporaryFolder(_ testCase: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A uint8 image [3, h, w] with value(c, y, x) from `value`.
    static func rgb(_ h: Int, _ w: Int, _ value: (Int, Int, Int) -> Int) throws -> Tensor {
        var values = [UInt8]()
        for c in 0..<3 { for y in 0..<h { for x in 0..<w { values.append(UInt8(value(c, y, x) & 255)) } } }
        return try Tensor(values, shape: [3, h, w])
    }

    /// A uint8 gray image or label [h, w] with value(y, x) from `value`.
    static func gray(_ h: Int, _ w: Int, _ value: (Int, Int) -> Int) throws -> Tensor {
        var values = [UInt8]()
        for y in 0..<h { for x in 0..<w { values.append(UInt8(value(y, x) & 255)) } }
        return try Tensor(values, shape: [h, w])
    }

    /// Writes `data` to `name` in `folder`.
    @discardableResult
    static func write(_ data: Data, _ name: String, in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url
    }
}

/// Asserts that `body` throws an `ImageError` of `kind` whose message contains every string of `mentions`.
func assertImageError<T>(
    _ kind: ImageError.Kind, mentions: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("expected an ImageError (\(kind))", file: file, line: line)
    } catch let error as ImageError {
        XCTAssertEqual(error.kind, kind, error.message, file: file, line: line)
        for text in mentions {
            XCTAssertTrue(
                error.message.contains(text), "'\(error.message)' does not mention '\(text)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected an ImageError, got \(error)", file: file, line: line)
    }
}

final class ImageIOTests: ConfiguredTestCase {
    // The fixtures' formulas (make_fixtures.py), for W x H = 7 x 5.
    let w = 7
    let h = 5
    func rgbValue(_ c: Int, _ y: Int, _ x: Int) -> Int { (37 * x + 11 * y + 85 * c) % 256 }
    func grayValue(_ y: Int, _ x: Int) -> Int { (37 * x + 11 * y) % 256 }
    func gray16Value(_ y: Int, _ x: Int) -> Int { (4099 * x + 9157 * y + 12345) % 65536 }
    let palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30], [200, 100, 50]]
    func paletteIndex(_ y: Int, _ x: Int) -> Int { (x + 2 * y) % 5 }

    func expectedRGB() throws -> [Int] {
        var values = [Int]()
        for c in 0..<3 { for y in 0..<h { for x in 0..<w { values.append(rgbValue(c, y, x)) } } }
        return values
    }

    func assertImage(_ name: String, equals expected: [Int], file: StaticString = #filePath, line: UInt = #line) throws
    {
        let image = try ImageIO.readImage(DataTestSupport.fixture(name))
        XCTAssertEqual(image.shape, [3, h, w], name, file: file, line: line)
        XCTAssertEqual(image.dtype, .uint8, name, file: file, line: line)
        XCTAssertEqual(try image.toArray(UInt8.self).map(Int.init), expected, name, file: file, line: line)
    }

    // MARK: PNG decoding of the PIL-written fixtures

    func testRGBFamilyDecodesToThePattern() throws {
        let expected = try expectedRGB()
        // 8-bit RGB; RGBA with alpha dropped; 16-bit RGB scaled to 8 bits; Adam7 interlaced.
        for name in ["rgb.png", "rgba.png", "rgb16.png", "interlaced.png"] {
            try assertImage(name, equals: expected)
        }
    }

    func testGrayPNGAsImageAndAsLabel() throws {
        var gray = [Int]()
        for y in 0..<h { for x in 0..<w { gray.append(grayValue(y, x)) } }
        for name in ["gray.png", "gray_alpha.png"] {
            try assertImage(name, equals: gray + gray + gray)
            let label = try ImageIO.readLabel(DataTestSupport.fixture(name))
            XCTAssertEqual(label.shape, [h, w])
            XCTAssertEqual(label.dtype, .int64)
            XCTAssertEqual(try label.toArray(Int.self), gray, name)
        }
    }

    func testSixteenBitGrayLabelKeepsItsValues() throws {
        let url = try DataTestSupport.fixture("gray16.png")
        var values = [Int]()
        for y in 0..<h { for x in 0..<w { values.append(gray16Value(y, x)) } }
        XCTAssertTrue(values.contains { $0 > 32767 }, "the fixture should reach above int16")
        let label = try ImageIO.readLabel(url)
        XCTAssertEqual(label.shape, [h, w])
        XCTAssertEqual(try label.toArray(Int.self), values)
        // As an image: libpng's accurate 16 -> 8 scaling, (v * 255 + 32895) >> 16, replicated.
        let scaled = values.map { ($0 * 255 + 32895) >> 16 }
        try assertImage("gray16.png", equals: scaled + scaled + scaled)
    }

    func testOneBitGrayLabelIsZeroOrOne() throws {
        var bits = [Int]()
        for y in 0..<h { for x in 0..<w { bits.append((x + y) % 2) } }
        XCTAssertEqual(try ImageIO.readLabel(DataTestSupport.fixture("gray1.png")).toArray(Int.self), bits)
        let full = bits.map { $0 * 255 }
        try assertImage("gray1.png", equals: full + full + full)
    }

    func testPaletteIndicesAsLabelColoursAsImage() throws {
        var indices = [Int]()
        for y in 0..<h { for x in 0..<w { indices.append(paletteIndex(y, x)) } }
        var colours = [Int]()
        for c in 0..<3 { colours += indices.map { palette[$0][c] } }
        for name in ["palette.png", "palette8.png"] {  // 4-bit and 8-bit indices
            XCTAssertEqual(try ImageIO.readLabel(DataTestSupport.fixture(name)).toArray(Int.self), indices, name)
            try assertImage(name, equals: colours)
        }
    }

    func testRGBLabelIsRefusedWithTheFix() throws {
        let url = try DataTestSupport.fixture("rgb.png")
        assertImageError(.notALabel, mentions: [url.path, "RGB", "one class index per pixel"]) {
            try ImageIO.readLabel(url)
        }
        // An RGB file whose channels are equal: the error says to save it as gray.
        let folder = try DataTestSupport.temporaryFolder(self)
        let grayish = folder.appendingPathComponent("grayish.png")
        let plane = try DataTestSupport.gray(4, 6) { y, x in 10 * y + x }
        try ImageIO.writePNG(Tensor.stack([plane, plane, plane]), to: grayish)
        assertImageError(.notALabel, mentions: [grayish.path, "channels are equal", "gray"]) {
            try ImageIO.readLabel(grayish)
        }
    }

    // MARK: one channel of a PNG

    func testChannelsOfSixteenBitRGBKeepTheirFullDepth() throws {
        let url = try DataTestSupport.fixture("rgb16.png")
        for c in 0..<3 {
            var values = [Int]()
            for y in 0..<h { for x in 0..<w { values.append(rgbValue(c, y, x) * 257) } }  // as stored
            let channel = try ImageIO.readLabel(url, channel: c)
            XCTAssertEqual(channel.shape, [h, w])
            XCTAssertEqual(channel.dtype, .int64)
            XCTAssertEqual(try channel.toArray(Int.self), values, "channel \(c)")
        }
    }

    func testChannelsOfEightBitRGBAAndInterlacedRGB() throws {
        let rgba = try DataTestSupport.fixture("rgba.png")
        for c in 0..<3 {
            var values = [Int]()
            for y in 0..<h { for x in 0..<w { values.append(rgbValue(c, y, x)) } }
            XCTAssertEqual(try ImageIO.readLabel(rgba, channel: c).toArray(Int.self), values, "channel \(c)")
            let interlaced = try DataTestSupport.fixture("interlaced.png")
            XCTAssertEqual(try ImageIO.readLabel(interlaced, channel: c).toArray(Int.self), values, "Adam7 \(c)")
        }
        var alpha = [Int]()
        for _ in 0..<h { for x in 0..<w { alpha.append((x * 40) % 256) } }
        XCTAssertEqual(try ImageIO.readLabel(rgba, channel: 3).toArray(Int.self), alpha)
    }

    func testChannelZeroOfOneChannelPNGsIsTheirLabel() throws {
        for name in ["gray.png", "gray_alpha.png", "gray16.png", "gray1.png", "palette.png", "palette8.png"] {
            let url = try DataTestSupport.fixture(name)
            XCTAssertEqual(
                try ImageIO.readLabel(url, channel: 0).toArray(Int.self), try ImageIO.readLabel(url).toArray(Int.self),
                name)
        }
        var alpha = [Int]()
        for y in 0..<h { for _ in 0..<w { alpha.append(255 - 30 * y) } }
        let grayAlpha = try DataTestSupport.fixture("gray_alpha.png")
        XCTAssertEqual(try ImageIO.readLabel(grayAlpha, channel: 1).toArray(Int.self), alpha)
    }

    func testMissingChannelThrowsNamingTheFile() throws {
        let gray = try DataTestSupport.fixture("gray.png")
        assertImageError(.missingChannel, mentions: [gray.path, "channel 1", "gray", "1 channel"]) {
            try ImageIO.readLabel(gray, channel: 1)
        }
        let rgb = try DataTestSupport.fixture("rgb.png")
        assertImageError(.missingChannel, mentions: [rgb.path, "channel 3", "RGB", "3 channels"]) {
            try ImageIO.readLabel(rgb, channel: 3)
        }
        let rgba = try DataTestSupport.fixture("rgba.png")
        assertImageError(.missingChannel, mentions: [rgba.path, "channel 4", "RGBA"]) {
            try ImageIO.readLabel(rgba, channel: 4)
        }
        assertImageError(.missingChannel, mentions: [rgb.path, "channel -1", "count from 0"]) {
            try ImageIO.readLabel(rgb, channel: -1)
        }
        assertImageError(.missingChannel, mentions: [rgb.path]) { try ImageIO.readLabel(rgb, channel: Int.max) }
        let jpeg = try DataTestSupport.fixture("photo.jpg")
        assertImageError(.notALabel, mentions: [jpeg.path, "JPEG"]) { try ImageIO.readLabel(jpeg, channel: 0) }
    }

    func testTruncatedColourPNGThrowsCorruptForAChannel() throws {
        let whole = try Data(contentsOf: DataTestSupport.fixture("rgb16.png"))
        for cut in [whole.count - 12, whole.count - 40, whole.count / 2, 40] {
            assertImageError(.corrupt, mentions: ["rgb16 cut at \(cut)"]) {
                try ImageIO.decodeLabel(whole.prefix(cut), name: "rgb16 cut at \(cut)", channel: 0)
            }
        }
    }

    // MARK: JPEG

    func testJPEGDecodingMatchesPIL() throws {
        // Same libjpeg-turbo, same defaults (islow DCT, fancy upsampling): identical on Debian
        // bookworm; 1 allows for another libjpeg-turbo release's rounding.
        for name in ["photo", "progressive", "gray", "cmyk"] {
            let image = try ImageIO.readImage(DataTestSupport.fixture(name + ".jpg"))
            XCTAssertEqual(image.shape, [3, 12, 16], name)
            let pil = try Data(contentsOf: DataTestSupport.fixture(name + ".rgb"))
            let ours = try image.permute([1, 2, 0]).contiguousBytes()
            XCTAssertEqual(ours.count, pil.count, name)
            let worst = zip(ours, pil).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1, "\(name).jpg differs from PIL's decoding by up to \(worst)")
        }
    }

    func testJPEGRoundTripIsClose() throws {
        let image = try DataTestSupport.rgb(24, 32) { c, y, x in 40 + 3 * x + 2 * y + 20 * c }  // smooth, below 256
        let data = try ImageIO.encodeJPEG(image, quality: 95)
        XCTAssertEqual(ImageIO.format(of: data), .jpeg)
        let decoded = try ImageIO.decodeJPEG(data)
        XCTAssertEqual(decoded.shape, [3, 24, 32])
        let meanError = try (decoded.to(.float32) - image.to(.float32)).abs().mean().item()
        XCTAssertLessThan(meanError, 2.0)
        // decodeImage detects JPEG by its bytes.
        XCTAssertEqual(try ImageIO.decodeImage(data, name: "mem").toArray(UInt8.self), try decoded.toArray(UInt8.self))
        // Lower quality, fewer bytes.
        let small = try ImageIO.encodeJPEG(image, quality: 10)
        XCTAssertLessThan(small.count, data.count)
        // Gray [H, W] encodes too and decodes to three equal channels.
        let gray = try ImageIO.decodeJPEG(ImageIO.encodeJPEG(DataTestSupport.gray(8, 8) { _, _ in 128 }, quality: 90))
        XCTAssertEqual(try gray.amin().itemInt(), 128)
        XCTAssertEqual(try gray.amax().itemInt(), 128)
    }

    func testJPEGQualityOutOfRangeThrows() throws {
        let image = try DataTestSupport.rgb(4, 4) { _, _, _ in 0 }
        for quality in [0, 101] {
            assertImageError(.invalidTensor, mentions: ["quality \(quality)", "1...100"]) {
                try ImageIO.encodeJPEG(image, quality: quality)
            }
        }
    }

    func testJPEGLabelIsRefused() throws {
        let url = try DataTestSupport.fixture("photo.jpg")
        assertImageError(.notALabel, mentions: [url.path, "JPEG", "PNG"]) { try ImageIO.readLabel(url) }
    }

    func testHugeProgressiveJPEGIsRefusedBeforeLibjpegAllocates() throws {
        // A fuzzing finding: a progressive JPEG of a few hundred bytes whose frame header claims
        // tens of thousands of pixels a side made libjpeg allocate (and zero) the coefficients of
        // the whole image, gigabytes, before the size was checked. The size is now checked from
        // the header alone: this file is refused as too large although its first scan is
        // malformed too, which libjpeg reports only after that allocation.
        var bytes = [UInt8](try Data(contentsOf: DataTestSupport.fixture("progressive.jpg")))
        func marker(_ code: UInt8) throws -> Int {
            try XCTUnwrap(bytes.indices.dropLast().first { bytes[$0] == 0xFF && bytes[$0 + 1] == code })
        }
        // SOF2: marker, 2-byte length, precision, then height and width, big-endian.
        let frame = try marker(0xC2)
        bytes.replaceSubrange(frame + 5..<frame + 9, with: [0x27, 0x10, 0x4E, 0x20])  // 10000 x 20000
        // SOS: marker, length, component count n, n selector pairs, then the spectral band's end.
        let scan = try marker(0xDA)
        bytes[scan + 5 + 2 * Int(bytes[scan + 4]) + 1] = 63  // a DC scan whose band ends at 63
        assertImageError(.unsupported, mentions: ["huge.jpg", "20000 x 10000 pixels"]) {
            try ImageIO.decodeImage(Data(bytes), name: "huge.jpg")
        }
    }

    // MARK: PNG round trips through our own writer

    func testPNGRoundTripRGBAndGray() throws {
        let folder = try DataTestSupport.temporaryFolder(self)
        let image = try DataTestSupport.rgb(13, 17) { c, y, x in (x * 31 + y * 7 + c * 101) ^ (x * y) }
        let rgbURL = folder.appendingPathComponent("rgb.png")
        try ImageIO.writePNG(image, to: rgbURL)
        XCTAssertEqual(try ImageIO.readImage(rgbURL).toArray(UInt8.self), try image.toArray(UInt8.self))

        let label = try DataTestSupport.gray(13, 17) { y, x in [0, 1, 11, 255][(x + y) % 4] }
        let labelURL = folder.appendingPathComponent("label.png")
        try ImageIO.writePNG(label, to: labelURL)
        let read = try ImageIO.readLabel(labelURL)
        XCTAssertEqual(read.dtype, .int64)
        XCTAssertEqual(try read.toArray(Int.self), try label.toArray(UInt8.self).map(Int.init))
        // The gray file read as an image: the plane three times.
        let asImage = try ImageIO.readImage(labelURL)
        XCTAssertEqual(asImage.shape, [3, 13, 17])
        XCTAssertEqual(
            try asImage.narrow(dim: 0, start: 2, length: 1).toArray(UInt8.self), try label.toArray(UInt8.self))

        // A non-contiguous view is written in its logical order.
        let flipped = try image.flip([2]).permute([0, 2, 1]).permute([0, 2, 1])
        let data = try ImageIO.encodePNG(flipped)
        XCTAssertEqual(
            try ImageIO.decodeImage(data, name: "flipped").toArray(UInt8.self), try flipped.toArray(UInt8.self))
    }

    func testWritePNGRefusesWrongTensorsAndFolders() throws {
        let folder = try DataTestSupport.temporaryFolder(self)
        let target = folder.appendingPathComponent("x.png")
        assertImageError(.invalidTensor, mentions: [target.path, "float32", "uint8"]) {
            try ImageIO.writePNG(Tensor.zeros([3, 4, 4]), to: target)
        }
        assertImageError(.invalidTensor, mentions: [target.path, "[4, 4, 4]"]) {
            try ImageIO.writePNG(Tensor.zeros([4, 4, 4], dtype: .uint8), to: target)
        }
        let nowhere = folder.appendingPathComponent("no/such/folder/x.png")
        assertImageError(.writeFailed, mentions: [nowhere.path, "folder"]) {
            try ImageIO.writePNG(Tensor.zeros([4, 4], dtype: .uint8), to: nowhere)
        }
    }

    // MARK: broken files

    func testMissingFileAndFolderThrowNamingThePath() throws {
        let folder = try DataTestSupport.temporaryFolder(self)
        let missing = folder.appendingPathComponent("nope.png")
        assertImageError(.missingFile, mentions: [missing.path, "no such file"]) { try ImageIO.readImage(missing) }
        assertImageError(.missingFile, mentions: [missing.path]) { try ImageIO.readLabel(missing) }
        assertImageError(.missingFile, mentions: [folder.path, "folder"]) { try ImageIO.readImage(folder) }
    }

    func testTruncatedFilesThrowCorrupt() throws {
        let folder = try DataTestSupport.temporaryFolder(self)
        for name in ["rgb.png", "interlaced.png", "photo.jpg", "progressive.jpg"] {
            let whole = try Data(contentsOf: DataTestSupport.fixture(name))
            for cut in [whole.count / 4, whole.count / 2, whole.count - 1] {
                let url = try DataTestSupport.write(whole.prefix(cut), "cut\(cut)-\(name)", in: folder)
                assertImageError(.corrupt, mentions: [url.path, "truncated"]) { try ImageIO.readImage(url) }
            }
        }
        // Cut inside the signature: not recognisable as an image at all.
        let stub = try DataTestSupport.write(Data([0x89, 0x50, 0x4E]), "stub.png", in: folder)
        assertImageError(.notAnImage, mentions: [stub.path]) { try ImageIO.readImage(stub) }
    }

    func testDamagedPNGThrowsCorrupt() throws {
        let folder = try DataTestSupport.temporaryFolder(self)
        var bytes = [UInt8](try Data(contentsOf: DataTestSupport.fixture("rgb.png")))
        bytes[bytes.count / 2] ^= 0xFF  // inside IDAT: its CRC no longer matches
        let url = try DataTestSupport.write(Data(bytes), "damaged.png", in: folder)
        assertImageError(.corrupt, mentions: [url.path, "libpng", "re-download"]) { try ImageIO.readImage(url) }
    }

    func testNonImagesSayWhatTheyAre() throws {
        let folder = try DataTestSupport.temporaryFolder(self)
        let cases: [(String, Data, String)] = [
            ("empty.png", Data(), "empty"),
            ("page.png", Data("<html>404</html>".utf8), "HTML"),
            ("lfs.png", Data("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n".utf8), "git lfs pull"),
            ("anim.png", Data("GIF89a....".utf8), "GIF"),
            ("noise.jpg", Data([1, 2, 3, 4, 5, 6, 7, 8, 9]), "01 02 03"),
        ]
        for (name, data, mention) in cases {
            let url = try DataTestSupport.write(data, name, in: folder)
            assertImageError(.notAnImage, mentions: [url.path, mention]) { try ImageIO.readImage(url) }
        }
    }

    func testRandomlyDamagedFilesNeverCrash() throws {
        // Seeded byte flips and cuts: each decode either succeeds or throws an ImageError.
        var generator = SplitMix64(seed: 7)
        for name in ["rgb.png", "palette.png", "photo.jpg", "cmyk.jpg"] {
            let whole = [UInt8](try Data(contentsOf: DataTestSupport.fixture(name)))
            for _ in 0..<150 {
                var bytes = whole
                for _ in 0..<(1 + Int(generator.next() % 4)) {
                    let at = Int(generator.next() % UInt64(bytes.count))
                    bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                }
                if generator.next() % 3 == 0 {
                    bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count))))
                }
                do {
                    _ = try ImageIO.decodeImage(Data(bytes), name: name)
                } catch is ImageError {
                    continue
                } catch {
                    XCTFail("\(name): \(error) is not an ImageError")
                }
            }
        }
    }

    // MARK: resizing

    func testNearestKeepsLabelValuesExactly() throws {
        let values = [0, 3, 10, 255, 65535]
        var generator = SplitMix64(seed: 3)
        let raw = (0..<(9 * 11)).map { _ in values[Int(generator.next() % UInt64(values.count))] }
        let label = try Tensor(raw, shape: [9, 11])
        for size in [Pair(18, 22), Pair(4, 5), Pair(13, 7), Pair(1, 1)] {
            let resized = try Resize.label(label, to: size)
            XCTAssertEqual(resized.shape, [size.height, size.width])
            XCTAssertEqual(resized.dtype, .int64)
            XCTAssertTrue(Set(try resized.toArray(Int.self)).isSubset(of: Set(values)), "\(size)")
        }
        // Doubling: every output pixel is its source pixel.
        let doubled = try Resize.label(label, to: Pair(18, 22)).toArray(Int.self)
        for y in 0..<18 { for x in 0..<22 { XCTAssertEqual(doubled[y * 22 + x], raw[(y / 2) * 11 + x / 2]) } }
        // A batch [N, H, W] and uint8 labels keep their rank and dtype.
        let batch = try Resize.label(label.to(.uint8).unsqueeze(dim: 0), to: Pair(5, 5))
        XCTAssertEqual(batch.shape, [1, 5, 5])
        XCTAssertEqual(batch.dtype, .uint8)
    }

    func testInterpolationOfAConstantImageIsConstant() throws {
        let image = try Tensor.full([3, 9, 11], value: 173, dtype: .uint8)
        for filter in [Resize.Filter.bilinear, .bicubic] {
            for size in [Pair(20, 31), Pair(4, 6), Pair(9, 12)] {
                let resized = try Resize.image(image, to: size, filter: filter)
                XCTAssertEqual(resized.shape, [3, size.height, size.width])
                XCTAssertEqual(resized.dtype, .uint8)
                XCTAssertEqual(try resized.amin().itemInt(), 173, "\(filter) \(size)")
                XCTAssertEqual(try resized.amax().itemInt(), 173, "\(filter) \(size)")
            }
        }
    }

    func testImageResizeRoundsAndClamps() throws {
        // 0 | 255 stripes: bicubic overshoots below 0 and above 255, and must be clamped, not wrapped.
        let stripes = try DataTestSupport.rgb(4, 8) { _, _, x in x % 2 == 0 ? 0 : 255 }
        let up = try Resize.image(stripes, to: Pair(4, 32), filter: .bicubic)
        let reference = try interpolate(
            stripes.to(.float32).unsqueeze(dim: 0), size: Pair(4, 32), mode: .bicubic(alignCorners: false))
        XCTAssertLessThan(try reference.amin().item(), 0)
        XCTAssertGreaterThan(try reference.amax().item(), 255)
        let expected = try (reference + 0.5).floor().clamp(min: 0, max: 255).squeeze(dim: 0).toArray(Float.self)
        XCTAssertEqual(try up.toArray(UInt8.self).map(Float.init), expected)
        // Same size: unchanged.
        XCTAssertEqual(try Resize.image(stripes, to: Pair(4, 8)).toArray(UInt8.self), try stripes.toArray(UInt8.self))
    }

    func testResizeRefusesTheWrongKind() throws {
        XCTAssertThrowsError(try Resize.image(Tensor.zeros([4, 4], dtype: .int64), to: 2))
        XCTAssertThrowsError(try Resize.label(Tensor.zeros([4, 4]), to: 2))
        XCTAssertThrowsError(try Resize.label(Tensor.zeros([4, 4], dtype: .int64), to: Pair(0, 3)))
    }
}
