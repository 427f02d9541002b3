// TENT: Wang, Shelhamer, Liu, Olshausen, Darrell, "Tent: Fully Test-Time Adaptation by
// Entropy Minimization", ICLR 2021.
import Torch
import TorchNN

/// Entropy minimisation: loss = mean over pixels of -sum_c p_c log p_c with p = softmax(z);
/// BatchNorm on the batch's statistics (or the BN prior when configured); by default only
/// BatchNorm's affine parameters adapt. The prediction comes from the forward before the step.
public final class Tent: AdaptationMethod, TestTimeMethod {
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .tent)) throws {
        try super.init(
            kind: .tent, model: model, config: config, statistics: config.bnPrior.map { .prior($0) } ?? .batch)
    }

    /// Mean per-pixel Shannon entropy of softmax(logits) over dim 1.
    public static func entropy(_ logits: Tensor) throws -> Tensor {
        let logP = try logits.logSoftmax(dim: 1)
        return try -(logP.exp() * logP).sum(dims: [1]).mean()
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let (logits, scores, reset, disagreement) = try monitoredForward(input)
        let (losses, nonFinite) = try adapt(input: input, firstLogits: logits) { logits in
            let entropy = try Tent.entropy(logits)
            return (entropy, ["entropy": entropy])
        }
        return FrameResult(
            prediction: try argmaxPrediction(scores), scores: scores, scoresAreProbabilities: false, losses: losses,
            nonFiniteLoss: nonFinite, reset: reset, disagreement: disagreement)
    }
}
