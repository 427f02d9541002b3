import Foundation
import TorchNN
import Torch

/// The CamVid test split in the SegNet tutorial's 11-class protocol: 233 driving frames of
/// 480x360, 62 filmed at dusk (sequence 0001TP) and 171 by day (Seq05VD).
///
/// G. J. Brostow, J. Fauqueur, R. Cipolla, "Semantic object classes in video: a
/// high-definition ground truth database", Pattern Recognition Letters 30(2), 2009.
///
/// Layout of `root` (as the SegNet tutorial ships it):
///
/// ```
/// root/test/*.png        RGB frames
/// root/testannot/*.png   one uint8 label per pixel: 0...10 the classes, 11 void
/// root/test.txt          "image label" path pairs, one frame a line, in stream order
/// ```
///
/// The paths in test.txt may be the tutorial's absolute paths
/// (`/SegNet/CamVid/test/0001TP_008550.png`); each is resolved under `root` by its last
/// two components. Void (11) becomes `ignoreLabel`. Files are read when a frame is asked
/// for, so that a stream can skip a damaged frame.
public struct CamVid: SegmentationDataset, FrameNaming {
    /// Class names, index = label value.
    public static let classes = ClassNames.camVid
    /// The raw label value of void pixels in the annotation files.
    public static let voidLabel = 11

    /// A video sequence of the test split, named by its frames' prefix.
    public enum Sequence: String, CaseIterable, Sendable {
        /// `0001TP_*`: 62 frames filmed at dusk.
        case dusk = "0001TP"
        /// `Seq05VD_*`: 171 frames filmed by day.
        case day = "Seq05VD"

        /// The sequence of a frame name such as "0001TP_008550" (prefix, underscore, frame
        /// number); nil for other prefixes.
        public init?(frameName: String) {
            let parts = frameName.split(separator: "_", maxSplits: 1)
            guard parts.count == 2, let sequence = Sequence(rawValue: String(parts[0])) else { return nil }
            self = sequence
        }
    }

    /// One frame: its name, files, and sequence.
    public struct Frame: Equatable, Sendable {
        /// The file stem, e.g. "0001TP_008550".
        public let name: String
        public let image: URL
        public let label: URL
        /// Nil for a frame of another sequence than the test split's two.
        public let sequence: Sequence?
    }

    public let root: URL
    /// "camvid", or "camvid-day" / "camvid-dusk" for one sequence.
    public let name: String
    /// The frames in stream order (the order of test.txt).
    public let frames: [Frame]

    public var classNames: [String] { Self.classes }
    public var count: Int { frames.count }

    /// Raw values 0...10 stay, 11 (void) and 255 become `ignoreLabel`.
    static let labelMap = LabelMap.identity(classCount: classes.count, ignore: voidLabel)

    /// Opens the test split at `root` from its test.txt; with `sequence`, only that
    /// sequence's frames (in the same order).
    public init(root: URL, sequence: Sequence? = nil) throws {
        let layout = "expected the CamVid layout test/, testannot/, test.txt (as in the SegNet tutorial)"
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw DatasetError(path: root.path, problem: "no such folder", fix: layout)
        }
        let list = root.appendingPathComponent("test.txt")
        guard fm.fileExists(atPath: list.path) else {
            throw DatasetError(path: root.path, problem: "has no test.txt", fix: layout)
        }
        for folder in ["test", "testannot"] {
            let url = root.appendingPathComponent(folder)
            guard fm.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue else {
                throw DatasetError(path: root.path, problem: "has no \(folder)/ folder", fix: layout)
            }
        }
        let text: String
        do {
            text = try String(contentsOf: list, encoding: .utf8)
        } catch {
            throw DatasetError(path: list.path, problem: "cannot be read (\(FileFailure.reason(error)))", fix: layout)
        }
        var frames = [Frame]()
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 2 else {
                throw DatasetError(
                    path: list.path,
                    problem:
                        "line \(number + 1) has \(fields.count) fields (\"\(line)\"), not an image and a label path",
                    fix: "write one \"test/NAME.png testannot/NAME.png\" pair a line")
            }
            let image = Self.resolve(String(fields[0]), under: root)
            let name = image.deletingPathExtension().lastPathComponent
            frames.append(
                Frame(
                    name: name, image: image, label: Self.resolve(String(fields[1]), under: root),
                    sequence: Sequence(frameName: name)))
        }
        guard !frames.isEmpty else {
            throw DatasetError(path: list.path, problem: "lists no frames", fix: layout)
        }
        self.init(root: root, name: "camvid", frames: frames)
        if let sequence { self = self.only(sequence) }
    }

    private init(root: URL, name: String, frames: [Frame]) {
        self.root = root
        self.name = name
        self.frames = frames
    }

    /// The frames of one sequence only, in the same order: the day-only or dusk-only stream.
    public func only(_ sequence: Sequence) -> CamVid {
        CamVid(root: root, name: "camvid-\(sequence)", frames: frames.filter { $0.sequence == sequence })
    }

    /// The sequence of a frame name ("0001TP_008550" is dusk); nil for other prefixes.
    public static func sequence(of frameName: String) -> Sequence? {
        Sequence(frameName: frameName)
    }

    /// Frame `index`: image [3, 360, 480] uint8 and label [360, 480] int64 in 0...10 or
    /// `ignoreLabel`.
    public func sample(at index: Int) throws -> Sample {
        guard frames.indices.contains(index) else {
            throw DatasetError(
                path: root.path, problem: "frame index \(index) is outside 0..<\(frames.count)",
                fix: "ask for an index below count")
        }
        let frame = frames[index]
        return try loadFrame(
            name: frame.name, image: frame.image, label: frame.label, map: Self.labelMap,
            fix: "CamVid labels hold 0...10 and 11 (void); this looks like another annotation set "
                + "(the 32-class CamVid?), use the SegNet tutorial's testannot/")
    }

    public func frameName(at index: Int) -> String {
        frames.indices.contains(index) ? frames[index].name : "frame \(index)"
    }

    /// `path` from test.txt (absolute or relative) resolved under `root` by its last two
    /// components ("test/NAME.png").
    static func resolve(_ path: String, under root: URL) -> URL {
        let parts = path.split(separator: "/").suffix(2)
        return parts.reduce(root) { $0.appendingPathComponent(String($1)) }
    }
}
