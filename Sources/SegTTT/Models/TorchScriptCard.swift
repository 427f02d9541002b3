import Foundation
import Torch
import Yams

/// What SegTTT needs to know about a TorchScript file that the file does not say: the model
/// card file (`FILE.yaml` or `FILE.json` beside `FILE.pt`, or any file given explicitly).
///
/// Keys (YAML shown; JSON takes the same names):
///
///     name: cgnet-camvid                  # optional; default: the file's name
///     classes: [Sky, Building, ...]       # the task's classes, in output order
///     no_class_outputs: [void]            # optional: outputs after the classes that are no class
///     input:                              # y = (x - mean) / std * scale, x in 0...255
///       channel_order: RGB                # RGB or BGR
///       scale: 1.0                        # optional, 1
///       mean: [105.66, 103.33, 99.63]
///       std: [1, 1, 1]                    # optional, ones
///     output: tensor                      # tensor | N (tuple/list element) | NAME (dict key)
///     logits_resolution: input            # input | lower (brought to the input's size)
///     upsample: {mode: bilinear, align_corners: false}   # with lower; bilinear or nearest
///     head: [classifier]                  # optional: submodules of the classifier head
///     side_multiple: 8                    # optional, 1: frames are padded to multiples of it
public struct TorchScriptCard: Equatable, Sendable {
    public var card: ModelCard
    /// Which part of the forward pass's output holds the logits.
    public var output: ScriptOutput
    /// How logits below the input's resolution are brought to it; nil: they are at the input's.
    public var upsampling: InterpolationMode?
    /// Dotted names of the submodules that form the classifier head.
    public var headModules: [String]
    /// Frames are padded at the bottom and right to sides that are multiples of this.
    public var sideMultiple: Int

    public init(
        card: ModelCard, output: ScriptOutput = .tensor, upsampling: InterpolationMode? = nil,
        headModules: [String] = [], sideMultiple: Int = 1
    ) {
        self.card = card
        self.output = output
        self.upsampling = upsampling
        self.headModules = headModules
        self.sideMultiple = sideMultiple
    }

    /// An error in a card file: the file, the key, what is wrong and an example of the key.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var file: String
        public var key: String
        public var problem: String
        public var example: String

        public var description: String {
            "model card \(file): \(key) \(problem); write e.g. \(example)"
        }
    }

    /// The card file beside `model`: its name with .yaml, .yml or .json in place of its
    /// extension, or with that appended ("net.pt.yaml"); nil when there is none.
    public static func file(beside model: URL) -> URL? {
        let stem = model.deletingPathExtension()
        let candidates = ["yaml", "yml", "json"].flatMap { [stem.appendingPathExtension($0), model.appendingPathExtension($0)] }
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Reads a card file (.json as JSON, anything else as YAML, of which JSON is a subset).
    public static func read(_ url: URL) throws -> TorchScriptCard {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw Error(file: url.path, key: "the file", problem: "cannot be read as UTF-8 text", example: template)
        }
        return try parse(text, file: url.path, defaultName: url.deletingPathExtension().lastPathComponent)
    }

    /// Parses a card's text; `file` names it in errors.
    public static func parse(_ text: String, file: String, defaultName: String = "torchscript") throws
        -> TorchScriptCard
    {
        let object: Any?
        do {
            object = try Yams.load(yaml: text)
        } catch {
            throw Error(
                file: file, key: "the file",
                problem: "is neither YAML nor JSON (\("\(error)".split(separator: "\n").joined(separator: " "))",
                example: "classes: [road, car]")
        }
        guard let root = object as? [String: Any] else {
            throw Error(
                file: file, key: "the file", problem: "holds no mapping of keys",
                example: "classes: [road, car] on its own line")
        }
        return try CardReader(file: file, root: root).card(defaultName: defaultName)
    }

    /// A card to fill in, for a model with `outputs` logit channels and the given output form.
    public static func template(
        name: String = "my-network", outputs: Int = 2, output: ScriptOutput = .tensor, lowerResolution: Bool = false
    ) -> String {
        let classes = (0..<outputs).map { "class\($0)" }.joined(separator: ", ")
        return """
            name: \(name)
            classes: [\(classes)]   # the task's classes, in output order
            no_class_outputs: []     # outputs after the classes that are no class (background, void)
            input:
              channel_order: RGB     # RGB or BGR
              scale: 0.00392156862745098   # y = (x - mean) / std * scale, x in 0...255
              mean: [123.675, 116.28, 103.53]
              std: [58.395, 57.12, 57.375]
            output: \(output)           # tensor, N (tuple element) or NAME (dict key)
            logits_resolution: \(lowerResolution ? "lower" : "input")   # input or lower
            upsample: {mode: bilinear, align_corners: false}
            head: []                 # submodules of the classifier head, e.g. [classifier]
            side_multiple: 1         # frames are padded to multiples of this

            """
    }

    static var template: String { "classes: [road, car]" }
}

