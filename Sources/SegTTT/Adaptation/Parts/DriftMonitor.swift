import Torch
import TorchNN

/// The drift monitor of the recommended preset (docs/STABILITY.md): before a method adapts
/// on a frame, the bn-prior scores of the source weights (prior `prior`, flip views as the
/// method's) are its anchor; when the adapted prediction leaves the anchor's on more than
/// `threshold` of the pixels, the method resets to the source and the frame takes the anchor.
public struct DriftMonitor {
    public let threshold: Double
    public let prior: Double

    /// The monitor the settings ask for (`resetThreshold`), if any.
    public init?(_ config: AdaptationConfig) {
        guard let threshold = config.resetThreshold else { return nil }
        self.threshold = threshold
        prior = config.bnPrior ?? 0.85
    }

    /// Mean of the views' logits [1, K, H, W] under the source weights with BN prior
    /// statistics, leaving the method's current weights and statistics modes as they were.
    public func anchorScores(_ method: some TestTimeMethod, _ input: Tensor) throws -> Tensor {
        let model = method.model
        let current = try Snapshot(of: model)
        try method.source.restore(model)
        let layers = model.batchNormLayers
        let modes = layers.map(\.statistics)
        for layer in layers { layer.statistics = .prior(prior) }
        defer {
            for (layer, mode) in zip(layers, modes) { layer.statistics = mode }
        }
        let scores = try withNoGrad {
            try model.viewLogits(input, flip: method.config.flip).mean(dims: [0], keepDim: true)
        }
        try current.restore(model)
        return scores
    }

    /// The fraction of pixels whose argmax differs between two score maps [1, K, H, W].
    public static func disagreement(_ a: Tensor, _ b: Tensor) throws -> Double {
        try withNoGrad { try argmaxPrediction(a).ne(argmaxPrediction(b)).to(.float32).mean().item() }
    }
}

extension TestTimeMethod {
    /// The forward pass of a method with a step: the views' logits (with their graph) and the
    /// scores to predict from, the mean of the views' logits, or the teacher's when there is one.
    ///
    /// With a drift monitor, its anchor is computed first (the weights are swapped in and back
    /// before any graph exists); when the prediction leaves it on more than the threshold's
    /// fraction of pixels, the method resets, the logits are recomputed from the source, and the
    /// frame is predicted from the anchor.
    func monitoredForward(_ input: Tensor, monitor: DriftMonitor?, teacher: MeanTeacher?) throws -> (
        logits: Tensor, scores: Tensor, reset: Bool, disagreement: Double?
    ) {
        let anchor = try monitor.map { try $0.anchorScores(self, input) }
        let teacherScores = try teacher.map { teacher in
            try teacher.withTeacherWeights { try model.viewLogits(input, flip: config.flip).mean(dims: [0], keepDim: true) }
        }
        let logits = try model.viewLogits(input, flip: config.flip)
        let scores = try teacherScores ?? withNoGrad { try logits.detach().mean(dims: [0], keepDim: true) }
        guard let anchor, let monitor else { return (logits, scores, false, nil) }
        let disagreement = try DriftMonitor.disagreement(anchor, scores)
        guard disagreement > monitor.threshold else { return (logits, scores, false, disagreement) }
        try reset()
        return (try model.viewLogits(input, flip: config.flip), anchor, true, disagreement)
    }
}
