import SegTTTKernels
import Torch
import TorchNN

/// What a method reports for one frame.
public struct FrameResult {
    /// Predicted model output per pixel [H, W], int64, from the forward pass before any update.
    public var prediction: Tensor
    /// The scores [1, K, H, W] the prediction is the argmax of (no gradient): logits, or
    /// probabilities when `scoresAreProbabilities`.
    public var scores: Tensor
    public var scoresAreProbabilities: Bool
    /// Named loss terms of the step ("loss", "pos", "neg", "entropy"); empty without a step.
    public var losses: [String: Double]
    /// True when the loss was NaN or infinite and the weights were left untouched.
    public var nonFiniteLoss: Bool
    /// True when the method went back to the source on this frame (drift monitor, class reset).
    public var reset: Bool
    /// The drift monitor's measure on this frame: the fraction of pixels whose adapted
    /// prediction differs from bn-prior's (nil without the monitor).
    public var disagreement: Double?

    /// The result of predicting `scores` [1, K, H, W] (their argmax).
    public init(
        scores: Tensor, areProbabilities: Bool = false, losses: [String: Double] = [:], nonFiniteLoss: Bool = false,
        reset: Bool = false, disagreement: Double? = nil
    ) throws {
        prediction = try argmaxPrediction(scores)
        self.scores = scores
        scoresAreProbabilities = areProbabilities
        self.losses = losses
        self.nonFiniteLoss = nonFiniteLoss
        self.reset = reset
        self.disagreement = disagreement
    }

    /// The per-pixel class probabilities [1, K, H, W] behind the prediction.
    public func probabilities() throws -> Tensor {
        scoresAreProbabilities ? scores : try scores.softmax(dim: 1)
    }
}

/// A piece of a method whose state changes along the stream, beyond the model's own weights
/// and buffers: an optimizer, a mean teacher, a random generator, prototypes.
public protocol MethodPart: AnyObject {
    /// Its tensors, to save a run.
    func state() throws -> StateDict
    /// Restores tensors saved by `state()`.
    func loadState(_ state: StateDict) throws
    /// Returns to its state at the start of the stream (called after the model's source
    /// weights are back).
    func reset() throws
}

/// A test-time method, in the shape of TENT's reference code: `init` configures the model
/// (how BatchNorm normalises, which parameters take gradients) and checks that model and
/// settings suit the method; `process` predicts a frame and adapts on it; `reset()` returns
/// to the source. The pieces a method shares with others (`GradientStep`, `MeanTeacher`,
/// `DriftMonitor`, `StochasticRestoration`) are parts it holds, and those with a state are
/// listed in `parts`, so that saving, resuming and resetting cover them.
///
/// A method written outside the package conforms to this protocol and is registered with
/// `Methods.register(_:)`.
public protocol TestTimeMethod: AnyObject {
    /// Creates the method on `model` and configures the model for it.
    ///
    /// - Throws: when the model or the settings do not suit the method, saying what to change.
    init(model: any SegmentationModel, config: AdaptationConfig) throws
    var model: any SegmentationModel { get }
    var config: AdaptationConfig { get }
    /// The source weights and statistics, taken after configuring the model.
    var source: Snapshot { get }
    /// The parts with a state, by a name that prefixes their tensors in a saved state.
    var parts: [(name: String, part: any MethodPart)] { get }
    /// The gradient step, for methods that take one (diagnostics observe its gradients).
    var gradientStep: GradientStep? { get }
    /// Predicts `input` (a normalised image [1, 3, H, W]) and adapts on it.
    func process(_ input: Tensor) throws -> FrameResult
}

extension TestTimeMethod {
    public var parts: [(name: String, part: any MethodPart)] { [] }
    public var gradientStep: GradientStep? { nil }

    /// The parameters the gradient step updates (empty without one).
    public var adapted: [Parameter] { gradientStep?.parameters ?? [] }

    /// Returns the weights, statistics and every part to their source state.
    public func reset() throws {
        try source.restore(model)
        for bn in model.batchNormLayers { (bn.streamMean, bn.streamVar) = (nil, nil) }
        for (_, part) in parts { try part.reset() }
    }

    /// Everything that changes along the stream: the model's weights and buffers ("model.")
    /// and each part's tensors ("NAME.").
    public func state() throws -> StateDict {
        var dict = StateDict(try model.stateDict().map { ("model." + $0.name, try $0.tensor.clone()) })
        for (index, bn) in model.batchNormLayers.enumerated() {
            if let mean = bn.streamMean, let variance = bn.streamVar {
                dict["bn-stream.\(index).mean"] = try mean.clone()
                dict["bn-stream.\(index).var"] = try variance.clone()
            }
        }
        for (name, part) in parts {
            for (key, tensor) in try part.state() { dict[name + "." + key] = tensor }
        }
        return dict
    }

