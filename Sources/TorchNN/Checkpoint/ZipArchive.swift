import CZlib
import Foundation

/// The table of contents of a zip archive, read from its central directory (PKWARE's
/// APPNOTE.TXT, version 6.3), zip64 included, and the contents of its stored entries.
///
/// A zip file ends with an "end of central directory" record giving the place and size of
/// the central directory, which lists every entry: its name, compression method, sizes
/// and the offset of its local header; the entry's bytes follow that local header. Archives
/// too large for 32-bit fields put a "zip64 end of central directory" record (found through
/// a locator just before the end record) and 64-bit values in each entry's zip64 extra field.
/// PyTorch writes every entry stored (uncompressed); entries compressed otherwise are listed
/// but their contents are refused.
struct ZipArchive {
    /// One file of the archive, as its central-directory record describes it.
    struct Entry {
        let name: String
        /// 0: stored; 8: deflated; others are rarer compressions.
        let method: UInt16
        /// General-purpose flags; bit 0 marks an encrypted entry.
        let flags: UInt16
        /// CRC-32 (ISO 3309, as zlib computes it) of the uncompressed contents.
        let crc32: UInt32
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    /// The first four bytes of a zip file: the signature of its first local header.
    static let localHeaderMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    private static let localHeaderSignature: UInt32 = 0x0403_4B50
    private static let centralHeaderSignature: UInt32 = 0x0201_4B50
    private static let endSignature: UInt32 = 0x0605_4B50
    private static let zip64EndSignature: UInt32 = 0x0606_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    /// Header id of the extra field holding an entry's 64-bit sizes and offset.
    private static let zip64ExtraID: UInt16 = 0x0001

    /// The entries in central-directory order.
    let entries: [Entry]
    /// Index in `entries` of each name (its first entry, should a name repeat).
    private let positions: [String: Int]
    private let data: Data

