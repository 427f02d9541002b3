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
/// 4. stochastic restoration of the weights towards the source with ratio `maskRatio` (0.01).
///
/// The recommended preset adds the safeguards of docs/STABILITY.md: the gradient's L2 norm
/// clipped to 10, so a step moves the weights by at most lr * 10 whatever the network and
/// pixel count, and the drift monitor at 0.05.
public final class OCL: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let loss: OutputContrastiveLoss
    public let gradientStep: GradientStep?
    let teacher: MeanTeacher?
    let monitor: DriftMonitor?
    let restoration: StochasticRestoration
    let random: RandomNumbers

    public static let entry = MethodEntry(
        name: "ocl", summary: "Output Contrastive Loss on two flip views, BN prior 0.85 (Zhang et al. 2023).",
        type: OCL.self, lossTerms: ["loss", "pos", "neg"]
    ) { preset in
        var settings = AdaptationConfig()
        settings.learningRate = 2e-5
        settings.momentum = 0.9
        settings.weightDecay = 5e-4
        settings.bnPrior = 0.85
        settings.flip = true
        settings.maskRatio = 0.01
        if preset == .recommended {
            settings.maxGradientNorm = 10
            settings.resetThreshold = 0.05
        }
        return settings
    }

    /// - Throws: without `flip` (OCL contrasts the two views).
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .ocl)) throws {
        guard config.flip else {
            throw TorchError("OCL contrasts two views of each image: it needs flip = true")
        }
        self.model = model
        self.config = config
        loss = OutputContrastiveLoss(
            posCoeff: config.posCoeff, negCoeff: config.negCoeff, negativeStride: config.negativeStride)
        (source, gradientStep) = try GradientStep.configure(model, config: config, statistics: .running)
        let adapted = gradientStep?.parameters ?? []
        teacher = try gradientStep != nil ? config.teacherMomentum.map { try MeanTeacher(following: adapted, momentum: $0) } : nil
        monitor = gradientStep != nil ? DriftMonitor(config) : nil
        restoration = StochasticRestoration(ratio: config.maskRatio, source: source)
        random = try RandomNumbers(seed: config.seed)
    }

    public var parts: [(name: String, part: any MethodPart)] {
        methodParts(("optimizer", gradientStep), ("teacher", teacher), ("generator", random))
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let (logits, scores, reset, disagreement) = try monitoredForward(input, monitor: monitor, teacher: teacher)
        let (losses, nonFinite) = try gradientStep?.run(
            firstLogits: logits, forward: { try model.viewLogits(input, flip: config.flip) },
            loss: { logits in
                let (total, pos, neg) = try loss(logits)
                return (total, ["pos": pos, "neg": neg])
            },
            afterStep: {
                try restoration.apply(to: model, adapted: adapted, generator: random.generator)
                try teacher?.update()
            }) ?? ([:], false)
        return try FrameResult(
            scores: scores, losses: losses, nonFiniteLoss: nonFinite, reset: reset, disagreement: disagreement)
    }
}