    /// Restores a state written by `state()`.
    public func loadState(_ state: StateDict) throws {
        func part(_ prefix: String) -> StateDict {
            StateDict(
                state.filter { $0.name.hasPrefix(prefix) }.map { (String($0.name.dropFirst(prefix.count)), $0.tensor) })
        }
        try model.load(part("model."))
        for (index, bn) in model.batchNormLayers.enumerated() {
            (bn.streamMean, bn.streamVar) = (state["bn-stream.\(index).mean"], state["bn-stream.\(index).var"])
        }
        for (name, methodPart) in parts { try methodPart.loadState(part(name + ".")) }
    }
}

/// A method's random numbers as a part: the generator's state is saved with the method; a
/// reset keeps its position in the stream of numbers.
public final class RandomNumbers: MethodPart {
    public let generator: Generator

    public init(seed: UInt64) throws {
        generator = try Generator(seed: seed)
    }

    public func state() throws -> StateDict { StateDict([("state", try generator.state())]) }
    public func loadState(_ state: StateDict) throws {
        if let saved = state["state"] { try generator.setState(saved) }
    }
    public func reset() throws {}
}

extension AdaptationConfig {
    /// The BatchNorm statistics these settings ask for: the shrinkage with `bnShrinkage`,
    /// else the moving average with `bnMomentum`, else the prior mix with `bnPrior`, else
    /// `otherwise` (the method's own).
    public func batchNormStatistics(otherwise: BatchNormStatistics) -> BatchNormStatistics {
        if let bnShrinkage { return .shrinkage(bnShrinkage) }
        if let bnMomentum { return .movingAverage(bnMomentum) }
        if let bnPrior { return .prior(bnPrior) }
        return otherwise
    }
}

extension SegmentationModel {
    /// Configures the model for a test-time method: evaluation mode, every BatchNorm layer on
    /// `statistics`, and gradients for the parameters of `role` only (none when nil).
    ///
    /// - Returns: the parameters that adapt, in state-dict order.
    public func prepareForAdaptation(statistics: BatchNormStatistics, adapting role: ParameterRole?) throws
        -> [Parameter]
    {
        eval()
        for bn in batchNormLayers { bn.statistics = statistics }
        guard let role else {
            try freeze()
            return []
        }
        let chosen = parameters(for: role)
        let ids = Set(chosen.map(ObjectIdentifier.init))
        for (_, parameter) in namedParameters() where !ids.contains(ObjectIdentifier(parameter)) {
            try parameter.setTrainable(false)
        }
        return chosen
    }

    /// Logits [V, C, H, W] of the image and, with `flip`, of its mirror image flipped back
    /// into the image's frame (V = 2), from one batched forward pass. The batch is taken apart
    /// by `unbind`, whose backward stacks the views' gradients in one copy; two `narrow`s
    /// would each scatter theirs into a zero-filled tensor of the whole batch, then add the two.
    public func viewLogits(_ input: Tensor, flip: Bool) throws -> Tensor {
        guard flip else { return try logits(input) }
        let views = try logits(Tensor.cat([input, input.flip([3])], dim: 0)).unbind(dim: 0)
        return try Tensor.stack([views[0], views[1].flip([2])], dim: 0)
    }

    /// The mean of softmax probabilities [1, K, H, W] over the views of `input` [1, 3, H, W]:
    /// the frame at each of `scales` (bilinear, corners not aligned) and, with `flip`, its
    /// mirror image, each resized back to the frame (test-time augmentation).
    ///
    /// - Throws: without scales (no view to average).
    public func augmentedProbabilities(_ input: Tensor, scales: [Double], flip: Bool) throws -> Tensor {
        let (height, width) = (input.shape[2], input.shape[3])
        var sum: Tensor?
        for scale in scales {
            let size = Pair(
                Swift.max(1, Int((Double(height) * scale).rounded())), Swift.max(1, Int((Double(width) * scale).rounded())))
            let scaled = scale == 1 ? input : try interpolate(input, size: size, mode: .bilinear(alignCorners: false))
            let logits = try viewLogits(scaled, flip: flip)
            let back = scale == 1 ? logits : try interpolate(logits, size: Pair(height, width), mode: .bilinear(alignCorners: false))
            let probabilities = try back.softmax(dim: 1).sum(dims: [0], keepDim: true)
            sum = try sum.map { try $0 + probabilities } ?? probabilities
        }
        guard let sum else { throw TorchError("augmented views need one scale or more, got none") }
        return try sum / Double((flip ? 2 : 1) * scales.count)
    }
}

/// Argmax over classes of [1, C, H, W] or [C, H, W] scores: [H, W] int64.
func argmaxPrediction(_ scores: Tensor) throws -> Tensor {
    try Kernels.argmax(scores, dim: scores.rank - 3).reshape(Array(scores.shape.suffix(2)))
}

/// The parts among `pairs` that exist, for a method's `parts`.
public func methodParts(_ pairs: (String, (any MethodPart)?)...) -> [(name: String, part: any MethodPart)] {
    pairs.compactMap { name, part in part.map { (name, $0) } }
}
