import Torch
import TorchNN

/// Which optimizer takes the test-time gradient steps.
public enum OptimizerKind: String, OptionChoice, Sendable, Codable {
    case sgd, adam
}

/// Where a method's settings start from.
public enum ConfigurationPreset: String, OptionChoice, Sendable, Codable {
    /// The settings of the method's paper (shared/ALGORITHM.md and each method's file): what
    /// parity checks and the published-defaults table of docs/RESULTS.md use.
    case published
    /// The published settings with the safeguards a method's entry adds
    /// (`MethodEntry.defaults`; for OCL, docs/STABILITY.md).
    case recommended

    /// The method a run takes when none is named: bn-select, which helps on every measured
    /// shift (docs/ADAPTATION.md), under `recommended`; OCL, the paper's, under `published`.
    public var defaultMethod: MethodName {
        self == .recommended ? .bnSelect : .ocl
    }
}

extension ParameterRole: OptionChoice {}

/// The settings of every test-time method: one field per option, each with its neutral value
/// here; a method's documented defaults come from its registry entry
/// (`AdaptationConfig.defaults(for:preset:)`). `schema` gives every field its key (the
/// command-line flag and the configuration file's key) and its help line; `validate()`
/// holds every check.
public struct AdaptationConfig: Equatable, Sendable {
    // The gradient step
    /// Learning rate of the test-time optimizer; 0 = no gradient step.
    public var learningRate = 0.0
    /// SGD momentum (ignored by Adam).
    public var momentum = 0.9
    public var weightDecay = 0.0
    public var optimizer = OptimizerKind.sgd
    /// Gradient steps per frame (the prediction always comes from the first forward pass).
    public var stepsPerFrame = 1
    /// Which parameters adapt.
    public var parameters = ParameterRole.all
    /// Seed of the method's random numbers (restoration, augmentation).
    public var seed: UInt64 = 0

    // The forward pass
    /// BN prior: BatchNorm statistics = prior * source + (1 - prior) * batch; nil = the method's
    /// own choice (running statistics for source, batch statistics for TENT).
    public var bnPrior: Double?
    /// BatchNorm statistics follow the stream as an exponential moving average with this
    /// momentum (`BatchNormStatistics.movingAverage`) instead of the fixed prior mix.
    public var bnMomentum: Double?
    /// BatchNorm statistics shrunk from the source's toward the frame's by the stream's
    /// signal-to-noise ratio (`BatchNormStatistics.shrinkage`), the stream's statistics a
    /// moving average with this momentum; it takes precedence over `bnMomentum` and `bnPrior`.
    public var bnShrinkage: Double?
    /// Two flip views (x and x flipped left-right) in the forward pass.
    public var flip = false

    // OCL (Zhang et al. 2023)
    /// Weight of the positive (view-agreement) term.
    public var posCoeff = 3.0
    /// Weight of the negative (uniformity) term.
    public var negCoeff = 1.0
    /// Spatial subsampling stride of the negative term's Gram-matrix form (published code);
    /// nil = the exact O(N * C) form at full resolution. For parity checks only.
    public var negativeStride: Int?

    // Stochastic restoration (CoTTA, OCL)
    /// Probability that each adapted weight element returns to its source value after a step.
    public var maskRatio = 0.0

    // Pseudo-labels (CoTTA, OASIS)
    /// Pixels whose pseudo-label confidence (max softmax probability) is below this are left
    /// out of the loss (OASIS); CoTTA: the teacher's views are averaged when the mean
    /// confidence of its plain prediction is below this.
    public var confidenceThreshold = 0.0
    /// CoTTA: the scales of the teacher's augmented views (each also flipped); bn-select: the
    /// scales of the views it predicts from (each also flipped under `flip`).
    public var augmentationScales: [Double] = [1]
    /// OASIS class reset: back to the source when the source's prediction of the frame holds
    /// more than this many classes more than the adapted prediction; nil = never.
    public var classResetThreshold: Double?

    // DIGA (Wang et al. 2023)
    /// Momentum of the class prototypes along the stream, P <- m * P + (1 - m) * P_frame.
    public var prototypeMomentum = 0.9
    /// Weight of the stream's prototypes against the frame's own in the prototype prediction.
    public var historyWeight = 0.8
    /// Weight of the prototype prediction in the fused probabilities (the network's: 1 - it).
    public var prototypeWeight = 0.8

