import Foundation
import TorchNN
import Torch

/// A dataset that cannot be opened or a frame of it that cannot be used: names the path,
/// what is wrong, and the fix.
public struct DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file or folder at fault.
    public let path: String
    /// What is wrong with it.
    public let problem: String
    /// How to fix it.
    public let fix: String

    public init(path: String, problem: String, fix: String) {
        self.path = path
        self.problem = problem
        self.fix = fix
    }

    /// The whole text: "path: problem; fix".
    public var message: String { "\(path): \(problem); \(fix)" }

    public var description: String { message }

    /// A label whose size differs from its image's; names both files.
    static func sizeMismatch(image: URL, imageShape: [Int], label: URL, labelShape: [Int]) -> DatasetError {
        func size(_ shape: [Int]) -> String {
            shape.count >= 2 ? "\(shape[shape.count - 1])x\(shape[shape.count - 2])" : "\(shape)"
        }
        return DatasetError(
            path: label.path,
            problem:
                "the label is \(size(labelShape)) (width x height) but its image \(image.path) is \(size(imageShape))",
            fix: "pair each image with its own label, or resize the label with nearest neighbour (Resize.label)")
    }
}

/// Loads one labelled frame and checks that its label has its image's size; shared by the
/// datasets of this folder.
///
/// - Parameters:
///   - labelChannel: the channel of the label PNG that holds the raw values (SYNTHIA: 0, the
///     red channel of RGB files; see `ImageIO.readLabel(_:channel:)`); nil reads one-channel
///     labels only (`ImageIO.readLabel(_:)`).
func loadFrame(
    name: String, image imageURL: URL, label labelURL: URL?, map: LabelMap, fix: String, labelChannel: Int? = nil
) throws -> Sample {
    let image = try ImageIO.readImage(imageURL)  // [3, H, W]
    guard let labelURL else { return Sample(name: name, image: image, label: nil) }
    let raw = try ImageIO.readLabelPixels(labelURL, channel: labelChannel)  // [H, W] values
    let labelShape = [raw.height, raw.width]
    guard labelShape == Array(image.shape.dropFirst()) else {
        throw DatasetError.sizeMismatch(
            image: imageURL, imageShape: image.shape, label: labelURL, labelShape: labelShape)
    }
    return Sample(name: name, image: image, label: try map.apply(raw, file: labelURL, fix: fix))
}

/// A labelled image folder of any origin:
///
/// ```
/// root/
///   images/      a.png, b.jpg, c.jpeg ...   (RGB or gray; matched to labels by file stem)
///   labels/      a.png, b.png, c.png ...    (one raw value per pixel: gray or palette PNG)
///   classes.json {"classes": ["road", "car", ...], "ignore": 255, "mapping": {"7": 0, "26": 1}}
/// ```
///
/// In classes.json, `classes` names the classes (index = class label); `ignore` (default
/// 255) is the raw value of void pixels; `mapping` (optional) maps raw values (keys, as
/// strings) to class indices, or to the ignore value, and every raw value it does not list
/// becomes `ignoreLabel` (as Cityscapes' label ids become train ids). Without `mapping`,
/// raw values are class indices and any other value than `ignore` is an error.
///
/// Frames are in order of file name (byte order). With `requireLabels` false, images
/// without a label (or a folder without labels/) give samples whose label is nil.
public struct FolderDataset: SegmentationDataset, FrameNaming {
    /// One image and its label file.
    public struct Frame: Equatable, Sendable {
        /// The file stem, shared by image and label.
        public let name: String
        public let image: URL
        /// Nil for an unlabelled frame (only with `requireLabels` false).
        public let label: URL?
    }

    /// The contents of classes.json.
    public struct Classes: Codable, Equatable, Sendable {
        public var classes: [String]
        /// Raw value of void pixels; 255 when absent.
        public var ignore: Int?
        /// Raw value (as a decimal string) -> class index.
        public var mapping: [String: Int]?
    }

    /// The example shown in classes.json errors.
    static let classesExample =
        #"{"classes": ["road", "car"], "ignore": 255, "mapping": {"7": 0, "26": 1}} ("mapping" optional)"#

