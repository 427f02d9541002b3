internal import CImageIO
import Foundation
import TorchNN
import Torch

/// Why an image could not be read, decoded, encoded or written: names the file (or the
/// data's name) and says how to fix it.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, for callers that react differently (a stream that skips bad frames).
    public enum Kind: Sendable, Equatable {
        /// The file does not exist (or is a folder).
        case missingFile
        /// The file exists but could not be read (permissions, I/O).
        case unreadable
        /// The bytes are not a PNG or JPEG (another format, an HTML page, a Git LFS pointer).
        case notAnImage
        /// A PNG or JPEG whose data is damaged or ends early.
        case corrupt
        /// A valid file of a kind this reader does not decode (12-bit JPEG, a huge image).
        case unsupported
        /// A colour (RGB) image or a JPEG where a label (one class index per pixel) was expected.
        case notALabel
        /// A channel the file does not have (channel 1 of a gray PNG, channel 3 of an RGB one).
        case missingChannel
        /// A tensor or setting that cannot be encoded (wrong shape or dtype, quality outside 1...100).
        case invalidTensor
        /// The encoded file could not be written.
        case writeFailed
        /// Memory ran out while decoding or encoding.
        case outOfMemory
    }

    public let kind: Kind
    /// The file path, or the name given for in-memory data.
    public let file: String
    /// The whole text: file, what is wrong, and the fix.
    public let message: String

    public init(_ kind: Kind, file: String, problem: String, fix: String) {
        self.kind = kind
        self.file = file
        self.message = "\(file): \(problem); \(fix)"
    }

    public var description: String { message }
}

/// PNG and JPEG files as tensors: images as RGB uint8 `[3, H, W]`, labels as int64 `[H, W]`
/// holding the raw values stored in the file.
///
/// Coding goes through libpng and libjpeg-turbo behind a small C layer (`CImageIO`), not
/// OpenCV: the two libraries are small, installed everywhere (Debian's libpng-dev and
/// libjpeg62-turbo-dev, a few hundred kilobytes), and are what PIL itself links, so images
/// decode bit for bit as in the PyTorch pipelines whose numbers we compare with. OpenCV
/// would add tens of megabytes of dependencies, a C++ API to wrap, BGR channel order, and
/// its own bundled codecs, whose JPEG decoding can differ from PIL's by a few levels.
///
/// Formats are recognised by their first bytes, never by the file extension.
public enum ImageIO {
    /// A coded image format this reader knows.
    public enum Format: String, Sendable {
        case png
        case jpeg
    }