    // The choice of a BatchNorm prior along the stream (bn-select, docs/ADAPTATION.md)
    /// The priors to choose from.
    public var priorCandidates: [Double] = []
    /// Momentum of each candidate's feature shift and prediction statistics along the stream.
    public var selectionMomentum = 0.1
    /// tau: a prior p is kept while its shift is at most the smallest prior's times 1 + tau * p.
    public var selectionTolerance = 1.25
    /// kappa: a prior p whose predictions' mean entropy exceeds the lowest of the smaller
    /// candidates' times 1 + kappa * p gives way to the next smaller one (nil: no entropy check).
    public var selectionEntropyTolerance: Double?
    /// lambda: a prior whose predictions' information (entropy of the mean prediction minus
    /// the mean entropy) is below the highest of the smaller candidates' times 1 - lambda
    /// gives way to the next smaller one, and a larger prior with at least the chosen one's
    /// information (less `selectionInformationMargin`) is taken (nil: the prediction's
    /// information plays no part).
    public var selectionInformationTolerance: Double?
    /// delta: the larger prior taken for its information needs at least the chosen one's
    /// times 1 - delta (0: at least as much).
    public var selectionInformationMargin = 0.0

    // Safeguards (docs/STABILITY.md); nil / false = the published behaviour.
    /// Clip the L2 norm of the whole gradient of the adapted parameters to this value before
    /// each step: g <- g * min(1, maxGradientNorm / ||g||).
    public var maxGradientNorm: Double?
    /// Compute the loss on the task's class outputs only (the first `card.classNames.count`
    /// logits), leaving out outputs that are no class of the task (a background or void output).
    public var taskOutputsOnly = false
    /// Drift monitor: before adapting on a frame, compare the adapted prediction with the
    /// bn-prior prediction of the source weights (prior 0.85, or `bnPrior`); when they disagree
    /// on more than this fraction of the pixels, reset to the source weights (and a fresh
    /// optimizer) and give the frame the bn-prior prediction.
    public var resetThreshold: Double?
    /// Mean teacher: a copy of the adapted weights that follows them slowly,
    /// theta_t <- a theta_t + (1 - a) theta after every step (a = this momentum), and supplies
    /// the prediction (from its own forward pass, before the student's step).
    public var teacherMomentum: Double?

    /// The neutral settings: no step, running statistics, one view.
    public init() {}

    /// Every option: key (flag and file key) and help line.
    public static let schema = OptionSchema<AdaptationConfig>([
        .init("lr", \.learningRate, help: "Learning rate of the test-time optimizer (0: no gradient step)."),
        .init("momentum", \.momentum, help: "SGD momentum."),
        .init("weight-decay", \.weightDecay, help: "Weight decay."),
        .init("optimizer", \.optimizer, help: "Optimizer of the test-time step."),
        .init("steps-per-frame", \.stepsPerFrame, help: "Gradient steps per frame."),
        .init("parameters", \.parameters, help: "Parameters that adapt."),
        .init("seed", \.seed, help: "Seed of the method's random numbers."),
        .init("bn-prior", \.bnPrior, help: "BN prior: statistics = prior * source + (1 - prior) * frame."),
        .init("bn-momentum", \.bnMomentum, help: "BatchNorm statistics follow the stream as a moving average with this momentum."),
        .init("bn-shrinkage", \.bnShrinkage, help: "BatchNorm statistics move from the source's to the frame's as far as the stream's shift stands out of the frame's noise; the stream's follow with this momentum."),
        .init("flip", \.flip, help: "Use the left-right flipped view too."),
        .init("pos-coeff", \.posCoeff, help: "OCL: weight of the positive (view agreement) term."),
        .init("neg-coeff", \.negCoeff, help: "OCL: weight of the negative (uniformity) term."),
        .init("negative-stride", \.negativeStride, help: "OCL: negative term as the published Gram matrix at this stride (parity checks only)."),
        .init("mask-ratio", \.maskRatio, help: "Stochastic restoration: each weight returns to its source value with this probability per step."),
        .init("confidence-threshold", \.confidenceThreshold, help: "Pseudo-labels: confidence below which pixels leave the loss (CoTTA: views are averaged)."),
        .init("augmentation-scales", \.augmentationScales, help: "CoTTA: scales of the teacher's augmented views (each flipped too); bn-select: of its predicted views."),
        .init("class-reset-threshold", \.classResetThreshold, help: "OASIS: reset when the prediction holds more than this many classes fewer than the source's."),
        .init("prototype-momentum", \.prototypeMomentum, help: "DIGA: momentum of the class prototypes along the stream."),
        .init("history-weight", \.historyWeight, help: "DIGA: weight of the stream's prototypes against the frame's own."),
        .init("prototype-weight", \.prototypeWeight, help: "DIGA: weight of the prototype prediction in the fused one."),
        .init("prior-candidates", \.priorCandidates, help: "bn-select: the BatchNorm priors to choose from."),
        .init("selection-momentum", \.selectionMomentum, help: "bn-select: momentum of each candidate's feature shift and prediction statistics along the stream."),
        .init("selection-tolerance", \.selectionTolerance, help: "bn-select: a prior p is kept while its feature shift is at most the smallest prior's times 1 + this * p."),
        .init("selection-entropy-tolerance", \.selectionEntropyTolerance, help: "bn-select: a prior p gives way to a smaller one while its predictions' mean entropy exceeds the lowest of the smaller candidates' times 1 + this * p."),
        .init("selection-information-tolerance", \.selectionInformationTolerance, help: "bn-select: a prior gives way to a smaller one while its predictions' information is below the highest of the smaller candidates' times 1 - this; a larger prior with about as much information is taken (selection-information-margin)."),
        .init("selection-information-margin", \.selectionInformationMargin, help: "bn-select: the larger prior taken for its predictions' information needs at least the chosen one's times 1 - this."),
        .init("max-grad-norm", \.maxGradientNorm, help: "Safeguard: clip the gradient's L2 norm to this value before each step."),
        .init("task-outputs-only", \.taskOutputsOnly, help: "Safeguard: leave outputs that are no class of the task (background, void) out of the loss."),
        .init("reset-threshold", \.resetThreshold, help: "Safeguard: reset to the source when the prediction leaves bn-prior's on more than this fraction of pixels."),
        .init("teacher-momentum", \.teacherMomentum, help: "Mean teacher: weights averaged with this momentum supply the prediction."),
    ])

