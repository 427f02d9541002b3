// TENT: Wang, Shelhamer, Liu, Olshausen, Darrell, "Tent: Fully Test-Time Adaptation by
// Entropy Minimization", ICLR 2021.
import Torch
import TorchNN

/// Entropy minimisation: loss = mean over pixels of -sum_c p_c log p_c with p = softmax(z);
/// BatchNorm on the frame's statistics (or the BN prior when configured); by default only
/// BatchNorm's affine parameters adapt, with Adam at lr 1e-4 (TENT's segmentation setting
/// uses Adam; 1e-4 suits one image per step). The prediction comes from the forward pass
/// before the step.
public final class Tent: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let gradientStep: GradientStep?
    let teacher: MeanTeacher?
    let monitor: DriftMonitor?

    public static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.learningRate = 1e-4
        settings.momentum = 0
        settings.optimizer = .adam
        settings.parameters = .batchNormAffine
        return MethodEntry(
            name: "tent", summary: "Entropy minimisation on BatchNorm's affine parameters (Wang et al. 2021).",
            type: Tent.self, lossTerms: ["loss", "entropy"], settings: settings)
    }()

    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .tent)) throws {
        self.model = model
        self.config = config
        (source, gradientStep) = try GradientStep.configure(model, config: config, statistics: .batch)
        let adapted = gradientStep?.parameters ?? []
        teacher = try gradientStep != nil ? config.teacherMomentum.map { try MeanTeacher(following: adapted, momentum: $0) } : nil
        monitor = gradientStep != nil ? DriftMonitor(config) : nil
    }

    public var parts: [(name: String, part: any MethodPart)] {
        methodParts(("optimizer", gradientStep), ("teacher", teacher))
    }

    /// Mean per-pixel Shannon entropy of softmax(logits) over dim 1.
    public static func entropy(_ logits: Tensor) throws -> Tensor {
        let logP = try logits.logSoftmax(dim: 1)
        return try entropy(probabilities: logP.exp(), logProbabilities: logP)
    }

    /// Mean per-pixel Shannon entropy -sum_k q_k log q_k of the distributions over dim 1 whose
    /// probabilities q and their logarithms are given (for callers that need q as well).
    public static func entropy(probabilities: Tensor, logProbabilities: Tensor) throws -> Tensor {
        try -(probabilities * logProbabilities).sum(dims: [1]).mean()
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let (logits, scores, reset, disagreement) = try monitoredForward(input, monitor: monitor, teacher: teacher)
        let (losses, nonFinite) = try gradientStep?.run(
            firstLogits: logits, forward: { try model.viewLogits(input, flip: config.flip) },
            loss: { logits in
                let entropy = try Tent.entropy(logits)
                return (entropy, ["entropy": entropy])
            }, afterStep: { try teacher?.update() }) ?? ([:], false)
        return try FrameResult(
            scores: scores, losses: losses, nonFiniteLoss: nonFinite, reset: reset, disagreement: disagreement)
    }
}
