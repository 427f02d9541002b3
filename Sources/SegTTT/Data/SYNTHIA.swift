import Foundation
import Torch

/// SYNTHIA-RAND-CITYSCAPES: 9,400 synthetic frames of 1280x760 with Cityscapes-compatible
/// classes, evaluated in the 16- or 13-class protocol.
///
/// G. Ros, L. Sellart, J. Materzynska, D. Vazquez, A. M. Lopez, "The SYNTHIA Dataset: A
/// Large Collection of Synthetic Images for Semantic Segmentation of Urban Scenes", CVPR 2016.
///
/// Layout of `root` (as the RAND_CITYSCAPES archive unpacks):
///
/// ```
/// root/RGB/0000000.png ...         RGB frames
/// root/GT/LABELS/0000000.png ...   16-bit PNGs: channel 1 (R) the class id, channel 2 (G)
///                                  the instance id
/// ```
///
/// What is implemented: the class id is the first channel of the label PNG, read at its full
/// 16 bits by `ImageIO.readLabel(_:channel:)` (as `imageio.imread(p, format="PNG-FI")[:, :, 0]`
/// in ADVENT, or `cv2.imread(p, cv2.IMREAD_UNCHANGED)[:, :, -1]` in DAFormer's converter).
/// Labels that are already one channel (gray or palette PNG, 8 or 16 bits, e.g. re-saved
/// class ids) are read as they are: their channel 0 is their value. Ids map through `ClassProtocols.synthiaIdToTrainId` to Cityscapes
/// trainIds, then to the 16-class (default) or 13-class protocol; void (0), parking-slot,
/// road-work, lanemarking and the classes a protocol drops become `ignoreLabel`.
public struct SYNTHIA: SegmentationDataset, FrameNaming, FolderBenchmark {
    public static let layout =
        "expected the SYNTHIA-RAND-CITYSCAPES layout RGB/*.png and GT/LABELS/*.png (same file names) under the "
        + "dataset root"

    public let root: URL
    public let labelProtocol: LabelProtocol
    /// The frames in stream order (file name, byte order).
    public let frames: [DatasetFrame]

    /// "synthia-16" or "synthia-13" (or "synthia" for the 19-class mapping).
    public var name: String { "synthia\(labelProtocol.nameSuffix)" }
    public var classNames: [String] { labelProtocol.classNames }

    /// Lists the frames under `root`; with `requireLabels` an image without its label is an
    /// error, otherwise its sample has no label.
    public init(root: URL, labelProtocol: LabelProtocol = .synthia16, requireLabels: Bool = true) throws {
        try BenchmarkLayout.requireFolder(root, layout: Self.layout)
        self.frames = try PairedFolders(
            images: root.appendingPathComponent("RGB"), imageSuffix: ".png",
            labels: root.appendingPathComponent("GT").appendingPathComponent("LABELS"), labelSuffix: ".png",
            layout: Self.layout
        ).frames(requireLabels: requireLabels)
        self.root = root
        self.labelProtocol = labelProtocol
    }

    /// Frame `index`: image [3, H, W] uint8 and label [H, W] int64 in the protocol's classes
    /// or `ignoreLabel`.
    public func sample(at index: Int) throws -> Sample {
        try loadSample(at: index, map: labelProtocol.synthiaIdMap, labelChannel: Self.classIdChannel)
    }

    /// The channel of a label PNG that holds the class id: the first (red; green holds the
    /// instance id).
    static let classIdChannel = 0

    /// The SYNTHIA class ids of a label PNG [H, W] int64: the first channel of an RGB or
    /// RGBA PNG at its full 8 or 16 bits, or the values of a one-channel PNG.
    public static func readClassIds(_ url: URL) throws -> Tensor {
        try ImageIO.readLabel(url, channel: classIdChannel)
    }
}
