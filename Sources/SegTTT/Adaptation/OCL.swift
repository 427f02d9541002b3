// Output Contrastive Loss: Zhang et al., "Test-Time Training for Semantic Segmentation
// with Output Contrastive Loss", arXiv 2311.07877 (2023). Behaviour: shared/ALGORITHM.md.
import Torch
import TorchNN

/// Test-time training with Output Contrastive Loss, one image at a time:
/// 1. forward the image and its mirror image together (BN prior statistics), flip the second
///    view's logits back;
/// 2. predict from this forward: argmax of the mean of the two views' logits;
/// 3. loss = posCoeff * pos + negCoeff * neg (`OutputContrastiveLoss`), one optimizer step
///    (SGD lr 2e-5, momentum 0.9, weight decay 5e-4 on all parameters by default);
/// 4. stochastic restoration of the weights towards the source with ratio `maskRatio`.
public final class OCL: AdaptationMethod, TestTimeMethod {
    public let loss: OutputContrastiveLoss

    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .ocl)) throws {
        loss = OutputContrastiveLoss(
            posCoeff: config.posCoeff, negCoeff: config.negCoeff, negativeStride: config.negativeStride)
        guard config.flip else {
            throw TorchError("OCL contrasts two views of each image: it needs flip = true")
        }
        let statistics: BatchNormStatistics = config.bnPrior.map { .prior($0) } ?? .running
        try super.init(kind: .ocl, model: model, config: config, statistics: statistics)
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let (logits, scores, reset, disagreement) = try monitoredForward(input)
        let (losses, nonFinite) = try adapt(input: input, firstLogits: logits) { logits in
            let (total, pos, neg) = try loss(logits)
            return (total, ["pos": pos, "neg": neg])
        }
        return FrameResult(
            prediction: try argmaxPrediction(scores), scores: scores, scoresAreProbabilities: false, losses: losses,
            nonFiniteLoss: nonFinite, reset: reset, disagreement: disagreement)
    }

    override func afterStep() throws {
        try StochasticRestoration(ratio: config.maskRatio, source: source).apply(
            to: model, adapted: adapted, generator: generator)
    }
}
