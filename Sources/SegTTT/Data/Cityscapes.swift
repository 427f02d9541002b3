import Foundation
import Torch

/// Cityscapes fine annotations: 2048x1024 frames of 50 cities (val: 500 frames of
/// frankfurt, lindau and munster).
///
/// M. Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding",
/// CVPR 2016.
///
/// Layout of `root` (as the leftImg8bit_trainvaltest and gtFine_trainvaltest archives
/// unpack):
///
/// ```
/// root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
/// root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
/// ```
///
/// Frames are ordered by city, then file name (byte order); a frame's name is its file
/// stem without "_leftImg8bit" ("frankfurt_000000_000294"). Labels hold Cityscapes
/// labelIds, mapped to the 19 trainIds (or a SYNTHIA protocol's subset, for SYNTHIA ->
/// Cityscapes evaluation); every other id becomes `ignoreLabel`.
public struct Cityscapes: SegmentationDataset, FrameNaming {
    public enum Split: String, CaseIterable, Sendable {
        case train, val, test
    }

    /// The expected layout, for error messages.
    public static let layout =
        "expected the Cityscapes layout leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
        + "gtFine/<split>/<city>/*_gtFine_labelIds.png under the dataset root"

    public let root: URL
    public let split: Split
    public let labelProtocol: LabelProtocol
    /// The frames in stream order.
    public let frames: [DatasetFrame]

    /// "cityscapes-val" (with the protocol appended when it is not the 19-class one).
    public var name: String { "cityscapes-\(split.rawValue)\(labelProtocol.nameSuffix)" }
    public var classNames: [String] { labelProtocol.classNames }
    public var count: Int { frames.count }

    /// Lists the frames of `split` under `root`.
    ///
    /// - Parameters:
    ///   - labelProtocol: the classes labels are mapped to (19, or SYNTHIA's 16 or 13).
    ///   - requireLabels: whether an image without its label file is an error; otherwise
    ///     its sample has no label.
    public init(
        root: URL, split: Split = .val, labelProtocol: LabelProtocol = .cityscapes19, requireLabels: Bool = true
    ) throws {
        let images = root.appendingPathComponent("leftImg8bit").appendingPathComponent(split.rawValue)
        let labels = root.appendingPathComponent("gtFine").appendingPathComponent(split.rawValue)
        try BenchmarkLayout.requireFolder(root, layout: Self.layout)
        try BenchmarkLayout.requireFolder(images, layout: Self.layout)
        if requireLabels { try BenchmarkLayout.requireFolder(labels, layout: Self.layout) }
        var frames = [DatasetFrame]()
        for city in try BenchmarkLayout.subfolders(of: images, layout: Self.layout) {
            let cityImages = images.appendingPathComponent(city)
            for file in try BenchmarkLayout.files(in: cityImages, suffix: "_leftImg8bit.png", layout: Self.layout) {
                let stem = String(file.dropLast("_leftImg8bit.png".count))
                let label = labels.appendingPathComponent(city).appendingPathComponent(stem + "_gtFine_labelIds.png")
                frames.append(
                    try BenchmarkLayout.frame(
                        name: stem, image: cityImages.appendingPathComponent(file), label: label,
                        requireLabel: requireLabels, layout: Self.layout))
            }
        }
        guard !frames.isEmpty else {
            throw DatasetError(path: images.path, problem: "holds no */*_leftImg8bit.png frame", fix: Self.layout)
        }
        self.root = root
        self.split = split
        self.labelProtocol = labelProtocol
        self.frames = frames
    }

    /// Frame `index`: image [3, H, W] uint8 and label [H, W] int64 in the protocol's classes
    /// or `ignoreLabel`.
    public func sample(at index: Int) throws -> Sample {
        let frame = try BenchmarkLayout.frame(at: index, of: frames, root: root)
        return try loadFrame(
            name: frame.name, image: frame.image, label: frame.label, map: labelProtocol.cityscapesLabelIdMap,
            fix: Self.layout)
    }

    public func frameName(at index: Int) -> String { BenchmarkLayout.frameName(at: index, of: frames) }
}

/// One frame of a benchmark: its name and files.
public struct DatasetFrame: Equatable, Sendable {
    /// Unique within the dataset, e.g. "frankfurt_000000_000294".
    public let name: String
    public let image: URL
    /// Nil for an unlabelled frame.
    public let label: URL?

    public init(name: String, image: URL, label: URL?) {
        self.name = name
        self.image = image
        self.label = label
    }
}

extension LabelProtocol {
    /// "" for the 19 Cityscapes classes, "-16" / "-13" for the SYNTHIA protocols.
    var nameSuffix: String {
        switch self {
        case .cityscapes19: return ""
        case .synthia16: return "-16"
        case .synthia13: return "-13"
        }
    }
}

// MARK: - Listing the benchmark layouts (shared by the readers of this folder)

/// Folder listing for the benchmark readers: sorted (byte order), hidden files skipped,
/// every failure a `DatasetError` naming the path and the expected layout.
enum BenchmarkLayout {
    /// Byte order of UTF-8 names, the same on every platform and locale.
    static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func isFolder(_ url: URL) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &folder) && folder.boolValue
    }

    static func requireFolder(_ url: URL, layout: String) throws {
        guard isFolder(url) else {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw DatasetError(
                path: url.path, problem: exists ? "is a file, not a folder" : "no such folder", fix: layout)
        }
    }

    /// Names in `folder`, hidden ones skipped, in byte order.
    static func contents(of folder: URL, layout: String) throws -> [String] {
        try requireFolder(folder, layout: layout)
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder.path)
                .filter { !$0.hasPrefix(".") }.sorted(by: precedes)
        } catch {
            throw DatasetError(
                path: folder.path, problem: "cannot be listed (\(error.localizedDescription))", fix: layout)
        }
    }

    /// Subfolders of `folder` in byte order (files beside them ignored).
    static func subfolders(of folder: URL, layout: String) throws -> [String] {
        try contents(of: folder, layout: layout).filter { isFolder(folder.appendingPathComponent($0)) }
    }

    /// Files of `folder` whose names end in `suffix`, in byte order.
    static func files(in folder: URL, suffix: String, layout: String) throws -> [String] {
        try contents(of: folder, layout: layout).filter {
            $0.hasSuffix(suffix) && $0.count > suffix.count && !isFolder(folder.appendingPathComponent($0))
        }
    }

    /// A frame whose label is `label` if that file exists; a missing label is an error
    /// naming both paths when `requireLabel`, else an unlabelled frame.
    static func frame(name: String, image: URL, label: URL, requireLabel: Bool, layout: String) throws
        -> DatasetFrame
    {
        if FileManager.default.fileExists(atPath: label.path) {
            return DatasetFrame(name: name, image: image, label: label)
        }
        guard !requireLabel else {
            throw DatasetError(
                path: image.path, problem: "has no label \(label.path)",
                fix: layout + " (or open the dataset with requireLabels: false)")
        }
        return DatasetFrame(name: name, image: image, label: nil)
    }

    /// `frames[index]`, or an error naming the dataset's root.
    static func frame(at index: Int, of frames: [DatasetFrame], root: URL) throws -> DatasetFrame {
        guard frames.indices.contains(index) else {
            throw DatasetError(
                path: root.path, problem: "frame index \(index) is outside 0..<\(frames.count)",
                fix: "ask for an index below count")
        }
        return frames[index]
    }

    static func frameName(at index: Int, of frames: [DatasetFrame]) -> String {
        frames.indices.contains(index) ? frames[index].name : "frame \(index)"
    }
}
