// BN-alpha: Schneider, Rusak, Eck, Bringmann, Brendel, Bethge, "Improving robustness against
// common corruptions by covariate shift adaptation", NeurIPS 2020.
import Torch
import TorchNN

/// BatchNorm adaptation without a gradient step: every BatchNorm layer normalises with
/// statistics of the source and of the stream, and the prediction is the argmax of the mean
/// of the views' logits. Three registered settings:
/// - bn-prior: prior * source + (1 - prior) * frame with prior 0.85 and the two flip views,
///   i.e. OCL's forward pass without its step (shared/ALGORITHM.md);
/// - bn-alpha: Schneider et al.'s mix N / (N + n) * source + n / (N + n) * frame with their
///   N = 16 source samples and n = 1 frame, a prior of 16/17, one view;
/// - bn-ema: statistics that follow the stream as a moving average, running <- (1 - m) *
///   running + m * frame, normalising with the updated value, m = 0.1 (the momentum
///   BatchNorm trains with in PyTorch), one view.
public final class BatchNormAdaptation: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot

    public static let bnPrior: MethodEntry = {
        var settings = AdaptationConfig()
        settings.bnPrior = 0.85
        settings.flip = true
        return MethodEntry(
            name: "bn-prior", summary: "BatchNorm statistics 0.85 source + 0.15 frame, flip views (OCL without its step).",
            type: BatchNormAdaptation.self, settings: settings)
    }()

    public static let bnAlpha: MethodEntry = {
        var settings = AdaptationConfig()
        settings.bnPrior = 16.0 / 17.0
        return MethodEntry(
            name: "bn-alpha", summary: "BatchNorm statistics mixed N/(N+1) source with N = 16 (Schneider et al. 2020).",
            type: BatchNormAdaptation.self, settings: settings)
    }()

    public static let bnEMA: MethodEntry = {
        var settings = AdaptationConfig()
        settings.bnMomentum = 0.1
        return MethodEntry(
            name: "bn-ema", summary: "BatchNorm statistics follow the stream as a moving average (momentum 0.1).",
            type: BatchNormAdaptation.self, settings: settings)
    }()

    /// - Throws: when the settings name neither a prior nor a momentum (nothing would adapt).
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .bnPrior)) throws {
        guard config.bnPrior != nil || config.bnMomentum != nil || config.bnShrinkage != nil else {
            throw TorchError("BatchNorm adaptation needs bnPrior, bnMomentum or bnShrinkage; without one nothing adapts")
        }
        self.model = model
        self.config = config
        _ = try model.prepareForAdaptation(statistics: config.batchNormStatistics(otherwise: .running), adapting: nil)
        source = try Snapshot(of: model)
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let logits = try withNoGrad { try model.viewLogits(input, flip: config.flip).mean(dims: [0], keepDim: true) }
        return try FrameResult(scores: logits)
    }
}