    /// Extensions of image files, lower case.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    public let root: URL
    /// The folder's name.
    public let name: String
    public let classNames: [String]
    /// classes.json as read.
    public let classesFile: Classes
    /// How raw label values become class indices.
    public let labelMap: LabelMap
    /// The frames in stream order.
    public let frames: [Frame]

    public var count: Int { frames.count }

    /// Opens the dataset at `root`, listing images and labels and reading classes.json.
    public init(root: URL, requireLabels: Bool = true) throws {
        self.root = root
        self.name = root.lastPathComponent
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw DatasetError(
                path: root.path, problem: "no such folder",
                fix: "give a folder holding images/, labels/ and classes.json")
        }
        let classes = try Self.readClasses(root.appendingPathComponent("classes.json"))
        self.classesFile = classes.file
        self.classNames = classes.file.classes
        self.labelMap = classes.map

        let imageFolder = root.appendingPathComponent("images")
        let images = try Self.listFiles(imageFolder, extensions: Self.imageExtensions, role: "images")
        let labelFolder = root.appendingPathComponent("labels")
        let hasLabels = fm.fileExists(atPath: labelFolder.path)
        if requireLabels && !hasLabels {
            throw DatasetError(
                path: labelFolder.path, problem: "missing",
                fix: "put one PNG label per image in labels/ (same file stem), or open with requireLabels: false")
        }
        let labels = hasLabels ? try Self.listFiles(labelFolder, extensions: ["png"], role: "labels") : [:]
        guard !images.isEmpty else {
            throw DatasetError(
                path: imageFolder.path, problem: "holds no .png, .jpg or .jpeg image", fix: "put the frames there")
        }

