import ArgumentParser
import Foundation
import SegTTT

/// The model flags shared by `adapt` and `compare`.
struct ModelOptions: ParsableArguments {
    @Option(help: "Network family: \(ModelFamilies.validNames).")
    var model: String?

    @Option(help: "Weights: a PyTorch .pth (zip or legacy) or safetensors file; for torchscript, the .pt file.")
    var checkpoint: String?

    @Option(help: "torchscript: the model card file (default: FILE.yaml or FILE.json beside the .pt file).")
    var card: String?

    @Option(help: "JSON file mapping model classes to dataset classes (or null), when no known mapping applies.")
    var classMap: String?
}

/// The stream flags shared by `adapt` and `compare`.
struct StreamOptions: ParsableArguments {
    @Option(help: "The stream, KIND:PATH (\(DatasetSpec.kinds)) or a folder with classes.json.")
    var dataset: String?

    @Option(help: "Seeded corruption NAME:SEVERITY (e.g. gaussian_noise:3), or a schedule like fog:3@100,clean@50.")
    var corruption: String?

    @Option(help: "Seed of the corruptions' random draws.")
    var corruptionSeed: UInt64?

    @Option(help: "Process only the first N frames.")
    var limit: Int?

    @Option(help: "Take every Nth frame of the stream (the stream at 1/N of its frame rate).")
    var frameStep: Int?

    @Flag(inversion: .prefixedNo, help: "Skip unreadable frames (listed at the end) instead of stopping.")
    var skipBadFrames: Bool?
}

/// The method options shared by `adapt` and `compare` (not the method itself).
struct MethodOptions: ParsableArguments {
    @Option(help: "Settings to start from: recommended (published + safeguards, default) or published.")
    var preset: String?

    @Option(help: "Learning rate of the test-time optimizer.")
    var lr: Double?

    @Option(help: "SGD momentum.")
    var momentum: Double?

    @Option(help: "Weight decay.")
    var weightDecay: Double?

    @Option(help: "Optimizer: sgd or adam.")
    var optimizer: String?

    @Option(help: "Gradient steps per frame.")
    var stepsPerFrame: Int?

    @Option(help: "Parameters that adapt: all, bn-affine or head.")
    var parameters: String?

    @Flag(inversion: .prefixedNo, help: "Reset to the source weights after every frame (episodic) or not (continual).")
    var episodic: Bool?

    @Option(help: "BN prior: statistics = prior * source + (1 - prior) * batch.")
    var bnPrior: Double?

    @Flag(inversion: .prefixedNo, help: "Use the left-right flipped view too.")
    var flip: Bool?

    @Option(help: "OCL: weight of the positive (view agreement) term.")
    var posCoeff: Double?

    @Option(help: "OCL: weight of the negative (uniformity) term.")
    var negCoeff: Double?

    @Option(help: "OCL: stochastic restoration ratio.")
    var maskRatio: Double?

    @Option(help: "OCL: negative term as the published Gram matrix at this stride (for parity checks only).")
    var negativeStride: Int?

    @Option(help: "Seed of the method's random numbers.")
    var seed: UInt64?

    @Option(help: "Safeguard: clip the gradient's L2 norm to this value before each step.")
    var maxGradNorm: Double?

    @Flag(inversion: .prefixedNo, help: "Safeguard: leave outputs that are no class of the task (background, void) out of the loss.")
    var taskOutputsOnly: Bool?

    @Option(help: "Safeguard: BatchNorm statistics follow the stream as a moving average with this momentum.")
    var bnMomentum: Double?

    @Option(help: "Safeguard: reset to the source when the prediction disagrees with bn-prior's on more than this fraction of pixels.")
    var resetThreshold: Double?

    @Option(help: "Safeguard: a mean teacher (weights averaged with this momentum, e.g. 0.99) supplies the prediction.")
    var teacherMomentum: Double?
}

/// Device, threads and what is written besides the metrics.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "cpu, cuda or cuda:N.")
    var device: String?

    @Option(help: "libtorch CPU threads (default: all cores).")
    var threads: Int?

    @Flag(inversion: .prefixedNo, help: "Write each frame's prediction as a colour PNG (default on).")
    var predictions: Bool?

    @Flag(inversion: .prefixedNo, help: "Also write each prediction over its image (default off).")
    var overlays: Bool?

    @Flag(inversion: .prefixedNo, help: "Write diagnostics.jsonl: per frame entropy, class histogram, weight drift, gradient norms.")
    var diagnostics: Bool?

    @Option(help: "Save the run's state every N frames, for --resume (default 20).")
    var saveEvery: Int?
}

extension RunConfiguration {
    /// The fields the command line sets.
    init(model: ModelOptions, stream: StreamOptions, method: MethodOptions, runtime: RuntimeOptions) {
        self.init()
        self.model = model.model
        checkpoint = model.checkpoint
        card = model.card
        classMap = model.classMap
        dataset = stream.dataset
        corruption = stream.corruption
        corruptionSeed = stream.corruptionSeed
        limit = stream.limit
        frameStep = stream.frameStep
        skipBadFrames = stream.skipBadFrames
        preset = method.preset
        lr = method.lr
        momentum = method.momentum
        weightDecay = method.weightDecay
        optimizer = method.optimizer
        stepsPerFrame = method.stepsPerFrame
        parameters = method.parameters
        episodic = method.episodic
        bnPrior = method.bnPrior
        flip = method.flip
        posCoeff = method.posCoeff
        negCoeff = method.negCoeff
        maskRatio = method.maskRatio
        negativeStride = method.negativeStride
        seed = method.seed
        maxGradNorm = method.maxGradNorm
        taskOutputsOnly = method.taskOutputsOnly
        bnMomentum = method.bnMomentum
        resetThreshold = method.resetThreshold
        teacherMomentum = method.teacherMomentum
        device = runtime.device
        threads = runtime.threads
        predictions = runtime.predictions
        overlays = runtime.overlays
        diagnostics = runtime.diagnostics
        saveEvery = runtime.saveEvery
    }

    /// The configuration file's fields (when a file is given) overridden by the flags.
    static func combining(file: String?, flags: RunConfiguration) throws -> RunConfiguration {
        guard let file else { return flags }
        return try read(URL(fileURLWithPath: file)).overriding(with: flags)
    }
}
