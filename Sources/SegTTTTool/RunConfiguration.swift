import ArgumentParser
import Foundation
import TorchNN
import SegTTT
import Yams

/// The settings of a run besides the method's own: model, stream, method choice, runtime
/// and outputs. One field per option; `schema` gives each its key and help line, and
/// `validate()` holds the checks.
public struct RunSettings: Equatable, Sendable {
    // Model
    public var model: String?
    public var checkpoint: String?
    public var card: String?
    public var classMap: String?
    // Stream
    public var dataset: String?
    public var corruption: String?
    public var corruptionSeed: UInt64 = 0
    public var limit: Int?
    public var frameStep = 1
    public var skipBadFrames = false
    public var streamMode = StreamMode.continual
    public var rounds = 1
    // Method
    /// The method; when no input names one, the preset's (`ConfigurationPreset.defaultMethod`).
    public var method = MethodName.bnSelect.rawValue
    public var preset = ConfigurationPreset.recommended
    // Runtime and outputs
    public var device = "cpu"
    public var threads: Int?
    /// The libtorch thread counts every command accepts: past them the threads are started
    /// but no frame arrives.
    public static let threadRange = 1...1024
    public var predictions = true
    public var overlays = false
    public var diagnostics = false
    public var saveEvery = 20
    public var flushDenormals = true

    public init() {}

    /// The options of each group, in the order help lists them.
    static let modelSchema = OptionSchema<RunSettings>([
        .init("model", \.model, help: "Network family: \(ModelFamilies.validNames)."),
        .init("checkpoint", \.checkpoint, help: "Weights: a PyTorch .pth (zip or legacy) or safetensors file; for torchscript, the .pt file."),
        .init("card", \.card, help: "torchscript: the model card file (default: FILE.yaml or FILE.json beside the .pt file)."),
        .init("class-map", \.classMap, help: "JSON file mapping model classes to dataset classes (or null), when no known mapping applies."),
    ])
    static let streamSchema = OptionSchema<RunSettings>([
        .init("dataset", \.dataset, help: "The stream, KIND:PATH (\(DatasetSpec.kinds)) or a folder with classes.json."),
        .init("corruption", \.corruption, help: "Seeded corruption NAME:SEVERITY (e.g. gaussian_noise:3), or a schedule like fog:3@100,clean@50."),
        .init("corruption-seed", \.corruptionSeed, help: "Seed of the corruptions' random draws."),
        .init("limit", \.limit, help: "Process only the first N frames.", affectsResults: false),
        .init("frame-step", \.frameStep, help: "Take every Nth frame of the stream (the stream at 1/N of its frame rate)."),
        .init("skip-bad-frames", \.skipBadFrames, help: "Skip unreadable frames (listed at the end) instead of stopping.", affectsResults: false),
        .init("stream-mode", \.streamMode, help: "Reset to the source never, after every frame, or where the corruption changes."),
        .init("rounds", \.rounds, help: "Play the stream (with its corruption schedule) this many times over."),
    ])
    static let methodSchema = OptionSchema<RunSettings>([
        .init("method", \.method, help: "The method: \(Methods.validNames) (default: bn-select under --preset recommended, ocl under published)."),
        .init("preset", \.preset, help: "Settings to start from: recommended (published + safeguards) or published."),
    ])
    static let runtimeSchema = OptionSchema<RunSettings>([
        .init("device", \.device, help: "cpu, cuda or cuda:N.", affectsResults: false),
        .init("threads", \.threads, help: "libtorch CPU threads (default: all cores).", affectsResults: false),
        .init("predictions", \.predictions, help: "Write each frame's prediction as a colour PNG.", affectsResults: false),
        .init("overlays", \.overlays, help: "Also write each prediction over its image.", affectsResults: false),
        .init("diagnostics", \.diagnostics, help: "Write diagnostics.jsonl: per frame entropy, class histogram, weight drift, gradient norms.", affectsResults: false),
        .init("save-every", \.saveEvery, help: "Save the run's state every N frames, for --resume.", affectsResults: false),
        .init("flush-denormals", \.flushDenormals, help: "Flush denormal floats to zero on every compute thread (faster on many CPUs; --no-flush-denormals for IEEE arithmetic)."),
    ])
    public static let schema = OptionSchema<RunSettings>(
        modelSchema.options + streamSchema.options + methodSchema.options + runtimeSchema.options)