    /// The format of `data`, from its signature; nil for anything else.
    public static func format(of data: Data) -> Format? {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// libpng's and libjpeg's versions, e.g. "libpng 1.6.39, libjpeg 62".
    public static var libraryVersions: String { String(cString: iio_library_versions()) }

    // MARK: reading files

    /// Reads a PNG or JPEG file as an RGB image [3, H, W] uint8.
    ///
    /// Gray images are replicated to three channels, palettes expanded, alpha dropped,
    /// 16-bit PNGs scaled to 8 bits.
    public static func readImage(_ url: URL) throws -> Tensor {
        try decodeImage(readFile(url), name: url.path)
    }

    /// Reads a label PNG as its raw values [H, W] int64: gray values (1 to 16 bits) or palette
    /// indices as stored, not the palette's colours.
    ///
    /// RGB label images and JPEGs are refused: a label holds one class index per pixel (read
    /// the channel of a colour PNG that holds them with `readLabel(_:channel:)`).
    public static func readLabel(_ url: URL) throws -> Tensor {
        try decodeLabel(readFile(url), name: url.path)
    }

    /// Reads one channel of a PNG as its raw values [H, W] int64, at the file's own depth
    /// (1 to 16 bits, never scaled): for labels kept in one channel of a colour PNG, such as
    /// SYNTHIA's class ids in the red channel of 16-bit RGB files, which `readLabel(_:)`
    /// refuses and `readImage` would scale to 8 bits.
    ///
    /// - Parameters:
    ///   - url: a PNG file; JPEGs are refused as by `readLabel(_:)`.
    ///   - channel: counted from 0 in the order the file stores them: red, green, blue (then
    ///     alpha) in an RGB(A) PNG; the gray value (then alpha) or the palette index (not
    ///     its colour) in a one-channel PNG, so that channel 0 of a gray label reads as
    ///     `readLabel(_:)` does.
    /// - Throws: `ImageError` naming the file; of kind `.missingChannel` when the file has no
    ///   channel `channel`.
    public static func readLabel(_ url: URL, channel: Int) throws -> Tensor {
        try decodeLabel(readFile(url), name: url.path, channel: channel)
    }

    /// The bytes of `url`, with a missing file or a folder reported as such.
    static func readFile(_ url: URL) throws -> Data {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            // A folder listing decodes a name that is not UTF-8 with U+FFFD, and that name is missing.
            if url.lastPathComponent.contains("\u{FFFD}") {
                throw ImageError(
                    .missingFile, file: url.path, problem: "has a name that is not valid UTF-8 (� marks its bytes)",
                    fix: "rename it in UTF-8, e.g. convmv -f latin1 -t utf8 --notest NAME")
            }
            throw ImageError(
                .missingFile, file: url.path, problem: "no such file",
                fix: "check the path, or the dataset folder it was listed from")
        }
        guard !isFolder.boolValue else {
            throw ImageError(
                .missingFile, file: url.path, problem: "is a folder, not an image file", fix: "give a file")
        }
        if let problem = FileFailure.notAFile(url) {
            throw ImageError(.unreadable, file: url.path, problem: problem, fix: "give an image file")
        }
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ImageError(
                .unreadable, file: url.path, problem: "cannot be read (\(FileFailure.reason(error)))",
                fix: "check its permissions")
        }
    }

    // MARK: decoding

    /// Decodes PNG or JPEG bytes as an RGB image [3, H, W] uint8; `name` labels errors.
    public static func decodeImage(_ data: Data, name: String) throws -> Tensor {
        switch try sniff(data, name: name) {
        case .png:
            return try rgbTensor(decodePixels(data, name: name, format: .png, mode: IIO_PNG_IMAGE, planar: true))
        case .jpeg:
            return try decodeJPEG(data, name: name)
        }
    }

    /// Decodes JPEG bytes as an RGB image [3, H, W] uint8 (gray and CMYK JPEGs converted).
    public static func decodeJPEG(_ data: Data, name: String = "JPEG data") throws -> Tensor {
        try rgbTensor(decodePixels(data, name: name, format: .jpeg, mode: IIO_PNG_IMAGE, planar: true))
    }

    /// Decodes label PNG bytes as raw values [H, W] int64 (see `readLabel(_:)`).
    public static func decodeLabel(_ data: Data, name: String) throws -> Tensor {
        try labelPixels(data, name: name).labelTensor()
    }

    /// Decodes one channel of PNG bytes as raw values [H, W] int64 (see `readLabel(_:channel:)`).
    public static func decodeLabel(_ data: Data, name: String, channel: Int) throws -> Tensor {
        try labelPixels(data, name: name, channel: channel).labelTensor()
    }

    /// The raw values of a label file, still in the C layer's buffer: those of a one-channel
    /// PNG (`readLabel(_:)`), or with `channel` those of that channel (`readLabel(_:channel:)`).
    static func readLabelPixels(_ url: URL, channel: Int? = nil) throws -> DecodedPixels {
        try labelPixels(readFile(url), name: url.path, channel: channel)
    }

    /// The raw values of label PNG bytes, still in the C layer's buffer (see `readLabelPixels`).
    static func labelPixels(_ data: Data, name: String, channel: Int? = nil) throws -> DecodedPixels {
        switch try sniff(data, name: name) {
        case .jpeg:
            throw ImageError(
                .notALabel, file: name, problem: "is a JPEG, which cannot hold a label",
                fix: "JPEG's lossy compression changes class indices at every edge; store labels as PNG")
        case .png:
            if let channel {
                return try decodePixels(data, name: name, format: .png, mode: IIO_PNG_LABEL, channel: channel)
            }
            do {
                return try decodePixels(data, name: name, format: .png, mode: IIO_PNG_LABEL)
            } catch let error as ImageError where error.kind == .notALabel {
                // A colour PNG whose three channels are equal is a gray label saved as RGB.
                guard let rgb = try? decodeImage(data, name: name), try isGray(rgb) else { throw error }
                throw ImageError(
                    .notALabel, file: name,
                    problem: "is an RGB PNG whose three channels are equal, not a one-channel label",
                    fix: "save it as a gray (mode L) PNG, e.g. Image.open(p).convert('L').save(p) in PIL")
            }
        }
    }

    /// The format of `data`, or an error that says what the bytes look like instead.
    private static func sniff(_ data: Data, name: String) throws -> Format {
        if let format = format(of: data) { return format }
        let fix = "give a PNG or JPEG file"
        if data.isEmpty {
            throw ImageError(.notAnImage, file: name, problem: "is empty (0 bytes)", fix: "re-create or re-download it")
        }
        if data.starts(with: Array("version https://git-lfs".utf8)) {
            throw ImageError(
                .notAnImage, file: name, problem: "is a Git LFS pointer, not the image",
                fix: "fetch the real file with `git lfs pull`")
        }
        let known: [(String, [UInt8])] = [
            ("a GIF", Array("GIF8".utf8)), ("a BMP", Array("BM".utf8)), ("a TIFF", [0x49, 0x49, 0x2A, 0x00]),
            ("a TIFF", [0x4D, 0x4D, 0x00, 0x2A]), ("a WebP (RIFF)", Array("RIFF".utf8)),
            ("text (HTML or XML)", Array("<".utf8)),
        ]
        for (kind, signature) in known where data.starts(with: signature) {
            throw ImageError(
                .notAnImage, file: name, problem: "is \(kind) file, not a PNG or JPEG", fix: fix + "; convert it first")
        }
        let head = data.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
        throw ImageError(.notAnImage, file: name, problem: "is not a PNG or JPEG (it starts with \(head))", fix: fix)
    }

    /// Runs the C decoder for `format` and takes ownership of its pixels, interleaved
    /// ([H, W, C]) or, with `planar`, as planes ([C, H, W]); with `channel`, a PNG's channel
    /// of that index alone at the file's depth, in place of `mode`.
    private static func decodePixels(
        _ data: Data, name: String, format: Format, mode: iio_png_mode, channel: Int? = nil, planar: Bool = false
    ) throws -> DecodedPixels {
        var message = [CChar](repeating: 0, count: Int(IIO_MESSAGE_CAPACITY))
        var out = iio_pixels()
        let status: iio_status = data.withUnsafeBytes { raw in
            message.withUnsafeMutableBufferPointer { text in
                switch format {
                case .png:
                    if let channel {
                        return iio_png_decode_channel(
                            raw.baseAddress, raw.count, Int32(clamping: channel), &out, text.baseAddress, text.count)
                    }
                    return iio_png_decode(raw.baseAddress, raw.count, mode, &out, text.baseAddress, text.count)
                case .jpeg:
                    return iio_jpeg_decode(raw.baseAddress, raw.count, &out, text.baseAddress, text.count)
                }
            }
        }
        var rearranged = IIO_OK
        if status == IIO_OK && planar {
            rearranged = message.withUnsafeMutableBufferPointer { text in
                iio_to_planar(&out, text.baseAddress, text.count)
            }
        }
        guard status == IIO_OK, rearranged == IIO_OK else {
            iio_free(out.data)
            if rearranged == IIO_ERR_MEMORY {
                throw ImageError(.outOfMemory, file: name, problem: String(cString: message), fix: "free memory")
            }
            throw decodeError(status, detail: String(cString: message), name: name, format: format)
        }
        guard let pixels = DecodedPixels(out) else {
            throw ImageError(.corrupt, file: name, problem: "decoded to no pixels", fix: "re-create the file")
        }
        return pixels
    }

    /// The `ImageError` for a failed decode: the C layer's text plus the fix.
    private static func decodeError(_ status: iio_status, detail: String, name: String, format: Format) -> ImageError {
        let library = format == .png ? "libpng" : "libjpeg"
        let label = format == .png ? "PNG" : "JPEG"
        switch status {
        case IIO_ERR_NOT_IMAGE:
            return ImageError(
                .notAnImage, file: name, problem: "is not a \(label) (\(detail))", fix: "give a PNG or JPEG file")
        case IIO_ERR_UNSUPPORTED:
            return ImageError(
                .unsupported, file: name, problem: "is a \(label) this reader does not decode (\(library): \(detail))",
                fix: "convert it to an 8-bit PNG or JPEG (labels: 8- or 16-bit gray or palette PNG)")
        case IIO_ERR_COLOR_LABEL:
            return ImageError(
                .notALabel, file: name, problem: "is a colour image, not a label (\(detail))",
                fix: "labels hold one class index per pixel (gray or palette PNG); convert colour-coded "
                    + "labels to indices with the dataset's colour table first, or, when one channel holds "
                    + "the indices (SYNTHIA: red), read it with readLabel(_:channel:)")
        case IIO_ERR_NO_CHANNEL:
            return ImageError(
                .missingChannel, file: name, problem: "has no such channel (\(detail))",
                fix: "ask for a channel the file has, counting from 0 (red, gray or the palette index)")
        case IIO_ERR_MEMORY:
            return ImageError(
                .outOfMemory, file: name, problem: "ran out of memory while decoding (\(detail))", fix: "free memory")
        default:
            return ImageError(
                .corrupt, file: name, problem: "is a corrupt or truncated \(label) (\(library): \(detail))",
                fix: "re-download or re-export the file")
        }
    }

    /// Planar pixels as [3, H, W] uint8.
    private static func rgbTensor(_ pixels: DecodedPixels) throws -> Tensor {
        try pixels.withBytes { raw in
            try Tensor(bytes: raw, shape: [pixels.channels, pixels.height, pixels.width], dtype: .uint8)
        }
    }

    /// Whether an RGB image [3, H, W] has equal channels everywhere.
    private static func isGray(_ image: Tensor) throws -> Bool {
        let r = try image.narrow(dim: 0, start: 0, length: 1)
        let g = try image.narrow(dim: 0, start: 1, length: 1)
        let b = try image.narrow(dim: 0, start: 2, length: 1)
        let same = try r.eq(g).logicalAnd(r.eq(b))
        return try same.to(.int64).amin().itemInt() == 1
    }

    // MARK: encoding

    /// Writes an RGB [3, H, W] or gray [H, W] uint8 image as an 8-bit PNG file.
    public static func writePNG(_ image: Tensor, to url: URL) throws {
        let data = try encodePNG(image, name: url.path)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ImageError(
                .writeFailed, file: url.path, problem: "cannot be written (\(FileFailure.reason(error)))",
                fix: "check that its folder exists and is writable")
        }
    }

    /// Encodes an RGB [3, H, W] or gray [H, W] uint8 image as PNG bytes; `name` labels errors.
    public static func encodePNG(_ image: Tensor, name: String = "PNG") throws -> Data {
        let (bytes, width, height, channels) = try interleavedBytes(image, name: name, what: "a PNG")
        return try encoded(name: name) { buffer, text, capacity in
            bytes.withUnsafeBufferPointer { pixels in
                iio_png_encode(pixels.baseAddress, Int32(width), Int32(height), Int32(channels), buffer, text, capacity)
            }
        }
    }

    /// Encodes an RGB [3, H, W] (or gray [H, W]) uint8 image as baseline JPEG bytes of
    /// `quality` 1...100 (libjpeg's scale, as PIL's `quality`; 4:2:0 chroma subsampling).
    public static func encodeJPEG(_ image: Tensor, quality: Int = 95) throws -> Data {
        let name = "JPEG"
        guard (1...100).contains(quality) else {
            throw ImageError(
                .invalidTensor, file: name, problem: "quality \(quality) is outside 1...100",
                fix: "pass 1...100 (95 keeps detail)")
        }
        let (bytes, width, height, channels) = try interleavedBytes(image, name: name, what: "a JPEG")
        return try encoded(name: name) { buffer, text, capacity in
            bytes.withUnsafeBufferPointer { pixels in
                iio_jpeg_encode(
                    pixels.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(quality), buffer, text,
                    capacity)
            }
        }
    }

    /// The image's bytes in row-major interleaved order ([H, W, C]) with its sizes, after
    /// checking that it is a [3, H, W] or [H, W] uint8 tensor.
    private static func interleavedBytes(_ image: Tensor, name: String, what: String) throws
        -> (bytes: [UInt8], width: Int, height: Int, channels: Int)
    {
        let shape = image.shape
        let fix = "pass an RGB image [3, H, W] or a gray image [H, W] of uint8 (clamp to 0...255, then .to(.uint8))"
        guard image.dtype == .uint8 else {
            throw ImageError(
                .invalidTensor, file: name, problem: "cannot write a \(image.dtype) tensor as \(what)", fix: fix)
        }
        switch shape.count {
        case 2 where shape[0] > 0 && shape[1] > 0:
            return (try image.contiguousBytes(), shape[1], shape[0], 1)
        case 3 where shape[0] == 3 && shape[1] > 0 && shape[2] > 0:
            return (try image.permute([1, 2, 0]).contiguousBytes(), shape[2], shape[1], 3)
        default:
            throw ImageError(
                .invalidTensor, file: name, problem: "cannot write a tensor of shape \(shape) as \(what)", fix: fix)
        }
    }

    /// Runs a C encoder and copies its output into `Data`.
    private static func encoded(
        name: String, _ body: (UnsafeMutablePointer<iio_buffer>, UnsafeMutablePointer<CChar>?, Int) -> iio_status
    ) throws -> Data {
        var message = [CChar](repeating: 0, count: Int(IIO_MESSAGE_CAPACITY))
        var out = iio_buffer()
        let status = message.withUnsafeMutableBufferPointer { text in body(&out, text.baseAddress, text.count) }
        defer { iio_free(out.data) }
        let detail = String(cString: message)
        guard status == IIO_OK, let base = out.data else {
            if status == IIO_ERR_MEMORY {
                throw ImageError(
                    .outOfMemory, file: name, problem: "ran out of memory while encoding (\(detail))",
                    fix: "free memory")
            }
            throw ImageError(
                .invalidTensor, file: name, problem: "cannot be encoded (\(detail))", fix: "check the image's size")
        }
        return Data(bytes: base, count: out.size)
    }
}

