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
    /// True when the drift monitor reset the weights to the source on this frame.
    public var reset = false
    /// The drift monitor's measure on this frame: the fraction of pixels whose adapted
    /// prediction differs from bn-prior's (nil without the monitor).
    public var disagreement: Double?

    /// The per-pixel class probabilities [1, K, H, W] behind the prediction.
    public func probabilities() throws -> Tensor {
        scoresAreProbabilities ? scores : try scores.softmax(dim: 1)
    }
}

/// A test-time method: predicts each incoming frame, then (maybe) adapts the model.
public protocol TestTimeMethod: AdaptationMethod {
    /// Predicts `input` (a normalised image [1, 3, H, W]) and adapts on it.
    func process(_ input: Tensor) throws -> FrameResult
}

/// What every test-time method shares: the model, its source snapshot, the adapted
/// parameters, the optimizer and the random generator, saved and restored together so an
/// interrupted stream can resume exactly. Each method subclasses it and conforms to
/// `TestTimeMethod`.
public class AdaptationMethod {
    public let kind: MethodKind
    public let config: AdaptationConfig
    public let model: any SegmentationModel
    /// The source weights and statistics, for episodic resets and restoration.
    public let source: Snapshot
    /// The parameters the optimizer updates (empty for methods without a step).
    public let adapted: [Parameter]
    public private(set) var optimizer: Optimizer?
    public let generator: Generator
    /// The mean teacher's values of the adapted parameters (`AdaptationConfig.teacherMomentum`).
    private var teacher: [Tensor] = []
    /// Called after each frame's first backward pass, before the update, with the adapted
    /// parameters and their gradients (for diagnostics).
    public var gradientObserver: (([Parameter]) throws -> Void)?

    init(kind: MethodKind, model: any SegmentationModel, config: AdaptationConfig, statistics: BatchNormStatistics)
        throws
    {
        self.kind = kind
        self.config = config
        self.model = model
        model.eval()
        let statistics = config.bnMomentum.map { BatchNormStatistics.movingAverage($0) } ?? statistics
        for bn in model.batchNormLayers { bn.statistics = statistics }
        source = try Snapshot(of: model)
        generator = try Generator(seed: config.seed)
        if config.learningRate > 0 {
            // Only the adapted parameters take gradients; the others are frozen for speed.
            let chosen = model.parameters(for: config.parameters)
            let ids = Set(chosen.map(ObjectIdentifier.init))
            for (_, parameter) in model.namedParameters() where !ids.contains(ObjectIdentifier(parameter)) {
                try parameter.setTrainable(false)
            }
            adapted = chosen
            optimizer = try config.makeOptimizer(chosen)
            if config.teacherMomentum != nil { teacher = try chosen.map { try $0.value.detach().clone() } }
        } else {
            try model.freeze()
            adapted = []
            optimizer = nil
        }
    }

    /// Logits [V, C, H, W] of the image and, with `flip`, of its mirror image flipped back
    /// into the image's frame (V = 2), from one batched forward pass. The batch is taken apart
    /// by `unbind`, whose backward stacks the views' gradients in one copy; two `narrow`s
    /// would each scatter theirs into a zero-filled tensor of the whole batch, then add the two.
    func viewLogits(_ input: Tensor) throws -> Tensor {
        guard config.flip else { return try model.logits(input) }
        let views = try model.logits(Tensor.cat([input, input.flip([3])], dim: 0)).unbind(dim: 0)
        return try Tensor.stack([views[0], views[1].flip([2])], dim: 0)
    }

    /// Takes the configured number of gradient steps on `loss(logits)`, the first one on the
    /// already computed `logits`; returns the first step's loss terms. A non-finite loss stops
    /// before its backward pass and leaves the weights untouched.
    func adapt(
        input: Tensor, firstLogits: Tensor, loss: (Tensor) throws -> (total: Tensor, terms: [String: Tensor])
    ) throws -> (losses: [String: Double], nonFinite: Bool) {
        guard let optimizer else { return ([:], false) }
        var reported: [String: Double] = [:]
        var logits = firstLogits
        for step in 0..<config.stepsPerFrame {
            if step > 0 { logits = try viewLogits(input) }
            let classes = model.card.classNames.count
            let (total, terms) = try loss(
                config.taskOutputsOnly && classes < logits.shape[1]
                    ? logits.narrow(dim: 1, start: 0, length: classes) : logits)
            let value = try total.item()
            if step == 0 {
                reported = try terms.mapValues { try $0.item() }
                reported["loss"] = value
            }
            guard value.isFinite else { return (reported, true) }
            try optimizer.zeroGrad()
            try total.backward()
            if step == 0 { try gradientObserver?(adapted) }
            if let limit = config.maxGradientNorm { try clipGradientNorm(to: limit) }
            try optimizer.step()
            try afterStep()
            try updateTeacher()
        }
        if config.episodic { try resetToSource() }
        return (reported, false)
    }

