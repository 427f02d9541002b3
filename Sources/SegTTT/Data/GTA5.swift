import Foundation
import Torch

/// GTA5 ("Playing for Data"): 24,966 synthetic frames of 1914x1052 rendered from the game,
/// labelled with Cityscapes labelIds.
///
/// S. R. Richter, V. Vineet, S. Roth, V. Koltun, "Playing for Data: Ground Truth from
/// Computer Games", ECCV 2016.
///
/// Layout of `root` (as the archives unpack):
///
/// ```
/// root/images/00001.png ...   RGB frames
/// root/labels/00001.png ...   labelIds (8-bit palette PNGs; the palette index is the id)
/// ```
///
/// Frames are ordered by file name (byte order: "00001" < "00002" ...). Labels map
/// labelIds -> the 19 Cityscapes trainIds (or a SYNTHIA protocol's subset), everything
/// else to `ignoreLabel`. A few GTA5 frames are distributed with a label of another size
/// than their image; such a label is resized to the image by nearest neighbour (what the
/// published pipelines end up doing by resizing both to one size) rather than refused.
public struct GTA5: SegmentationDataset, FrameNaming, FolderBenchmark {
    public static let layout =
        "expected the GTA5 layout images/*.png and labels/*.png (same file names) under the dataset root"

    public let root: URL
    public let labelProtocol: LabelProtocol
    /// The frames in stream order.
    public let frames: [DatasetFrame]

    /// "gta5" (with the protocol appended when it is not the 19-class one).
    public var name: String { "gta5\(labelProtocol.nameSuffix)" }
    public var classNames: [String] { labelProtocol.classNames }

    /// Lists the frames under `root`; with `requireLabels` an image without its label is an
    /// error, otherwise its sample has no label.
    public init(root: URL, labelProtocol: LabelProtocol = .cityscapes19, requireLabels: Bool = true) throws {
        try BenchmarkLayout.requireFolder(root, layout: Self.layout)
        self.frames = try PairedFolders(
            images: root.appendingPathComponent("images"), imageSuffix: ".png",
            labels: root.appendingPathComponent("labels"), labelSuffix: ".png", layout: Self.layout
        ).frames(requireLabels: requireLabels)
        self.root = root
        self.labelProtocol = labelProtocol
    }

    /// Frame `index`: image [3, H, W] uint8 and label [H, W] int64 (at the image's size).
    public func sample(at index: Int) throws -> Sample {
        let frame = try self.frame(at: index)
        let image = try ImageIO.readImage(frame.image)  // [3, H, W]
        guard let labelURL = frame.label else { return Sample(name: frame.name, image: image, label: nil) }
        var raw = try ImageIO.readLabel(labelURL)  // [H', W']
        let size = Pair(image.shape[1], image.shape[2])
        if raw.shape != [size.height, size.width] {
            raw = try Resize.label(raw, to: size)
        }
        let label = try labelProtocol.cityscapesLabelIdMap.apply(raw, file: labelURL, fix: Self.layout)
        return Sample(name: frame.name, image: image, label: label)
    }
}
