import Torch
import TorchNN

/// BatchNorm adaptation without a gradient step: every BatchNorm layer normalises with
/// prior * source + (1 - prior) * batch statistics (OCL's forward pass, without its update).
/// The prediction is the argmax of the mean of the views' logits.
public final class BNPriorAdaptation: AdaptationMethod, TestTimeMethod {
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .bnPrior)) throws {
        try super.init(kind: .bnPrior, model: model, config: config, statistics: .prior(config.bnPrior ?? 0.85))
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let logits = try withNoGrad { try viewLogits(input).mean(dims: [0], keepDim: true) }
        return FrameResult(
            prediction: try argmaxPrediction(logits), scores: logits, scoresAreProbabilities: false, losses: [:],
            nonFiniteLoss: false)
    }
}
