import Foundation
import Yams

/// Everything that decides an adaptation run, as the flags of `segttt adapt` and, with the
/// same names, the keys of a `--config` file (JSON or YAML). Unset fields take the method's
/// documented defaults. The effective configuration of a run is written next to its results
/// as `config.json`, and `--config` accepts that file back.
public struct RunConfiguration: Codable, Equatable, Sendable {
    // Model
    public var model: String?
    public var checkpoint: String?
    public var card: String?
    public var classMap: String?
    // Stream
    public var dataset: String?
    public var corruption: String?
    public var corruptionSeed: UInt64?
    public var limit: Int?
    public var frameStep: Int?
    public var skipBadFrames: Bool?
    // Method
    public var method: String?
    public var preset: String?
    public var lr: Double?
    public var momentum: Double?
    public var weightDecay: Double?
    public var optimizer: String?
    public var stepsPerFrame: Int?
    public var parameters: String?
    public var episodic: Bool?
    public var bnPrior: Double?
    public var flip: Bool?
    public var posCoeff: Double?
    public var negCoeff: Double?
    public var maskRatio: Double?
    public var negativeStride: Int?
    public var seed: UInt64?
    // Safeguards
    public var maxGradNorm: Double?
    public var taskOutputsOnly: Bool?
    public var bnMomentum: Double?
    public var resetThreshold: Double?
    public var teacherMomentum: Double?
    // Runtime and outputs
    public var device: String?
    public var threads: Int?
    public var predictions: Bool?
    public var overlays: Bool?
    public var diagnostics: Bool?
    public var saveEvery: Int?

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, checkpoint, card
        case classMap = "class-map"
        case dataset, corruption
        case corruptionSeed = "corruption-seed"
        case limit
        case frameStep = "frame-step"
        case skipBadFrames = "skip-bad-frames"
        case method, preset, lr, momentum
        case weightDecay = "weight-decay"
        case optimizer
        case stepsPerFrame = "steps-per-frame"
        case parameters, episodic
        case bnPrior = "bn-prior"
        case flip
        case posCoeff = "pos-coeff"
        case negCoeff = "neg-coeff"
        case maskRatio = "mask-ratio"
        case negativeStride = "negative-stride"
        case maxGradNorm = "max-grad-norm"
        case taskOutputsOnly = "task-outputs-only"
        case bnMomentum = "bn-momentum"
        case resetThreshold = "reset-threshold"
        case teacherMomentum = "teacher-momentum"
        case seed, device, threads, predictions, overlays, diagnostics
        case saveEvery = "save-every"
    }

    /// The keys a configuration file may use (the flags' long names).
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// This configuration with every field that `other` sets taken from `other`.
    public func overriding(with other: RunConfiguration) throws -> RunConfiguration {
        var merged = try Self.dictionary(self)
        merged.merge(try Self.dictionary(other)) { _, new in new }
        return try JSONDecoder().decode(
            RunConfiguration.self, from: JSONSerialization.data(withJSONObject: merged))
    }

    private static func dictionary(_ configuration: RunConfiguration) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration))
        return object as? [String: Any] ?? [:]
    }

    /// Reads a configuration file: YAML when it ends in .yaml or .yml, JSON otherwise. Keys
    /// are the flags' long names without dashes in front ("lr", "bn-prior", ...).
    ///
    /// - Throws: `ToolError` naming the file for an unreadable file, a syntax error, an
    ///   unknown key or a value of the wrong type.
    public static func read(_ url: URL) throws -> RunConfiguration {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ToolError("\(url.path): cannot read the configuration file; check --config")
        }
        let isYAML = ["yaml", "yml"].contains(url.pathExtension.lowercased())
        let object: Any?
        do {
            object = isYAML ? try Yams.load(yaml: String(decoding: data, as: UTF8.self)) : try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ToolError("\(url.path): not valid \(isYAML ? "YAML" : "JSON") (\(error)); fix the syntax")
        }
        guard let fields = object as? [String: Any] else {
            throw ToolError("\(url.path): expected a mapping of option names to values, e.g. {\"method\": \"ocl\"}")
        }
        let unknown = fields.keys.filter { !keys.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ToolError(
                "\(url.path): unknown key\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")); "
                    + "valid keys: \(keys.joined(separator: ", "))")
        }
        do {
            if isYAML { return try YAMLDecoder().decode(RunConfiguration.self, from: data) }
            return try JSONDecoder().decode(RunConfiguration.self, from: data)
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ToolError("\(url.path): '\(key)' needs a value of type \(type)")
        } catch let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ToolError("\(url.path): '\(key)': \(context.debugDescription)")
        }
    }

    /// Writes the configuration as pretty-printed JSON with sorted keys.
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}
