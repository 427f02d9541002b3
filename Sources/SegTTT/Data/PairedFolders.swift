import Foundation
import TorchNN

// The folder side of the benchmark readers (GTA5, SYNTHIA, Cityscapes, ACDC, NTHU
// cross-city): listing their layouts, pairing each image with its label file, and reading a
// listed frame. Each reader keeps only its folder names, file suffixes and label mapping.

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

/// An images folder and its labels folder whose files pair by name, e.g. GTA5's
/// `images/00001.png` with `labels/00001.png` or Cityscapes'
/// `leftImg8bit/val/<city>/<stem>_leftImg8bit.png` with `gtFine/val/<city>/<stem>_gtFine_labelIds.png`.
struct PairedFolders {
    let images: URL
    let labels: URL
    /// Whether the frames lie one subfolder down (a city, a sequence): `images/<sub>/<file>`
    /// pairs with `labels/<sub>/<label file>`, subfolders in byte order.
    let nested: Bool
    /// The frame name of an image file name, nil for a file that is no frame.
    let frameName: (String) -> String?
    /// The label file name of a frame name, nil for a split that has no labels.
    let labelFile: ((String) -> String)?
    /// What `images` should hold, for the error when it holds none (".png", "*/*_leftImg8bit.png").
    let wanted: String
    /// The expected layout, for error messages.
    let layout: String

    /// Pairs `images/<stem><imageSuffix>` with `labels/<stem><labelSuffix>`; the frame's name is `<stem>`.
    init(images: URL, imageSuffix: String, labels: URL, labelSuffix: String, nested: Bool = false, layout: String) {
        self.init(
            images: images, labels: labels, nested: nested,
            frameName: { file in
                file.hasSuffix(imageSuffix) && file.count > imageSuffix.count
                    ? String(file.dropLast(imageSuffix.count)) : nil
            },
            labelFile: { stem in stem + labelSuffix }, wanted: (nested ? "*/*" : "") + imageSuffix, layout: layout)
    }

    init(
        images: URL, labels: URL, nested: Bool = false, frameName: @escaping (String) -> String?,
        labelFile: ((String) -> String)?, wanted: String, layout: String
    ) {
        self.images = images
        self.labels = labels
        self.nested = nested
        self.frameName = frameName
        self.labelFile = labelFile
        self.wanted = wanted
        self.layout = layout
    }

    /// The frames in byte order (of subfolder, then file name).
    ///
    /// With `requireLabels` the labels folder and every frame's label must exist; otherwise a
    /// frame whose label is missing has none. An images folder without frames is an error.
    func frames(requireLabels: Bool) throws -> [DatasetFrame] {
        if requireLabels && labelFile != nil { try BenchmarkLayout.requireFolder(labels, layout: layout) }
        let folders =
            nested
            ? try BenchmarkLayout.subfolders(of: images, layout: layout).map {
                (images: images.appendingPathComponent($0), labels: labels.appendingPathComponent($0))
            } : [(images: images, labels: labels)]
        let frames = try folders.flatMap {
            try framesOfFolder($0.images, labels: $0.labels, requireLabels: requireLabels)
        }
        guard !frames.isEmpty else {
            throw DatasetError(path: images.path, problem: "holds no \(wanted) frame", fix: layout)
        }
        return frames
    }

    /// The frames of one folder of images (no subfolders), in byte order of file name.
    private func framesOfFolder(_ imageFolder: URL, labels labelFolder: URL, requireLabels: Bool) throws
        -> [DatasetFrame]
    {
        try BenchmarkLayout.contents(of: imageFolder, layout: layout).compactMap { file in
            let image = imageFolder.appendingPathComponent(file)
            guard let name = frameName(file), !BenchmarkLayout.isFolder(image) else { return nil }
            guard let labelFile else { return DatasetFrame(name: name, image: image, label: nil) }
            return try BenchmarkLayout.frame(
                name: name, image: image, label: labelFolder.appendingPathComponent(labelFile(name)),
                requireLabel: requireLabels, layout: layout)
        }
    }
}

/// A benchmark reader whose frames are listed when it is opened; it gets `count`,
/// `frameName(at:)` and frame loading from here.
protocol FolderBenchmark: SegmentationDataset, FrameNaming {
    /// The expected layout, for error messages.
    static var layout: String { get }
    var root: URL { get }
    /// The frames in stream order.
    var frames: [DatasetFrame] { get }
}

extension FolderBenchmark {
    public var count: Int { frames.count }

    /// The name of frame `index`, or "frame <index>" outside the frames.
    public func frameName(at index: Int) -> String {
        frames.indices.contains(index) ? frames[index].name : "frame \(index)"
    }

    /// `frames[index]`, or an error naming the dataset's root.
    func frame(at index: Int) throws -> DatasetFrame {
        guard frames.indices.contains(index) else {
            throw DatasetError(
                path: root.path, problem: "frame index \(index) is outside 0..<\(frames.count)",
                fix: "ask for an index below count")
        }
        return frames[index]
    }

    /// Frame `index`: image [3, H, W] uint8 and its label [H, W] int64 mapped by `map` (nil
    /// for an unlabelled frame); `labelChannel` as in `loadFrame`.
    func loadSample(at index: Int, map: LabelMap, labelChannel: Int? = nil) throws -> Sample {
        let frame = try self.frame(at: index)
        return try loadFrame(
            name: frame.name, image: frame.image, label: frame.label, map: map, fix: Self.layout,
            labelChannel: labelChannel)
    }
}

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
                path: folder.path, problem: "cannot be listed (\(FileFailure.reason(error)))", fix: layout)
        }
    }

    /// Subfolders of `folder` in byte order (files beside them ignored).
    static func subfolders(of folder: URL, layout: String) throws -> [String] {
        try contents(of: folder, layout: layout).filter { isFolder(folder.appendingPathComponent($0)) }
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
}