        var frames = [Frame]()
        var unlabelled = [String]()
        for stem in images.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let image = images[stem] else { continue }
            let label = labels[stem]
            if label == nil { unlabelled.append(stem) }
            frames.append(Frame(name: stem, image: image, label: label))
        }
        if requireLabels, let first = unlabelled.first, let image = images[first] {
            let others = (try? fm.contentsOfDirectory(atPath: labelFolder.path)) ?? []
            let near = others.filter { ($0 as NSString).deletingPathExtension == first }
            let hint = near.isEmpty ? "" : " (labels/ has \(near.joined(separator: ", ")); labels must be .png)"
            throw DatasetError(
                path: image.path,
                problem: "has no label \(labelFolder.appendingPathComponent(first + ".png").path)\(hint)"
                    + (unlabelled.count > 1 ? "; \(unlabelled.count) images lack one" : ""),
                fix: "add the labels, remove the images, or open with requireLabels: false")
        }
        let orphans = Set(labels.keys).subtracting(images.keys).sorted()
        if let first = orphans.first, let label = labels[first] {
            throw DatasetError(
                path: label.path,
                problem: "has no image \(first).png/.jpg/.jpeg in images/"
                    + (orphans.count > 1 ? "; \(orphans.count) labels lack one" : ""),
                fix: "name each label like its image (same stem), or remove the extra labels")
        }
        self.frames = frames
    }

    /// Frame `index`: its image [3, H, W] uint8 and label [H, W] int64 in class indices.
    public func sample(at index: Int) throws -> Sample {
        guard frames.indices.contains(index) else {
            throw DatasetError(
                path: root.path, problem: "frame index \(index) is outside 0..<\(frames.count)",
                fix: "ask for an index below count")
        }
        let frame = frames[index]
        let fix =
            "list it in classes.json's \"mapping\", or make labels hold class indices 0...\(classNames.count - 1) "
            + "and the ignore value"
        return try loadFrame(name: frame.name, image: frame.image, label: frame.label, map: labelMap, fix: fix)
    }

    public func frameName(at index: Int) -> String {
        frames.indices.contains(index) ? frames[index].name : "frame \(index)"
    }

    /// Files of `folder` with one of `extensions`, by file stem; two files with one stem are
    /// an error.
    private static func listFiles(_ folder: URL, extensions: Set<String>, role: String) throws -> [String: URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        } catch {
            throw DatasetError(
                path: folder.path, problem: "cannot be listed (\(FileFailure.reason(error)))",
                fix: "create the \(role)/ folder of the dataset layout images/, labels/, classes.json")
        }
        var files = [String: URL]()
        for name in names where !name.hasPrefix(".") {
            let ext = (name as NSString).pathExtension.lowercased()
            guard extensions.contains(ext) else { continue }
            let stem = (name as NSString).deletingPathExtension
            let url = folder.appendingPathComponent(name)
            if let other = files[stem] {
                let pair = [other.lastPathComponent, name].sorted()
                throw DatasetError(
                    path: folder.path, problem: "holds both \(pair[0]) and \(pair[1])",
                    fix: "keep one file per frame name")
            }
            files[stem] = url
        }
        return files
    }

    /// Class names and label map from classes.json.
    static func readClasses(_ url: URL) throws -> (file: Classes, map: LabelMap) {
        if let problem = FileFailure.notAFile(url), FileManager.default.fileExists(atPath: url.path) {
            throw DatasetError(path: url.path, problem: problem, fix: "write the class list as JSON: \(classesExample)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let missing = !FileManager.default.fileExists(atPath: url.path)
            throw DatasetError(
                path: url.path, problem: missing ? "missing" : "cannot be read (\(FileFailure.reason(error)))",
                fix: "write the class list as JSON: \(classesExample)")
        }
        let parsed: Classes
        do {
            parsed = try JSONDecoder().decode(Classes.self, from: data)
        } catch {
            throw DatasetError(
                path: url.path, problem: "is not valid classes JSON (\(describe(error)))",
                fix: "write it as \(classesExample)")
        }
        func bad(_ problem: String) -> DatasetError {
            DatasetError(path: url.path, problem: problem, fix: "write it as \(classesExample)")
        }
        let count = parsed.classes.count
        guard count > 0 else { throw bad("\"classes\" is empty") }
        // Classes are matched to a model's by name, so a repeated name would leave one of its
        // indices without any prediction.
        var seen = [String: Int]()
        for (index, name) in parsed.classes.enumerated() {
            if let first = seen[name] {
                throw bad("\"classes\" names '\(name)' twice (indices \(first) and \(index)); give each class its own name")
            }
            seen[name] = index
        }
        guard count < ignoreLabel else {
            throw bad("\(count) classes; at most \(ignoreLabel - 1) fit below ignoreLabel")
        }
        let ignore = parsed.ignore ?? ignoreLabel
        guard LabelMap.rawRange.contains(ignore) else { throw bad("\"ignore\" \(ignore) is outside 0...65535") }
        guard let rawMapping = parsed.mapping else {
            guard ignore >= count else {
                throw bad(
                    "\"ignore\" \(ignore) is also a class index (0...\(count - 1)); give a \"mapping\" or another ignore value"
                )
            }
            return (parsed, LabelMap.identity(classCount: count, ignore: ignore))
        }
        var mapping = [Int: Int]()
        for (key, value) in rawMapping {
            guard let raw = Int(key), LabelMap.rawRange.contains(raw) else {
                throw bad("mapping key \"\(key)\" is not a raw label value 0...65535")
            }
            guard raw != ignore else { throw bad("mapping lists the ignore value \(ignore)") }
            if (0..<count).contains(value) {
                mapping[raw] = value
            } else if value == ignore || value == ignoreLabel {
                mapping[raw] = ignoreLabel
            } else {
                throw bad("mapping \"\(key)\": \(value) is neither a class index 0...\(count - 1) nor the ignore value")
            }
        }
        mapping[ignore] = ignoreLabel
        return (parsed, LabelMap(classCount: count, mapping: mapping, unlisted: ignoreLabel))
    }

    /// A decoding error in words, with the JSON path where it happened.
    private static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.isEmpty
                ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case DecodingError.keyNotFound(let key, _):
            return "no \"\(key.stringValue)\" key"
        case DecodingError.typeMismatch(let type, let context):
            return "\(path(context.codingPath)) is not \(type == String.self ? "a string" : "\(type)")"
        case DecodingError.valueNotFound(_, let context):
            return "\(path(context.codingPath)) is null"
        case DecodingError.dataCorrupted(let context):
            let underlying = context.underlyingError.map { " \(FileFailure.syntaxReason($0))" } ?? ""
            return "\(context.debugDescription)\(underlying)"
        default:
            return "\(error)"
        }
    }
}