    /// Reads the central directory of the archive `data`.
    init(_ data: Data) throws {
        self.data = data
        let directory = try Self.locateCentralDirectory(in: data)
        var entries: [Entry] = []
        var offset = directory.offset
        for index in 0..<directory.count {
            let (entry, next) = try Self.readCentralHeader(in: data, at: offset, index: index)
            entries.append(entry)
            offset = next
        }
        self.entries = entries
        self.positions = Dictionary(entries.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The entry with exactly this name.
    func entry(named name: String) -> Entry? {
        positions[name].map { entries[$0] }
    }

    /// The bytes of a stored entry, sharing the archive's memory, once their CRC-32 matches
    /// the one the central directory records.
    func contents(of entry: Entry) throws -> Data {
        guard entry.flags & 1 == 0 else { throw FormatError("zip entry '\(entry.name)' is encrypted") }
        guard entry.method == 0 else {
            let method = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw FormatError(
                "zip entry '\(entry.name)' is compressed (\(method)); torch.save stores every entry "
                    + "uncompressed, so the archive was repacked by another tool: extract it and zip it "
                    + "again without compression (zip -0), or load and re-save it with torch.save")
        }
        guard entry.compressedSize == entry.size else {
            throw FormatError(
                "zip entry '\(entry.name)' is stored but its sizes differ (\(entry.compressedSize) and \(entry.size))")
        }
        let header = entry.localHeaderOffset
        guard data.littleEndian(UInt32.self, at: header) == Self.localHeaderSignature,
            let nameLength = data.littleEndian(UInt16.self, at: header + 26),
            let extraLength = data.littleEndian(UInt16.self, at: header + 28),
            let bytes = data.bytes(at: header + 30 + Int(nameLength) + Int(extraLength), count: entry.size)
        else {
            throw FormatError(
                "zip entry '\(entry.name)' lies outside the file or lacks its local header; the file may be truncated")
        }
        let checksum = Self.crc32(of: bytes)
        guard checksum == entry.crc32 else {
            throw FormatError(
                "zip entry '\(entry.name)' fails its CRC-32 check (recorded \(String(entry.crc32, radix: 16)), "
                    + "computed \(String(checksum, radix: 16))): the file is corrupt; download or copy it again")
        }
        return bytes
    }

    /// zlib's CRC-32 of `bytes`, fed in pieces of at most `UInt32.max` bytes (zlib's limit a call).
    private static func crc32(of bytes: Data) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            var crc: uLong = 0
            var start = 0
            while start < raw.count {
                let length = min(raw.count - start, Int(UInt32.max))
                let piece = raw.baseAddress!.advanced(by: start).assumingMemoryBound(to: Bytef.self)
                crc = CZlib.crc32(crc, piece, uInt(length))
                start += length
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }

    // MARK: central directory

    /// Finds the end of central directory record, searching back over a comment of up to
    /// 65535 bytes, and the zip64 record it may point to.
    private static func locateCentralDirectory(in data: Data) throws -> (offset: Int, count: Int) {
        let fixedSize = 22
        guard data.count >= fixedSize else {
            throw FormatError("a zip archive shorter than its end record; the file may be truncated")
        }
        let lowest = max(0, data.count - fixedSize - 0xFFFF)
        guard
            let end = stride(from: data.count - fixedSize, through: lowest, by: -1).first(where: {
                data.littleEndian(UInt32.self, at: $0) == endSignature
            })
        else {
            throw FormatError("a zip archive without its end of central directory record; the file may be truncated")
        }
        func field<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, _ offset: Int) -> T {
            // The record's 22 bytes lie inside the data: `end` was searched for below that.
            data.littleEndian(T.self, at: end + offset) ?? 0
        }
        let disk = field(UInt16.self, 4)
        let directoryDisk = field(UInt16.self, 6)
        var count = Int(field(UInt16.self, 10))
        var offset = Int(field(UInt32.self, 16))

        let locator = end - 20
        if locator >= 0, data.littleEndian(UInt32.self, at: locator) == zip64LocatorSignature {
            guard let recordOffset = data.littleEndian(UInt64.self, at: locator + 8).flatMap({ Int(exactly: $0) }),
                data.littleEndian(UInt32.self, at: recordOffset) == zip64EndSignature,
                let disk64 = data.littleEndian(UInt32.self, at: recordOffset + 16),
                let directoryDisk64 = data.littleEndian(UInt32.self, at: recordOffset + 20),
                let count64 = data.littleEndian(UInt64.self, at: recordOffset + 32).flatMap({ Int(exactly: $0) }),
                let offset64 = data.littleEndian(UInt64.self, at: recordOffset + 48).flatMap({ Int(exactly: $0) })
            else {
                throw FormatError(
                    "the zip64 end of central directory record is missing or cut short; the file may be truncated")
            }
            guard disk64 == 0, directoryDisk64 == 0 else {
                throw FormatError("a multi-volume zip archive is not supported")
            }
            (count, offset) = (count64, offset64)
        } else {
            guard disk == 0, directoryDisk == 0 else {
                throw FormatError("a multi-volume zip archive is not supported")
            }
        }
        return (offset, count)
    }

    /// Reads the central-directory record at `offset`; returns its entry and the next record's offset.
    private static func readCentralHeader(in data: Data, at offset: Int, index: Int) throws -> (Entry, Int) {
        guard data.littleEndian(UInt32.self, at: offset) == centralHeaderSignature,
            let flags = data.littleEndian(UInt16.self, at: offset + 8),
            let method = data.littleEndian(UInt16.self, at: offset + 10),
            let crc32 = data.littleEndian(UInt32.self, at: offset + 16),
            let compressed32 = data.littleEndian(UInt32.self, at: offset + 20),
            let size32 = data.littleEndian(UInt32.self, at: offset + 24),
            let nameLength = data.littleEndian(UInt16.self, at: offset + 28).map(Int.init),
            let extraLength = data.littleEndian(UInt16.self, at: offset + 30).map(Int.init),
            let commentLength = data.littleEndian(UInt16.self, at: offset + 32).map(Int.init),
            let headerOffset32 = data.littleEndian(UInt32.self, at: offset + 42),
            let nameBytes = data.bytes(at: offset + 46, count: nameLength),
            let extra = data.bytes(at: offset + 46 + nameLength, count: extraLength)
        else {
            throw FormatError(
                "zip central directory record \(index) is missing or cut short; the file may be truncated")
        }
        let name = String(data: nameBytes, encoding: .utf8) ?? String(decoding: nameBytes, as: UTF8.self)

        // A 32-bit field of all ones means the value is in the zip64 extra field, in this order.
        var size = Int(size32)
        var compressedSize = Int(compressed32)
        var headerOffset = Int(headerOffset32)
        let wide = UInt32.max
        if size32 == wide || compressed32 == wide || headerOffset32 == wide {
            var values = try zip64Values(in: extra, entry: name)
            func next() throws -> Int {
                guard !values.isEmpty else {
                    throw FormatError("zip entry '\(name)' lacks the zip64 sizes its record announces")
                }
                return values.removeFirst()
            }
            if size32 == wide { size = try next() }
            if compressed32 == wide { compressedSize = try next() }
            if headerOffset32 == wide { headerOffset = try next() }
        }
        let entry = Entry(
            name: name, method: method, flags: flags, crc32: crc32, compressedSize: compressedSize, size: size,
            localHeaderOffset: headerOffset)
        return (entry, offset + 46 + nameLength + extraLength + commentLength)
    }

    /// The 64-bit values of an entry's zip64 extra field (each extra field is a 2-byte id,
    /// a 2-byte length and that many bytes).
    private static func zip64Values(in extra: Data, entry name: String) throws -> [Int] {
        var offset = 0
        while let id = extra.littleEndian(UInt16.self, at: offset),
            let length = extra.littleEndian(UInt16.self, at: offset + 2)
        {
            guard let body = extra.bytes(at: offset + 4, count: Int(length)) else { break }
            if id == zip64ExtraID {
                return try stride(from: 0, to: body.count - 7, by: 8).map { position in
                    guard let value = body.littleEndian(UInt64.self, at: position).flatMap({ Int(exactly: $0) }) else {
                        throw FormatError("zip entry '\(name)' has a zip64 size or offset beyond 2^63")
                    }
                    return value
                }
            }
            offset += 4 + Int(length)
        }
        throw FormatError("zip entry '\(name)' lacks the zip64 extra field its record announces")
    }
}
