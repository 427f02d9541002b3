import Foundation
import Torch

/// The NTHU cross-city benchmark: dash-cam frames of four cities (Rome, Rio, Tokyo, Taipei),
/// 100 labelled test frames each, in 13 classes.
///
/// Y.-H. Chen, W.-Y. Chen, Y.-T. Chen, B.-C. Tsai, Y.-C. F. Wang, M. Sun, "No More
/// Discrimination: Cross City Adaptation of Road Scene Segmenters", ICCV 2017.
///
/// Layout of `root` (the NTHU_Datasets archive; the one the published loaders read):
///
/// ```
/// root/<City>/Images/Test/<name>.png          RGB test frames (2048x1024)
/// root/<City>/Labels/Test/<name>_eval.png     Cityscapes labelIds of the 13 classes
/// root/<City>/Images/Train/<name>.jpg         unlabelled training frames (split .train)
/// ```
///
/// The labels store Cityscapes labelIds (road 7, sidewalk 8, building 11, traffic light 19,
/// traffic sign 20, vegetation 21, sky 23, person 24, rider 25, car 26, bus 28,
/// motorcycle 32, bicycle 33), mapped here to the 13-class protocol 0...12 in that order
/// (`LabelProtocol.synthia13`); every other id becomes `ignoreLabel`. Frames are ordered
/// by file name (byte order); other files in Labels/Test (colour renderings) are ignored.
public struct NTHUCrossCity: SegmentationDataset, FrameNaming, FolderBenchmark {
    public enum City: String, CaseIterable, Sendable {
        case rome = "Rome"
        case rio = "Rio"
        case tokyo = "Tokyo"
        case taipei = "Taipei"
    }

    public enum Split: String, CaseIterable, Sendable {
        /// The labelled frames (Images/Test, Labels/Test).
        case test = "Test"
        /// The unlabelled adaptation frames (Images/Train), for self-training baselines.
        case train = "Train"
    }

    public static let layout =
        "expected the NTHU cross-city layout <City>/Images/Test/*.png and <City>/Labels/Test/*_eval.png "
        + "(City one of Rome, Rio, Tokyo, Taipei) under the dataset root"

    /// The label protocol: the 13 SYNTHIA-protocol classes.
    public static let labelProtocol = LabelProtocol.synthia13

    public let root: URL
    public let city: City
    public let split: Split
    /// The frames in stream order.
    public let frames: [DatasetFrame]

    /// "nthu-rome" (or "nthu-rome-train").
    public var name: String { "nthu-\(city.rawValue.lowercased())\(split == .test ? "" : "-train")" }
    public var classNames: [String] { Self.labelProtocol.classNames }

    /// Lists the frames of `city` under `root`. The test split needs every frame's label
    /// unless `requireLabels` is false; the train split has none.
    public init(root: URL, city: City, split: Split = .test, requireLabels: Bool = true) throws {
        let cityRoot = root.appendingPathComponent(city.rawValue)
        try BenchmarkLayout.requireFolder(root, layout: Self.layout)
        try BenchmarkLayout.requireFolder(cityRoot, layout: Self.layout)
        self.frames = try PairedFolders(
            images: cityRoot.appendingPathComponent("Images").appendingPathComponent(split.rawValue),
            labels: cityRoot.appendingPathComponent("Labels").appendingPathComponent(split.rawValue),
            frameName: Self.frameName(ofImage:), labelFile: split == .test ? { stem in stem + "_eval.png" } : nil,
            wanted: ".png or .jpg", layout: Self.layout
        ).frames(requireLabels: requireLabels)
        self.root = root
        self.city = city
        self.split = split
    }

    /// Frame `index`: image [3, H, W] uint8 and label [H, W] int64 in 0...12 or
    /// `ignoreLabel` (nil for the train split).
    public func sample(at index: Int) throws -> Sample {
        try loadSample(at: index, map: Self.labelProtocol.cityscapesLabelIdMap)
    }

    /// The frame name of an image file: its stem for a .png, .jpg or .jpeg file (any case),
    /// nil for any other file.
    static func frameName(ofImage file: String) -> String? {
        let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]
        guard imageExtensions.contains((file as NSString).pathExtension.lowercased()) else { return nil }
        return (file as NSString).deletingPathExtension
    }
}