/// Pixels decoded by the C layer: owns its buffer and frees it in `deinit`.
final class DecodedPixels {
    let width: Int
    let height: Int
    /// 1 (gray, label) or 3 (RGB).
    let channels: Int
    /// 8 or 16 (native-endian UInt16 samples).
    let bitDepth: Int
    private let data: UnsafeMutablePointer<UInt8>
    private let size: Int

    /// Takes ownership of `pixels.data`; nil (after freeing nothing) when there is none.
    init?(_ pixels: iio_pixels) {
        guard let data = pixels.data else { return nil }
        self.data = data
        self.size = pixels.size
        self.width = Int(pixels.width)
        self.height = Int(pixels.height)
        self.channels = Int(pixels.channels)
        self.bitDepth = Int(pixels.bit_depth)
    }

    deinit {
        iio_free(data)
    }

    /// Number of pixels.
    var count: Int { width * height }

    /// Runs `body` over the samples' bytes: row-major, interleaved ([H, W, C]) or, when the
    /// decode asked for planes, [C, H, W].
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// One-channel 8- or 16-bit samples as [H, W] int64.
    func labelTensor() throws -> Tensor {
        var values = [Int64](repeating: 0, count: count)
        withBytes { raw in
            values.withUnsafeMutableBufferPointer { out in
                if bitDepth == 16 {
                    let source = raw.bindMemory(to: UInt16.self)
                    for i in 0..<out.count { out[i] = Int64(source[i]) }
                } else {
                    let source = raw.bindMemory(to: UInt8.self)
                    for i in 0..<out.count { out[i] = Int64(source[i]) }
                }
            }
        }
        return try Tensor(values, shape: [height, width])
    }
}
