import Torch
import TorchNN

/// The frozen network: no adaptation, running BatchNorm statistics (or the BN prior when
/// set). With `flip`, the prediction is the argmax of the mean of the two views' softmax
/// probabilities (shared/ALGORITHM.md: probabilities here, logits in OCL).
public final class SourceOnly: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot

    public static let entry = MethodEntry(
        name: "source", summary: "The frozen network, no adaptation.", type: SourceOnly.self,
        settings: AdaptationConfig())

    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .source)) throws {
        self.model = model
        self.config = config
        _ = try model.prepareForAdaptation(statistics: config.batchNormStatistics(otherwise: .running), adapting: nil)
        source = try Snapshot(of: model)
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let scores = try withNoGrad {
            try model.viewLogits(input, flip: config.flip).softmax(dim: 1).mean(dims: [0], keepDim: true)
        }
        return try FrameResult(scores: scores, areProbabilities: true)
    }
}
