import Torch
import TorchNN

/// The frozen network: no adaptation, running BatchNorm statistics. With `flip`, the
/// prediction is the argmax of the mean of the two views' softmax probabilities.
public final class SourceOnly: AdaptationMethod, TestTimeMethod {
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .source)) throws {
        try super.init(
            kind: .source, model: model, config: config, statistics: config.bnPrior.map { .prior($0) } ?? .running)
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let scores = try withNoGrad { try viewLogits(input).softmax(dim: 1).mean(dims: [0], keepDim: true) }
        return FrameResult(
            prediction: try argmaxPrediction(scores), scores: scores, scoresAreProbabilities: true, losses: [:],
            nonFiniteLoss: false)
    }
}
