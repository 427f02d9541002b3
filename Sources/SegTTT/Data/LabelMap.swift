import Foundation
import Torch

/// How raw label values stored in files become class indices of a dataset's protocol:
/// listed raw values map to a class index (0 ..< classCount) or to `ignoreLabel`, every
/// other raw value to `unlisted` (or is an error when `unlisted` is nil).
public struct LabelMap: Equatable, Sendable {
    /// Number of classes; class indices are 0 ..< classCount.
    public let classCount: Int
    /// Raw value -> class index or `ignoreLabel`.
    public let mapping: [Int: Int]
    /// What raw values missing from `mapping` become; nil makes them an error.
    public let unlisted: Int?

    /// Raw values outside 0...65535 cannot occur in an 8- or 16-bit PNG.
    static let rawRange = 0...65535

    /// A map whose raw values are already class indices, except `ignore` (the dataset's void
    /// value, e.g. 11 for CamVid, 255 for most), which becomes `ignoreLabel`. Other values are
    /// errors.
    public static func identity(classCount: Int, ignore: Int = ignoreLabel) -> LabelMap {
        var mapping = [Int: Int]()
        for c in 0..<classCount { mapping[c] = c }
        mapping[ignore] = ignoreLabel
        mapping[ignoreLabel] = ignoreLabel
        return LabelMap(classCount: classCount, mapping: mapping, unlisted: nil)
    }

    public init(classCount: Int, mapping: [Int: Int], unlisted: Int?) {
        self.classCount = classCount
        self.mapping = mapping
        self.unlisted = unlisted
        // Entries 0 ... largest listed value, then one slot for every raw value above it.
        let top = (mapping.keys.max() ?? 0) + 1
        var table = [Int64](repeating: Int64(unlisted ?? -1), count: max(top, 0) + 1)
        for (key, value) in mapping where key >= 0 { table[key] = Int64(value) }
        self.table = table
    }

    /// raw value -> class, ignoreLabel or -1 (not a class: an error); the last entry stands
    /// for every raw value beyond the others.
    private let table: [Int64]

    /// The classes of a raw label [H, W] int64 read from `file`; `fix` ends the error for a
    /// raw value the map does not know. Works on any device with libtorch ops.
    public func apply(_ raw: Tensor, file: URL, fix: String) throws -> Tensor {
        let top = table.count - 1
        let index = try raw.to(.int64).clamp(min: 0, max: Double(top)).reshape([-1])
        let lookup = try Tensor(table).to(device: raw.device)
        let classes = try lookup.indexSelect(dim: 0, index: index).reshape(raw.shape)
        if unlisted == nil, raw.count > 0, try classes.amin().itemInt() < 0 {
            let unknown = try Tensor.where(classes.lt(0), raw.to(.int64), Tensor(scalar: Int64(-1))).amax().itemInt()
            throw unknownValue(unknown, file: file, fix: fix)
        }
        return classes
    }

    /// The classes of decoded label pixels as [H, W] int64, looked up in Swift: the
    /// readers' path, which runs no libtorch op but the final copy (small parallel ops are
    /// slow on a decoding thread that shares the cores with the model).
    func apply(_ pixels: DecodedPixels, file: URL, fix: String) throws -> Tensor {
        let top = table.count - 1
        var unknown = -1
        var values = [Int64](repeating: 0, count: pixels.count)
        table.withUnsafeBufferPointer { table in
            pixels.withBytes { raw in
                values.withUnsafeMutableBufferPointer { out in
                    if pixels.bitDepth == 16 {
                        let source = raw.bindMemory(to: UInt16.self)
                        for i in 0..<out.count {
                            let value = Int(source[i])
                            let mapped = table[min(value, top)]
                            out[i] = mapped
                            if mapped < 0 && value > unknown { unknown = value }
                        }
                    } else {
                        let source = raw.bindMemory(to: UInt8.self)
                        for i in 0..<out.count {
                            let value = Int(source[i])
                            let mapped = table[min(value, top)]
                            out[i] = mapped
                            if mapped < 0 && value > unknown { unknown = value }
                        }
                    }
                }
            }
        }
        if unknown >= 0 { throw unknownValue(unknown, file: file, fix: fix) }
        return try Tensor(values, shape: [pixels.height, pixels.width])
    }

    private func unknownValue(_ value: Int, file: URL, fix: String) -> DatasetError {
        DatasetError(path: file.path, problem: "label value \(value) is not a class of this dataset", fix: fix)
    }
}
