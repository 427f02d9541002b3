// Pseudo-labelling with class reset: Volpi, de Jorge, Sabater, Csurka, "On the Road to Online
// Adaptation for Semantic Image Segmentation" (OASIS), CVPR 2022.
import Torch
import TorchNN

/// Self-training on the network's own pseudo-labels, with OASIS's class reset, one image at a
/// time:
/// 1. the source weights predict the frame (same BatchNorm statistics), and the adapted ones
///    predict it; when the source's prediction holds more than `classResetThreshold` classes
///    more than the adapted one (the collapse of self-training loses classes), the method
///    resets to the source and the frame takes the source's prediction;
/// 2. pseudo-labels: the argmax of the (detached) logits, leaving out pixels whose largest
///    probability is below `confidenceThreshold`;
/// 3. loss: the mean cross-entropy of the logits against the pseudo-labels over the kept
///    pixels, one SGD step.
///
/// OASIS's paper setting (its code, naver/oasis): all parameters, SGD at lr 1e-4 with no
/// momentum, one step, every pixel kept (threshold 0), reset threshold 0.5 (a reset as soon as
/// the source sees one class more). SegTTT's runs predict from the forward pass before the
/// step (OASIS predicts after it) and normalise with the frame's BatchNorm statistics; the
/// classifier's tenfold learning rate of the reference code is left out.
public final class PseudoLabelReset: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let gradientStep: GradientStep?

    public static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.learningRate = 1e-4
        settings.momentum = 0
        settings.classResetThreshold = 0.5
        return MethodEntry(
            name: "pl-reset", summary: "Self-training on pseudo-labels with OASIS's class reset (Volpi et al. 2022).",
            type: PseudoLabelReset.self, lossTerms: ["loss", "kept"], settings: settings)
    }()

    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .plReset)) throws {
        self.model = model
        self.config = config
        (source, gradientStep) = try GradientStep.configure(model, config: config, statistics: .batch)
    }

    public var parts: [(name: String, part: any MethodPart)] { methodParts(("optimizer", gradientStep)) }

    /// The number of distinct classes of a prediction [H, W].
    static func classCount(_ prediction: Tensor) throws -> Int {
        try prediction.reshape([-1]).bincount(minLength: 1).gt(0).to(.int64).sum().itemInt()
    }

    /// The source weights' logits [1, K, H, W] of `input`, the current weights put back after.
    func sourceLogits(_ input: Tensor) throws -> Tensor {
        let current = try Snapshot(of: model)
        try source.restore(model)
        let logits = try withNoGrad { try model.logits(input) }
        try current.restore(model)
        return logits
    }

    /// Pseudo-labels [1, H, W] of `logits`: the argmax, and -1 (left out) where the largest
    /// probability is below `threshold`.
    static func pseudoLabels(_ logits: Tensor, threshold: Double) throws -> Tensor {
        try withNoGrad {
            let (confidence, labels) = try logits.detach().softmax(dim: 1).max(dim: 1)
            guard threshold > 0 else { return labels }
            return try Tensor.where(confidence.lt(threshold), Tensor.full(labels.shape, value: -1, dtype: .int64), labels)
        }
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        // The source's logits come first: swapping the weights in and back after the adapted
        // forward pass would change tensors its graph holds.
        let anchor = try config.classResetThreshold != nil && gradientStep != nil ? sourceLogits(input) : nil
        var logits = try model.logits(input)
        var scores = try logits.detach()
        var reset = false
        if let anchor, let threshold = config.classResetThreshold {
            let lost = try Self.classCount(argmaxPrediction(anchor)) - Self.classCount(argmaxPrediction(scores))
            if Double(lost) > threshold {
                try self.reset()
                logits = try model.logits(input)
                scores = anchor
                reset = true
            }
        }
        let (losses, nonFinite) = try gradientStep?.run(
            firstLogits: logits, forward: { try model.logits(input) },
            loss: { logits in
                let labels = try Self.pseudoLabels(logits, threshold: config.confidenceThreshold)
                let kept = try labels.ge(0).to(.float32).mean()
                return (try crossEntropy(logits, target: labels, ignoreIndex: -1), ["kept": kept])
            }) ?? ([:], false)
        return try FrameResult(scores: scores, losses: losses, nonFiniteLoss: nonFinite, reset: reset)
    }
}
