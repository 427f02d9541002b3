import Torch
import TorchNN

/// The gradient step of a method: an optimizer over the adapted parameters that takes
/// `stepsPerFrame` steps per frame, with the gradient-norm clipping of the settings
/// (g <- g * min(1, maxGradientNorm / ||g||), ||g|| over all adapted parameters together).
/// A non-finite loss stops before its backward pass and leaves the weights untouched.
public final class GradientStep: MethodPart {
    /// The parameters the optimizer updates, in state-dict order.
    public let parameters: [Parameter]
    public private(set) var optimizer: Optimizer
    public let config: AdaptationConfig
    /// With `taskOutputsOnly`, the number of task classes the loss keeps (the first logits).
    let taskOutputs: Int?
    /// Called after each frame's first backward pass, before the update, with the adapted
    /// parameters and their gradients (for diagnostics).
    public var observer: (([Parameter]) throws -> Void)?

    /// - Parameter model: its card's class count bounds the loss's outputs under
    ///   `taskOutputsOnly`.
    public init(_ parameters: [Parameter], model: any SegmentationModel, config: AdaptationConfig) throws {
        self.parameters = parameters
        self.config = config
        optimizer = try config.makeOptimizer(parameters)
        taskOutputs = config.taskOutputsOnly ? model.card.classNames.count : nil
    }

    /// Takes the configured number of steps on `loss(logits)`, the first one on the already
    /// computed `firstLogits`, later ones on `forward()`; `afterStep` runs after every update.
    ///
    /// - Returns: the first step's loss terms ("loss" the total) and whether it was not finite.
    public func run(
        firstLogits: Tensor, forward: () throws -> Tensor,
        loss: (Tensor) throws -> (total: Tensor, terms: [String: Tensor]),
        afterStep: () throws -> Void = {}
    ) throws -> (losses: [String: Double], nonFinite: Bool) {
        var reported: [String: Double] = [:]
        var logits = firstLogits
        for step in 0..<config.stepsPerFrame {
            if step > 0 { logits = try forward() }
            if let taskOutputs, taskOutputs < logits.shape[1] {
                logits = try logits.narrow(dim: 1, start: 0, length: taskOutputs)
            }
            let (total, terms) = try loss(logits)
            let value = try total.item()
            if step == 0 {
                reported = try terms.mapValues { try $0.item() }
                reported["loss"] = value
            }
            guard value.isFinite else { return (reported, true) }
            try optimizer.zeroGrad()
            try total.backward()
            if step == 0 { try observer?(parameters) }
            if let limit = config.maxGradientNorm { try clipGradientNorm(to: limit) }
            try optimizer.step()
            try afterStep()
        }
        return (reported, false)
    }

    /// Scales the gradients by min(1, limit / ||g||).
    func clipGradientNorm(to limit: Double) throws {
        let grads = parameters.compactMap { $0.value.grad }
        var squares = 0.0
        for grad in grads { squares += try (grad * grad).sum().item() }
        let norm = squares.squareRoot()
        guard norm > limit else { return }
        try withNoGrad { for grad in grads { try grad.mul_(limit / norm) } }
    }

    public func state() throws -> StateDict { try optimizer.state() }
    public func loadState(_ state: StateDict) throws { try optimizer.loadState(state) }
    /// A fresh optimizer (no momentum, step count 0).
    public func reset() throws { optimizer = try config.makeOptimizer(parameters) }
}

extension GradientStep {
    /// The set-up of a method with a step: the model configured for it
    /// (`prepareForAdaptation`, BatchNorm on the settings' statistics or else `statistics`),
    /// its source snapshot, and at a positive learning rate the step over `config.parameters`.
    public static func configure(
        _ model: any SegmentationModel, config: AdaptationConfig, statistics: BatchNormStatistics
    ) throws -> (source: Snapshot, step: GradientStep?) {
        let learns = config.learningRate > 0
        let adapted = try model.prepareForAdaptation(
            statistics: config.batchNormStatistics(otherwise: statistics), adapting: learns ? config.parameters : nil)
        let source = try Snapshot(of: model)
        return (source, learns ? try GradientStep(adapted, model: model, config: config) : nil)
    }
}
