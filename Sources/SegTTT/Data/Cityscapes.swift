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
public struct Cityscapes: SegmentationDataset, FrameNaming, FolderBenchmark {
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
        try BenchmarkLayout.requireFolder(root, layout: Self.layout)
        try BenchmarkLayout.requireFolder(images, layout: Self.layout)
        self.frames = try PairedFolders(
            images: images, imageSuffix: "_leftImg8bit.png",
            labels: root.appendingPathComponent("gtFine").appendingPathComponent(split.rawValue),
            labelSuffix: "_gtFine_labelIds.png", nested: true, layout: Self.layout
        ).frames(requireLabels: requireLabels)
        self.root = root
        self.split = split
        self.labelProtocol = labelProtocol
    }

    /// Frame `index`: image [3, H, W] uint8 and label [H, W] int64 in the protocol's classes
    /// or `ignoreLabel`.
    public func sample(at index: Int) throws -> Sample {
        try loadSample(at: index, map: labelProtocol.cityscapesLabelIdMap)
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
