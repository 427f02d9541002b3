import Foundation
import Torch

/// ACDC, the Adverse Conditions Dataset with Correspondences: 1920x1080 driving frames in
/// fog, night, rain and snow, labelled in the Cityscapes classes (val: 100 frames per
/// condition, 106 for night).
///
/// C. Sakaridis, D. Dai, L. Van Gool, "ACDC: The Adverse Conditions Dataset with
/// Correspondences for Semantic Driving Scene Understanding", ICCV 2021.
///
/// Layout of `root` (rgb_anon_trainvaltest and gt_trainval archives):
///
/// ```
/// root/rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png
/// root/gt/<condition>/<split>/<sequence>/<name>_gt_labelIds.png
/// ```
///
/// Frames come condition by condition in the order given (default fog, night, rain, snow:
/// the continual Cityscapes -> ACDC stream), then by sequence folder and file name (byte
/// order). A frame's name is its file stem without "_rgb_anon" ("GOPR0475_frame_000041").
/// Labels map Cityscapes labelIds -> trainIds; everything else becomes `ignoreLabel`. The
/// test split has no public labels: open it with `requireLabels: false`.
public struct ACDC: SegmentationDataset, FrameNaming, FolderBenchmark {
    public enum Condition: String, CaseIterable, Sendable {
        case fog, night, rain, snow
    }

    public enum Split: String, CaseIterable, Sendable {
        case train, val, test
    }

    public static let layout =
        "expected the ACDC layout rgb_anon/<condition>/<split>/<sequence>/*_rgb_anon.png and "
        + "gt/<condition>/<split>/<sequence>/*_gt_labelIds.png (condition fog, night, rain or snow) under the "
        + "dataset root"

    public let root: URL
    public let conditions: [Condition]
    public let split: Split
    public let labelProtocol: LabelProtocol
    /// The frames in stream order.
    public let frames: [DatasetFrame]
    /// The condition of each frame.
    public let frameConditions: [Condition]

    /// "acdc-val" for all four conditions, else e.g. "acdc-fog-val" / "acdc-fog+night-val".
    public var name: String {
        let which =
            conditions == Condition.allCases ? "" : conditions.map(\.rawValue).joined(separator: "+") + "-"
        return "acdc-\(which)\(split.rawValue)\(labelProtocol.nameSuffix)"
    }
    public var classNames: [String] { labelProtocol.classNames }

    /// Lists the frames of `conditions` (in that order) and `split` under `root`.
    public init(
        root: URL, conditions: [Condition] = Condition.allCases, split: Split = .val,
        labelProtocol: LabelProtocol = .cityscapes19, requireLabels: Bool = true
    ) throws {
        guard !conditions.isEmpty else {
            throw DatasetError(path: root.path, problem: "no condition asked for", fix: "pass fog, night, rain or snow")
        }
        try BenchmarkLayout.requireFolder(root, layout: Self.layout)
        var frames = [DatasetFrame]()
        var frameConditions = [Condition]()
        for condition in conditions {
            let conditionFrames = try PairedFolders(
                images: root.appendingPathComponent("rgb_anon").appendingPathComponent(condition.rawValue)
                    .appendingPathComponent(split.rawValue),
                imageSuffix: "_rgb_anon.png",
                labels: root.appendingPathComponent("gt").appendingPathComponent(condition.rawValue)
                    .appendingPathComponent(split.rawValue),
                labelSuffix: "_gt_labelIds.png", nested: true, layout: Self.layout
            ).frames(requireLabels: requireLabels)
            frames += conditionFrames
            frameConditions += Array(repeating: condition, count: conditionFrames.count)
        }
        self.root = root
        self.conditions = conditions
        self.split = split
        self.labelProtocol = labelProtocol
        self.frames = frames
        self.frameConditions = frameConditions
    }

    /// Frame `index`: image [3, H, W] uint8 and label [H, W] int64 in the protocol's classes
    /// or `ignoreLabel`.
    public func sample(at index: Int) throws -> Sample {
        try loadSample(at: index, map: labelProtocol.cityscapesLabelIdMap)
    }
}