    /// Checks every setting.
    ///
    /// - Throws: `OptionError` naming the option, its value and the valid range.
    public func validate() throws {
        func require(_ condition: Bool, _ key: String, _ value: Any, _ fix: String) throws {
            guard condition else { throw OptionError(key: key, value: "\(value)", fix: fix) }
        }
        func fraction(_ value: Double?, _ key: String) throws {
            guard let value else { return }
            try require((0...1).contains(value), key, value, "give a value in 0...1")
        }
        try require(learningRate >= 0 && learningRate.isFinite, "lr", learningRate, "give a non-negative number")
        try require(momentum >= 0 && momentum.isFinite, "momentum", momentum, "give a non-negative number")
        try require(weightDecay >= 0 && weightDecay.isFinite, "weight-decay", weightDecay, "give a non-negative number")
        try require((1...100).contains(stepsPerFrame), "steps-per-frame", stepsPerFrame, "give 1 to 100")
        try fraction(bnPrior, "bn-prior")
        if let bnMomentum {
            try require(bnMomentum > 0 && bnMomentum <= 1, "bn-momentum", bnMomentum, "give a value in (0, 1]")
        }
        if let bnShrinkage {
            try require(bnShrinkage > 0 && bnShrinkage <= 1, "bn-shrinkage", bnShrinkage, "give a value in (0, 1]")
        }
        try require(posCoeff.isFinite, "pos-coeff", posCoeff, "give a finite number")
        try require(negCoeff.isFinite, "neg-coeff", negCoeff, "give a finite number")
        if let negativeStride {
            try require((1...64).contains(negativeStride), "negative-stride", negativeStride, "give 1 to 64")
        }
        try fraction(maskRatio, "mask-ratio")
        try fraction(confidenceThreshold, "confidence-threshold")
        try require(
            !augmentationScales.isEmpty && augmentationScales.allSatisfy { (0.1...4).contains($0) },
            "augmentation-scales", augmentationScales.map { "\($0)" }.joined(separator: ","),
            "give scales in 0.1...4")
        if let classResetThreshold {
            try require(
                classResetThreshold >= 0 && classResetThreshold.isFinite, "class-reset-threshold", classResetThreshold,
                "give 0 or more")
        }
        try fraction(prototypeMomentum, "prototype-momentum")
        try fraction(historyWeight, "history-weight")
        try fraction(prototypeWeight, "prototype-weight")
        try require(
            priorCandidates.allSatisfy { (0...1).contains($0) }, "prior-candidates",
            priorCandidates.map { "\($0)" }.joined(separator: ","), "give priors in 0...1")
        try require(selectionMomentum > 0 && selectionMomentum <= 1, "selection-momentum", selectionMomentum, "give a value in (0, 1]")
        try require(
            selectionTolerance >= 0 && selectionTolerance.isFinite, "selection-tolerance", selectionTolerance, "give 0 or more")
        if let selectionEntropyTolerance {
            try require(
                selectionEntropyTolerance >= 0 && selectionEntropyTolerance.isFinite, "selection-entropy-tolerance",
                selectionEntropyTolerance, "give 0 or more")
        }
        try fraction(selectionInformationTolerance, "selection-information-tolerance")
        try fraction(selectionInformationMargin, "selection-information-margin")
        if let maxGradientNorm {
            try require(maxGradientNorm > 0 && maxGradientNorm.isFinite, "max-grad-norm", maxGradientNorm, "give a positive number")
        }
        try fraction(resetThreshold, "reset-threshold")
        try fraction(teacherMomentum, "teacher-momentum")
    }

    /// The documented defaults of the registered method `name` (`Methods`).
    ///
    /// - Precondition: `name` is registered (built-in names always are).
    public static func defaults(for name: MethodName, preset: ConfigurationPreset = .published) -> AdaptationConfig {
        guard let entry = Methods.named(name.rawValue) else { preconditionFailure("no method named \(name.rawValue)") }
        return entry.defaults(preset)
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
