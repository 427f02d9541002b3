import Foundation
import SegTTT
import Torch

/// A `RunConfiguration` checked and turned into the things a run needs: the method and its
/// configuration (the method's documented defaults overridden by the given fields), the
/// stream, the model file, the device.
struct RunPlan {
    var family: any ModelFamily
    var checkpoint: URL
    var cardFile: URL?
    var classMap: URL?
    var dataset: DatasetSpec
    var corruption: CorruptionSchedule?
    var corruptionSeed: UInt64
    var limit: Int?
    var frameStep: Int
    var skipBadFrames: Bool
    var method: MethodKind
    var preset: ConfigurationPreset
    var config: AdaptationConfig
    var device: Device
    var threads: Int?
    var predictions: Bool
    var overlays: Bool
    var diagnostics: Bool
    var saveEvery: Int

    /// - Throws: `ToolError` naming the option and its valid values.
    init(_ c: RunConfiguration) throws {
        guard let model = c.model else { throw ToolError("missing --model; use one of \(ModelFamilies.validNames)") }
        guard let family = ModelFamilies.named(model) else {
            throw ToolError("unknown --model '\(model)'; use one of \(ModelFamilies.validNames)")
        }
        guard let checkpoint = c.checkpoint else {
            throw ToolError("missing --checkpoint; give the model's weights (.pth or .safetensors)")
        }
        guard let dataset = c.dataset else {
            throw ToolError("missing --dataset; use KIND:PATH (\(DatasetSpec.kinds)) or a folder with classes.json")
        }
        let methodName = c.method ?? MethodKind.ocl.rawValue
        guard let method = MethodKind(rawValue: methodName) else {
            throw ToolError("unknown --method '\(methodName)'; use one of \(Self.methodNames)")
        }
        self.family = family
        self.checkpoint = URL(fileURLWithPath: (checkpoint as NSString).expandingTildeInPath)
        cardFile = c.card.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
        if let cardFile, !FileManager.default.fileExists(atPath: cardFile.path) {
            throw ToolError("--card \(cardFile.path): no such file; give the model card (YAML or JSON)")
        }
        classMap = c.classMap.map { URL(fileURLWithPath: $0) }
        self.dataset = DatasetSpec(dataset)
        corruption = try c.corruption.map { try CorruptionSchedule(parsing: $0) }
        corruptionSeed = c.corruptionSeed ?? 0
        if let limit = c.limit, limit < 1 { throw ToolError("--limit \(limit): give a positive number of frames") }
        limit = c.limit
        frameStep = c.frameStep ?? 1
        if frameStep < 1 { throw ToolError("--frame-step \(frameStep): give at least 1") }
        skipBadFrames = c.skipBadFrames ?? false
        self.method = method
        let presetName = c.preset ?? ConfigurationPreset.recommended.rawValue
        guard let preset = ConfigurationPreset(rawValue: presetName) else {
            throw ToolError("unknown --preset '\(presetName)'; use \(Self.presetNames)")
        }
        self.preset = preset
        config = try Self.methodConfig(method, preset: preset, c)
        device = try c.device.map { try Device(parsing: $0) } ?? .cpu
        do { try device.checkAvailable() } catch let error as TorchError {
            throw ToolError("--device \(error.message)")
        }
        if let threads = c.threads, threads < 1 { throw ToolError("--threads \(threads): give at least 1") }
        threads = c.threads
        predictions = c.predictions ?? true
        overlays = c.overlays ?? false
        diagnostics = c.diagnostics ?? false
        saveEvery = c.saveEvery ?? 20
        if saveEvery < 1 { throw ToolError("--save-every \(saveEvery): give at least 1") }
    }

    static var methodNames: String { MethodKind.allCases.map(\.rawValue).joined(separator: ", ") }
    static var presetNames: String { ConfigurationPreset.allCases.map(\.rawValue).joined(separator: " or ") }

