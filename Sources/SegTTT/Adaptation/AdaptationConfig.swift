import Torch
import TorchNN

/// Which optimizer takes the test-time gradient steps.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, adam
}

/// Where a method's settings start from.
public enum ConfigurationPreset: String, CaseIterable, Sendable, Codable {
    /// The settings of the method's paper (shared/ALGORITHM.md): what parity checks and the
    /// published-defaults table of docs/RESULTS.md use.
    case published
    /// The published settings with the safeguards that keep the gradient step from hurting
    /// (docs/STABILITY.md). For OCL: the gradient's L2 norm clipped to 10, so a step moves the
    /// weights by at most lr * 10 whatever the network and pixel count, and the drift monitor
    /// at 0.05, which resets to the source weights when the adapted prediction leaves the
    /// unadapted bn-prior prediction on more than 5 % of the pixels. The other methods keep
    /// their published settings.
    case recommended
}

/// Options common to the test-time methods; each method documents its own defaults
/// (`AdaptationConfig.defaults(for:preset:)`).
public struct AdaptationConfig: Equatable, Sendable, Codable {
    /// Learning rate of the test-time optimizer.
    public var learningRate: Double
    /// SGD momentum (ignored by Adam).
    public var momentum: Double
    public var weightDecay: Double
    public var optimizer: OptimizerKind
    /// Gradient steps per frame (the prediction always comes from the first forward pass).
    public var stepsPerFrame: Int
    /// Which parameters adapt.
    public var parameters: ParameterRole
    /// Reset to the source weights (and a fresh optimizer) after every frame.
    public var episodic: Bool
    /// BN prior: BatchNorm statistics = prior * source + (1 - prior) * batch; nil = the method's
    /// own choice (running statistics for source, batch statistics for TENT).
    public var bnPrior: Double?
    /// Seed of the method's random numbers (stochastic restoration).
    public var seed: UInt64
    /// Two flip views (x and x flipped left-right) in the forward pass.
    public var flip: Bool
    /// OCL: weight of the positive (view-agreement) term.
    public var posCoeff: Double
    /// OCL: weight of the negative (uniformity) term.
    public var negCoeff: Double
    /// OCL: probability that each weight element is reset to its source value after a step.
    public var maskRatio: Double
    /// OCL: spatial subsampling stride of the negative term's Gram-matrix form (published
    /// code); nil = the exact O(N * C) form at full resolution. For parity checks only.
    public var negativeStride: Int?

    // Safeguards (docs/STABILITY.md); nil / false = the published behaviour.

    /// Clip the L2 norm of the whole gradient of the adapted parameters to this value before
    /// each step: g <- g * min(1, maxGradientNorm / ||g||).
    public var maxGradientNorm: Double?
    /// Compute the loss on the task's class outputs only (the first `card.classNames.count`
    /// logits), leaving out outputs that are no class of the task (a background or void output).
    public var taskOutputsOnly: Bool
    /// BatchNorm statistics follow the stream as an exponential moving average with this
    /// momentum (`BatchNormStatistics.movingAverage`) instead of the fixed prior mix.
    public var bnMomentum: Double?
    /// Drift monitor: before adapting on a frame, compare the adapted prediction with the
    /// bn-prior prediction of the source weights (prior 0.85, or `bnPrior`); when they disagree
    /// on more than this fraction of the pixels, reset to the source weights (and a fresh
    /// optimizer) and give the frame the bn-prior prediction.
    public var resetThreshold: Double?
    /// Mean teacher: a copy of the adapted weights that follows them slowly,
    /// theta_t <- a theta_t + (1 - a) theta after every step (a = this momentum), and supplies
    /// the prediction (from its own forward pass, before the student's step).
    public var teacherMomentum: Double?

    public init(
        learningRate: Double, momentum: Double = 0.9, weightDecay: Double = 0, optimizer: OptimizerKind = .sgd,
        stepsPerFrame: Int = 1, parameters: ParameterRole = .all, episodic: Bool = false, bnPrior: Double? = nil,
        seed: UInt64 = 0, flip: Bool = false, posCoeff: Double = 3, negCoeff: Double = 1, maskRatio: Double = 0,
        negativeStride: Int? = nil, maxGradientNorm: Double? = nil, taskOutputsOnly: Bool = false,
        bnMomentum: Double? = nil, resetThreshold: Double? = nil, teacherMomentum: Double? = nil
    ) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.optimizer = optimizer
        self.stepsPerFrame = stepsPerFrame
        self.parameters = parameters
        self.episodic = episodic
        self.bnPrior = bnPrior
        self.seed = seed
        self.flip = flip
        self.posCoeff = posCoeff
        self.negCoeff = negCoeff
        self.maskRatio = maskRatio
        self.negativeStride = negativeStride
        self.maxGradientNorm = maxGradientNorm
        self.taskOutputsOnly = taskOutputsOnly
        self.bnMomentum = bnMomentum
        self.resetThreshold = resetThreshold
        self.teacherMomentum = teacherMomentum
    }

    /// The documented defaults of each method.
    /// - source: frozen, running statistics, one view.
    /// - bn-prior: prior 0.85 and the two flip views, i.e. OCL's forward without its step.
    /// - tent (Wang et al., ICLR 2021): BatchNorm affine parameters, batch statistics, Adam
    ///   lr 1e-4 (TENT's segmentation setting uses Adam; 1e-4 suits one image per step).
    /// - ocl (Zhang et al. 2023): all parameters, SGD lr 2e-5, momentum 0.9, weight decay
    ///   5e-4, prior 0.85, flip views, 3 * pos + 1 * neg, restoration ratio 0.01.
    /// With `.recommended`, OCL also gets its safeguards (`ConfigurationPreset`).
    public static func defaults(for method: MethodKind, preset: ConfigurationPreset = .published) -> AdaptationConfig {
        if preset == .recommended, method == .ocl {
            var config = defaults(for: method)
            config.maxGradientNorm = 10
            config.resetThreshold = 0.05
            return config
        }
        switch method {
        case .source:
            return AdaptationConfig(learningRate: 0)
        case .bnPrior:
            return AdaptationConfig(learningRate: 0, bnPrior: 0.85, flip: true)
        case .tent:
            return AdaptationConfig(learningRate: 1e-4, momentum: 0, optimizer: .adam, parameters: .batchNormAffine)
        case .ocl:
            return AdaptationConfig(
                learningRate: 2e-5, momentum: 0.9, weightDecay: 5e-4, bnPrior: 0.85, flip: true, maskRatio: 0.01)
        }
    }

    /// An optimizer of this configuration over `parameters`.
    func makeOptimizer(_ parameters: [Parameter]) throws -> Optimizer {
        switch optimizer {
        case .sgd:
            return try SGD(parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .adam:
            return Adam(parameters, learningRate: learningRate, weightDecay: weightDecay)
        }
    }
}

/// The test-time methods SegTTT offers.
public enum MethodKind: String, CaseIterable, Sendable, Codable {
    case source
    case bnPrior = "bn-prior"
    case tent
    case ocl

    /// The loss terms its frame records report (`FrameRecord.losses`), total first.
    public var lossTerms: [String] {
        switch self {
        case .source, .bnPrior: return []
        case .tent: return ["loss", "entropy"]
        case .ocl: return ["loss", "pos", "neg"]
        }
    }
}
