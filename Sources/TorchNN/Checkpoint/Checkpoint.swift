import Foundation

/// Reads model weights from the files PyTorch users have: `.pth` files written by
/// `torch.save` (both its zip and its legacy layout) and safetensors files. Everything is
/// read in Swift; no Python runs, and no Python code named in a pickle is ever executed.
public enum Checkpoint {
    /// How a checkpoint file is laid out.
    public enum Format: String, CaseIterable, Sendable, CustomStringConvertible {
        /// `torch.save` before PyTorch 1.6, or with `_use_new_zipfile_serialization=False`:
        /// a run of pickles (magic number, protocol version, system info, the object, the
        /// storage keys) followed by the raw storages.
        case legacyPickle
        /// `torch.save` since PyTorch 1.6: a zip archive holding `<prefix>/data.pkl` and one
        /// uncompressed entry `<prefix>/data/<key>` per storage.
        case zip
        /// Hugging Face safetensors: a length-prefixed JSON header, then the raw tensors.
        case safetensors

        public var description: String {
            switch self {
            case .legacyPickle: return "PyTorch legacy pickle (.pth before 1.6)"
            case .zip: return "PyTorch zip archive (.pth since 1.6)"
            case .safetensors: return "safetensors"
            }
        }
    }

    /// The layout of a checkpoint file, told from its first bytes.
    ///
    /// - Parameter url: the file.
    /// - Throws: `CheckpointError` naming the file when it cannot be read or has none of the layouts.
    public static func format(of url: URL) throws -> Format {
        let data = try contents(of: url)
        return try withPath(url.path) { try format(of: data) }
    }

    /// Reads every tensor of a checkpoint as a flat state dict, on the CPU, in the file's order.
    ///
    /// When the pickled object is a dict holding a `state_dict` (or `model_state_dict`) dict,
    /// as training checkpoints do, that one is returned; entries that are not tensors (an
    /// epoch, a config) are skipped. Names are kept as saved: a DataParallel `module.` prefix
    /// stays (see `StateDict.removingPrefix`).
    ///
    /// - Parameter url: a `.pth` file in either PyTorch layout, or a safetensors file.
    /// - Throws: `CheckpointError` naming the file for an unreadable, truncated or malformed
    ///   file, or one that refers to Python code other than tensors and ordered dicts.
    public static func load(_ url: URL) throws -> StateDict {
        try decode(contents(of: url), path: url.path)
    }

    /// Reads every tensor of a checkpoint held in memory, as `load(_:)` does a file's.
    ///
    /// - Parameters:
    ///   - data: the bytes of a `.pth` file in either PyTorch layout, or of a safetensors file.
    ///   - path: what errors call the data (a file's path, or a name such as a URL's).
    /// - Throws: `CheckpointError` naming `path`, as `load(_:)`.
    public static func decode(_ data: Data, path: String) throws -> StateDict {
        try withPath(path) {
            switch try format(of: data) {
            case .legacyPickle: return try TorchPickle.loadLegacy(data)
            case .zip: return try TorchPickle.loadZip(data)
            case .safetensors: return try SafeTensors.decode(data, path: path).tensors
            }
        }
    }

    /// Whether `url` is a TorchScript archive written by `torch.jit.save` (a zip holding
    /// `<prefix>/constants.pkl` beside its `data.pkl`), which holds code as well as tensors.
    public static func isTorchScript(_ url: URL) -> Bool {
        guard let data = try? contents(of: url), (try? format(of: data)) == .zip, let archive = try? ZipArchive(data)
        else { return false }
        return archive.entries.contains { $0.name.hasSuffix("/constants.pkl") && $0.name.split(separator: "/").count == 2 }
    }

    /// Checks every stored entry of the zip archive `url` against its CRC-32, so that a
    /// corrupt file that another reader (libtorch's, for TorchScript) would take, or refuse
    /// with a parser's message, is named as corrupt. Files that are no zip archive, and
    /// compressed entries, are left to that reader.
    ///
    /// - Throws: `CheckpointError` naming the file and the first entry that fails.
    public static func verifyArchive(_ url: URL) throws {
        let data = try contents(of: url)
        guard (try? format(of: data)) == .zip, let archive = try? ZipArchive(data) else { return }
        try withPath(url.path) {
            for entry in archive.entries where entry.method == 0 && entry.flags & 1 == 0 {
                _ = try archive.contents(of: entry)
            }
        }
    }

    // MARK: format detection

    static func format(of data: Data) throws -> Format {
        guard !data.isEmpty else { throw FormatError("the file is empty") }
        if data.starts(with: ZipArchive.localHeaderMagic) { return .zip }
        if TorchPickle.startsWithLegacyMagic(data) { return .legacyPickle }
        // safetensors has no magic number: an 8-byte header length, then a JSON object (whose
        // length the reader checks, so that a file cut short is reported as such). The length
        // may start with the byte a pickle starts with, so this test comes first.
        if let headerLength = data.littleEndian(UInt64.self, at: 0), headerLength >= 2, data.count > 8,
            data[data.startIndex + 8] == UInt8(ascii: "{")
        {
            return .safetensors
        }
        if data.first == PickleMachine.protocolOpcode {
            throw FormatError(
                "is a Python pickle but not a checkpoint written by torch.save: it does not start with "
                    + "the legacy layout's magic number (or is cut short before it)")
        }
        let head = data.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw FormatError(
            "is neither a PyTorch checkpoint (a zip archive or a legacy pickle written by torch.save) "
                + "nor a safetensors file; it starts with the bytes \(head)")
    }

    private static func contents(of url: URL) throws -> Data {
        if let problem = FileFailure.notAFile(url) {
            throw CheckpointError(path: url.path, reason: "\(problem); give the checkpoint file itself")
        }
        do {
            return try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CheckpointError(
                path: url.path, reason: "cannot be read (\(FileFailure.reason(error))); check the path")
        }
    }

    /// Runs `body`, turning the readers' path-less `FormatError`s into errors naming the file.
    private static func withPath<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as FormatError {
            throw CheckpointError(path: path, reason: error.reason)
        }
    }
}

/// A malformed piece of a checkpoint, found by a reader that does not know the file's path;
/// `Checkpoint` turns it into a `CheckpointError` naming the file.
struct FormatError: Error {
    let reason: String

    init(_ reason: String) {
        self.reason = reason
    }
}

extension Data {
    /// The little-endian unsigned integer at `offset` bytes from the start, or nil when it
    /// does not lie wholly inside the data.
    func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return nil }
        var value: T = 0
        for i in 0..<size {
            value |= T(self[startIndex + offset + i]) << (8 * i)
        }
        return value
    }

    /// The `length` bytes at `offset` from the start (sharing this data's memory), or nil
    /// when they do not lie wholly inside the data.
    func bytes(at offset: Int, count length: Int) -> Data? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        return self[startIndex + offset..<startIndex + offset + length]
    }
}

extension Array where Element == Int {
    /// The product of the elements, or nil when it overflows `Int`: sizes read from a file
    /// multiply to a byte count only after this check.
    func checkedProduct() -> Int? {
        var product = 1
        for factor in self {
            guard case (let next, false) = product.multipliedReportingOverflow(by: factor) else { return nil }
            product = next
        }
        return product
    }
}