/// Reads a card's keys with one message per wrong or missing key.
private struct CardReader {
    let file: String
    let root: [String: Any]

    static let keys: Set<String> = [
        "name", "classes", "no_class_outputs", "outputs", "input", "output", "logits_resolution", "upsample", "head",
        "side_multiple",
    ]
    static let inputKeys: Set<String> = ["channel_order", "scale", "mean", "std"]

    func fail(_ key: String, _ problem: String, _ example: String) -> TorchScriptCard.Error {
        TorchScriptCard.Error(file: file, key: key, problem: problem, example: example)
    }

    func card(defaultName: String) throws -> TorchScriptCard {
        if let unknown = root.keys.sorted().first(where: { !Self.keys.contains($0) }) {
            throw fail(
                unknown, "is not a card key (the keys: \(Self.keys.sorted().joined(separator: ", ")))",
                "classes: [road, car]")
        }
        let name = try string(root["name"], key: "name", example: "name: my-network") ?? defaultName
        guard let classValue = root["classes"] else {
            throw fail("classes", "is missing", "classes: [road, sidewalk, car]")
        }
        let classes = try strings(classValue, key: "classes", example: "classes: [road, sidewalk, car]")
        guard !classes.isEmpty else { throw fail("classes", "is empty", "classes: [road, sidewalk, car]") }
        if let duplicate = Dictionary(grouping: classes, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw fail("classes", "names '\(duplicate)' twice", "classes: [road, sidewalk, car]")
        }
        let extra = try root["no_class_outputs"].map {
            try strings($0, key: "no_class_outputs", example: "no_class_outputs: [void]")
        } ?? []
        let outputs = classes.count + extra.count
        if let declared = root["outputs"] {
            guard let count = declared as? Int, count == outputs else {
                throw fail(
                    "outputs", "is \(declared), but classes and no_class_outputs name \(outputs)",
                    "outputs: \(outputs), or list the other outputs in no_class_outputs")
            }
        }
        let normalization = try input()
        let output = try outputForm()
        let upsampling = try resolution()
        let head = try root["head"].map { try strings($0, key: "head", example: "head: [classifier]") } ?? []
        let multiple = try int(root["side_multiple"], key: "side_multiple", example: "side_multiple: 8") ?? 1
        guard (1...1024).contains(multiple) else {
            throw fail("side_multiple", "is \(multiple), outside 1...1024", "side_multiple: 8")
        }
        let card = ModelCard(
            name: name, classNames: classes, numOutputs: outputs, normalization: normalization,
            checkpointFormats: ["TorchScript (torch.jit.save of a scripted or traced module)"])
        return TorchScriptCard(
            card: card, output: output, upsampling: upsampling, headModules: head, sideMultiple: multiple)
    }