    /// The forward pass of a method with a step: the views' logits (with their graph) and the
    /// scores to predict from, the mean of the views' logits.
    ///
    /// With the drift monitor (`AdaptationConfig.resetThreshold`), the bn-prior scores of the
    /// source weights are computed first (the weights are swapped in and back before any
    /// graph exists); when their argmax disagrees with the adapted one on more than the
    /// threshold's fraction of pixels, the method resets to the source, the logits are
    /// recomputed from it, and the frame is predicted from the bn-prior scores.
    func monitoredForward(_ input: Tensor) throws -> (
        logits: Tensor, scores: Tensor, reset: Bool, disagreement: Double?
    ) {
        let anchor = try config.resetThreshold == nil || optimizer == nil ? nil : bnPriorSourceScores(input)
        let teacherScores = try teacher.isEmpty ? nil : self.teacherScores(input)
        let logits = try viewLogits(input)
        let scores = try teacherScores ?? withNoGrad { try logits.detach().mean(dims: [0], keepDim: true) }
        guard let anchor, let threshold = config.resetThreshold else { return (logits, scores, false, nil) }
        let disagreement = try withNoGrad {
            try argmaxPrediction(anchor).ne(argmaxPrediction(scores)).to(.float32).mean().item()
        }
        guard disagreement > threshold else { return (logits, scores, false, disagreement) }
        try resetToSource()
        return (try viewLogits(input), anchor, true, disagreement)
    }

    /// Mean of the views' logits under the teacher's weights, the student's put back after.
    private func teacherScores(_ input: Tensor) throws -> Tensor {
        let student = try adapted.map { try $0.value.detach().clone() }
        try withNoGrad { for (parameter, value) in zip(adapted, teacher) { try parameter.value.copy_(value) } }
        let scores = try withNoGrad { try viewLogits(input).mean(dims: [0], keepDim: true) }
        try withNoGrad { for (parameter, value) in zip(adapted, student) { try parameter.value.copy_(value) } }
        return scores
    }

    /// theta_t <- a theta_t + (1 - a) theta for the teacher's copy of every adapted parameter.
    private func updateTeacher() throws {
        guard let momentum = config.teacherMomentum else { return }
        try withNoGrad {
            for (value, parameter) in zip(teacher, adapted) {
                try value.mul_(momentum)
                try value.add_(parameter.value.detach(), alpha: 1 - momentum)
            }
        }
    }

    /// Mean of the views' logits under the source weights with BN prior statistics (prior
    /// `bnPrior`, or 0.85), leaving the current weights and statistics modes as they were.
    private func bnPriorSourceScores(_ input: Tensor) throws -> Tensor {
        let current = try Snapshot(of: model)
        try source.restore(model)
        let layers = model.batchNormLayers
        let modes = layers.map(\.statistics)
        for layer in layers { layer.statistics = .prior(config.bnPrior ?? 0.85) }
        let scores = try withNoGrad { try viewLogits(input).mean(dims: [0], keepDim: true) }
        for (layer, mode) in zip(layers, modes) { layer.statistics = mode }
        try current.restore(model)
        return scores
    }

    /// Scales the adapted parameters' gradients by min(1, limit / ||g||), ||g|| the L2 norm of
    /// all of them together.
    func clipGradientNorm(to limit: Double) throws {
        let grads = adapted.compactMap { $0.value.grad }
        var squares = 0.0
        for grad in grads { squares += try (grad * grad).sum().item() }
        let norm = squares.squareRoot()
        guard norm > limit else { return }
        try withNoGrad { for grad in grads { try grad.mul_(limit / norm) } }
    }

    /// Called after every optimizer step (OCL restores weights here).
    func afterStep() throws {}

    /// Returns the weights, statistics and optimizer to their source state.
    public func resetToSource() throws {
        try source.restore(model)
        if optimizer != nil { optimizer = try config.makeOptimizer(adapted) }
        if !teacher.isEmpty { teacher = try adapted.map { try $0.value.detach().clone() } }
    }

    // MARK: state for resuming

    /// Everything that changes along the stream: model weights and buffers ("model."),
    /// optimizer state ("optimizer."), the generator ("generator.state").
    public func state() throws -> StateDict {
        var dict = StateDict(try model.stateDict().map { ("model." + $0.name, try $0.tensor.clone()) })
        for (name, tensor) in try optimizer?.state() ?? StateDict() { dict["optimizer." + name] = tensor }
        dict["generator.state"] = try generator.state()
        for (index, value) in teacher.enumerated() { dict["teacher.\(index)"] = try value.clone() }
        return dict
    }

    public func loadState(_ state: StateDict) throws {
        func part(_ prefix: String) -> StateDict {
            StateDict(
                state.filter { $0.name.hasPrefix(prefix) }.map { (String($0.name.dropFirst(prefix.count)), $0.tensor) })
        }
        try model.load(part("model."))
        try optimizer?.loadState(part("optimizer."))
        if let generatorState = state["generator.state"] { try generator.setState(generatorState) }
        for index in teacher.indices {
            guard let value = state["teacher.\(index)"] else { continue }
            try withNoGrad { try teacher[index].copy_(value) }
        }
    }

    /// Creates the method `kind` on `model` with `config`.
    public static func make(_ kind: MethodKind, model: any SegmentationModel, config: AdaptationConfig) throws
        -> any TestTimeMethod
    {
        switch kind {
        case .source: return try SourceOnly(model: model, config: config)
        case .bnPrior: return try BNPriorAdaptation(model: model, config: config)
        case .tent: return try Tent(model: model, config: config)
        case .ocl: return try OCL(model: model, config: config)
        }
    }
}

/// Argmax over classes of [1, C, H, W] or [C, H, W] scores: [H, W] int64.
func argmaxPrediction(_ scores: Tensor) throws -> Tensor {
    try scores.argmax(dim: scores.rank - 3).reshape(Array(scores.shape.suffix(2)))
}