    /// The method's defaults (`AdaptationConfig.defaults(for:preset:)`) with the given fields set.
    static func methodConfig(_ method: MethodKind, preset: ConfigurationPreset, _ c: RunConfiguration) throws
        -> AdaptationConfig
    {
        var config = AdaptationConfig.defaults(for: method, preset: preset)
        if let lr = c.lr { config.learningRate = lr }
        if let momentum = c.momentum { config.momentum = momentum }
        if let weightDecay = c.weightDecay { config.weightDecay = weightDecay }
        if let name = c.optimizer {
            guard let optimizer = OptimizerKind(rawValue: name.lowercased()) else {
                throw ToolError("unknown --optimizer '\(name)'; use sgd or adam")
            }
            config.optimizer = optimizer
        }
        if let steps = c.stepsPerFrame {
            guard steps >= 1 else { throw ToolError("--steps-per-frame \(steps): give at least 1") }
            config.stepsPerFrame = steps
        }
        if let name = c.parameters {
            let roles: [String: ParameterRole] = ["all": .all, "bn-affine": .batchNormAffine, "head": .head]
            guard let role = roles[name] else {
                throw ToolError("unknown --parameters '\(name)'; use all, bn-affine or head")
            }
            config.parameters = role
        }
        if let episodic = c.episodic { config.episodic = episodic }
        if let prior = c.bnPrior {
            guard (0...1).contains(prior) else { throw ToolError("--bn-prior \(prior): give a value in 0...1") }
            config.bnPrior = prior
        }
        if let flip = c.flip { config.flip = flip }
        if let pos = c.posCoeff { config.posCoeff = pos }
        if let neg = c.negCoeff { config.negCoeff = neg }
        if let ratio = c.maskRatio {
            guard (0...1).contains(ratio) else { throw ToolError("--mask-ratio \(ratio): give a value in 0...1") }
            config.maskRatio = ratio
        }
        if let stride = c.negativeStride {
            guard stride >= 1 else { throw ToolError("--negative-stride \(stride): give at least 1") }
            config.negativeStride = stride
        }
        if let seed = c.seed { config.seed = seed }
        if let norm = c.maxGradNorm {
            guard norm > 0 else { throw ToolError("--max-grad-norm \(norm): give a positive number") }
            config.maxGradientNorm = norm
        }
        if let taskOnly = c.taskOutputsOnly { config.taskOutputsOnly = taskOnly }
        if let momentum = c.bnMomentum {
            guard momentum > 0, momentum <= 1 else {
                throw ToolError("--bn-momentum \(momentum): give a value in (0, 1]")
            }
            config.bnMomentum = momentum
        }
        if let threshold = c.resetThreshold {
            guard (0...1).contains(threshold) else {
                throw ToolError("--reset-threshold \(threshold): give a fraction in 0...1")
            }
            config.resetThreshold = threshold
        }
        if let momentum = c.teacherMomentum {
            guard (0...1).contains(momentum) else {
                throw ToolError("--teacher-momentum \(momentum): give a value in 0...1")
            }
            config.teacherMomentum = momentum
        }
        guard config.learningRate >= 0, config.learningRate.isFinite else {
            throw ToolError("--lr \(config.learningRate): give a non-negative number")
        }
        return config
    }

    /// The stream, corrupted when asked, then every `frameStep`th frame of it.
    func openStream() throws -> any SegmentationDataset {
        var stream = try dataset.open()
        if let corruption { stream = CorruptedDataset(stream, schedule: corruption, seed: corruptionSeed) }
        if frameStep > 1 { stream = DatasetSlice(stream, range: 0..<stream.count, step: frameStep) }
        return stream
    }

    /// The model on its device.
    func loadModel() throws -> any SegmentationModel {
        let model = try ModelFile.load(checkpoint, family: family, cardFile: cardFile)
        if let script = model as? TorchScriptModel, script.unredirectedBatchNormCalls > 0 {
            FileHandle.standardError.write(
                Data(
                    ("warning: \(checkpoint.lastPathComponent): \(script.unredirectedBatchNormCalls) BatchNorm call(s) "
                        + "normalise as the file says whatever --method chooses (`segttt info` says why)\n").utf8))
        }
        if device != .cpu { try model.move(to: device) }
        return model
    }
}