    private func input() throws -> InputNormalization {
        let example = "input: {channel_order: RGB, scale: 0.00392156862745098, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375]}"
        guard let value = root["input"] else { throw fail("input", "is missing", example) }
        guard let input = value as? [String: Any] else { throw fail("input", "is not a mapping", example) }
        if let unknown = input.keys.sorted().first(where: { !Self.inputKeys.contains($0) }) {
            throw fail("input.\(unknown)", "is not a key of input (channel_order, scale, mean, std)", example)
        }
        guard let orderText = input["channel_order"] as? String,
            let order = InputNormalization.ChannelOrder(rawValue: orderText.lowercased())
        else {
            throw fail("input.channel_order", "must be RGB or BGR", "channel_order: RGB")
        }
        guard let meanValue = input["mean"] else { throw fail("input.mean", "is missing", "mean: [123.675, 116.28, 103.53]") }
        let mean = try numbers(meanValue, key: "input.mean", count: 3, example: "mean: [123.675, 116.28, 103.53]")
        let std = try input["std"].map {
            try numbers($0, key: "input.std", count: 3, example: "std: [58.395, 57.12, 57.375]")
        } ?? [1, 1, 1]
        guard std.allSatisfy({ $0 > 0 }) else {
            throw fail("input.std", "must be positive", "std: [58.395, 57.12, 57.375]")
        }
        let scale = try input["scale"].map { try number($0, key: "input.scale", example: "scale: 1.0") } ?? 1
        guard scale > 0, scale.isFinite else { throw fail("input.scale", "must be positive", "scale: 1.0") }
        return InputNormalization(channelOrder: order, mean: mean, std: std, scale: scale)
    }

    private func outputForm() throws -> ScriptOutput {
        let example = "output: tensor (or 0 for a tuple's first element, or out for a dict's key)"
        switch root["output"] {
        case nil: return .tensor
        case let index as Int:
            guard index >= 0 else { throw fail("output", "is a negative element index", example) }
            return .element(index)
        case let text as String where text == "tensor": return .tensor
        case let text as String where !text.isEmpty: return .key(text)
        default: throw fail("output", "is neither tensor, an element index nor a dict key", example)
        }
    }

    private func resolution() throws -> InterpolationMode? {
        let example = "logits_resolution: lower"
        let text = try string(root["logits_resolution"], key: "logits_resolution", example: example) ?? "input"
        switch text {
        case "input":
            return nil
        case "lower":
            let upsampleExample = "upsample: {mode: bilinear, align_corners: false}"
            guard let value = root["upsample"] else { return .bilinear(alignCorners: false) }
            guard let upsample = value as? [String: Any] else {
                throw fail("upsample", "is not a mapping", upsampleExample)
            }
            if let unknown = upsample.keys.sorted().first(where: { !["mode", "align_corners"].contains($0) }) {
                throw fail("upsample.\(unknown)", "is not a key of upsample (mode, align_corners)", upsampleExample)
            }
            let align = upsample["align_corners"].map { $0 as? Bool }
            if case .some(nil) = align {
                throw fail("upsample.align_corners", "must be true or false", upsampleExample)
            }
            switch upsample["mode"] as? String ?? "bilinear" {
            case "bilinear": return .bilinear(alignCorners: (align ?? false) ?? false)
            case "nearest": return .nearest
            default: throw fail("upsample.mode", "must be bilinear or nearest", upsampleExample)
            }
        default:
            throw fail("logits_resolution", "must be input or lower", example)
        }
    }

    private func string(_ value: Any?, key: String, example: String) throws -> String? {
        guard let value else { return nil }
        guard let text = value as? String, !text.isEmpty else { throw fail(key, "is not a text", example) }
        return text
    }

    private func strings(_ value: Any, key: String, example: String) throws -> [String] {
        guard let list = value as? [Any] else { throw fail(key, "is not a list", example) }
        return try list.map { element in
            if let text = element as? String { return text }
            if element is Bool {
                throw fail(key, "holds a name YAML reads as true or false (on, off, yes, no): quote it", example)
            }
            if element is Int || element is Double { return "\(element)" }
            throw fail(key, "holds \(element), which is not a name", example)
        }
    }

    private func int(_ value: Any?, key: String, example: String) throws -> Int? {
        guard let value else { return nil }
        guard let number = value as? Int else { throw fail(key, "is not a whole number", example) }
        return number
    }

    private func number(_ value: Any, key: String, example: String) throws -> Double {
        if let number = value as? Double { return number }
        if let number = value as? Int { return Double(number) }
        throw fail(key, "is not a number", example)
    }

    private func numbers(_ value: Any, key: String, count: Int, example: String) throws -> [Double] {
        guard let list = value as? [Any], list.count == count else {
            throw fail(key, "must be \(count) numbers, one per channel", example)
        }
        return try list.map { try number($0, key: key, example: example) }
    }
}