    /// - Throws: `OptionError` naming the option, its value and the valid range.
    public func validate() throws {
        if let limit, limit < 1 { throw OptionError(key: "limit", value: "\(limit)", fix: "give a positive number of frames") }
        guard (1...10_000).contains(frameStep) else {
            throw OptionError(key: "frame-step", value: "\(frameStep)", fix: "give 1 to 10000")
        }
        guard (1...1000).contains(rounds) else { throw OptionError(key: "rounds", value: "\(rounds)", fix: "give 1 to 1000") }
        if let threads, !Self.threadRange.contains(threads) {
            let range = Self.threadRange
            throw OptionError(key: "threads", value: "\(threads)", fix: "give \(range.lowerBound) to \(range.upperBound)")
        }
        guard saveEvery >= 1 else { throw OptionError(key: "save-every", value: "\(saveEvery)", fix: "give at least 1") }
        guard Methods.named(method) != nil else {
            throw OptionError(key: "method", value: "'\(method)'", fix: "use one of \(Methods.validNames)")
        }
    }
}

/// Everything that decides an adaptation run: the run's settings and the method's, resolved
/// from the options given (a `--config` file's keys, then the flags, with the same names):
/// unset method options take the method's documented settings under the preset. Its
/// `values` are what `config.json` holds beside the results, and `--config` accepts that file
/// back.
public struct RunConfiguration: Equatable, Sendable {
    public var settings: RunSettings
    public var method: AdaptationConfig

    /// Every key a configuration file or a flag may use.
    public static var keys: [String] { RunSettings.schema.keys + AdaptationConfig.schema.keys }

    /// Resolves `inputs`: the run's settings, then the method's defaults under the preset with
    /// the method options given set over them, then every check.
    ///
    /// - Throws: `OptionError` for a value that does not read or pass its check, and for a key
    ///   no option has.
    public init(_ inputs: OptionInputs) throws {
        let known = Set(Self.keys)
        if let unknown = inputs.entries.first(where: { !known.contains($0.key) }) {
            throw OptionError(key: unknown.key, value: "", fix: "no such option; the options are in `segttt adapt --help`")
        }
        var settings = RunSettings()
        try RunSettings.schema.apply(inputs, to: &settings)
        if !inputs.entries.contains(where: { $0.key == "method" }) { settings.method = settings.preset.defaultMethod.rawValue }
        try settings.validate()
        // validate() has checked the name.
        var method = Methods.named(settings.method)?.defaults(settings.preset) ?? AdaptationConfig()
        try AdaptationConfig.schema.apply(inputs, to: &method)
        try method.validate()
        self.settings = settings
        self.method = method
    }

    /// Every option's value, by key (nil values as NSNull): what `config.json` holds.
    public var values: [String: Any] {
        RunSettings.schema.values(of: settings).merging(AdaptationConfig.schema.values(of: method)) { first, _ in first }
    }

    /// The keys whose values change a run's numbers (not threads, outputs or the frame limit).
    public static var resultKeys: [String] {
        (RunSettings.schema.options.filter(\.affectsResults).map(\.key)
            + AdaptationConfig.schema.options.filter(\.affectsResults).map(\.key))
    }

    /// Reads a configuration file's options: YAML when it ends in .yaml or .yml, JSON
    /// otherwise. Keys are the flags' long names without dashes in front ("lr", "bn-prior").
    ///
    /// - Throws: `ToolError` naming the file for an unreadable file, a syntax error or
    ///   something other than a mapping.
    public static func read(_ url: URL) throws -> OptionInputs {
        if let problem = FileFailure.notAFile(url) {
            throw ToolError("\(url.path): the configuration file \(problem); check --config")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ToolError("\(url.path): cannot read the configuration file; check --config")
        }
        let isYAML = ["yaml", "yml"].contains(url.pathExtension.lowercased())
        let object: Any?
        do {
            object =
                isYAML
                ? try Yams.load(yaml: String(decoding: data, as: UTF8.self)) : try JSONSerialization.jsonObject(with: data)
        } catch {
            let reason = isYAML ? "\(error)" : FileFailure.syntaxReason(error)
            throw ToolError("\(url.path): not valid \(isYAML ? "YAML" : "JSON") (\(reason)); fix the syntax")
        }
        guard let fields = object as? [String: Any] else {
            throw ToolError("\(url.path): expected a mapping of option names to values, e.g. {\"method\": \"ocl\"}")
        }
        return OptionInputs(json: fields, source: url.path)
    }

    /// Writes `values` as pretty-printed JSON with sorted keys.
    public func write(to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: values, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url, options: .atomic)
    }
}

extension OptionError {
    /// The error as the tool reports it (exit 64): the flag, or the configuration file and its
    /// key, the value and the fix.
    func usageError(_ inputs: OptionInputs) -> ValidationError {
        let what = value.isEmpty ? "" : " \(value)"
        if let file = inputs.source(of: key) {
            return ValidationError("\(file): '\(key)'\(what): \(fix)")
        }
        return ValidationError("--\(key)\(what): \(fix)")
    }
}
