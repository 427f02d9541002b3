// CoTTA: Wang, Fink, Van Gool, Dai, "Continual Test-Time Domain Adaptation", CVPR 2022.
import Torch
import TorchNN

/// Continual test-time adaptation with a mean teacher, one image at a time:
/// 1. the source model's confidence on the frame, the mean over pixels of max_c p_c, decides
///    the teacher's prediction: below `confidenceThreshold` the mean of the teacher's softmax
///    probabilities over augmented views (each scale of `augmentationScales`, plain and
///    flipped, resized back to the frame), else the teacher's plain prediction;
/// 2. the student is trained on the teacher's probabilities as soft pseudo-labels, loss =
///    mean over pixels of -sum_c p_teacher,c log p_student,c, one optimizer step (Adam);
/// 3. the teacher follows the student, theta_t <- a theta_t + (1 - a) theta, a = 0.999;
/// 4. stochastic restoration: each weight element returns to its source value with
///    probability `maskRatio` (0.01);
/// 5. the frame's prediction is the teacher's (step 1).
///
/// Defaults are the paper's segmentation setting (Cityscapes -> ACDC): all parameters, Adam at
/// lr 6e-5 / 8 = 7.5e-6, views at scales 0.5 ... 2.0 with flips. BatchNorm normalises with each
/// frame's statistics, as the reference code's training-mode networks do.
public final class CoTTA: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let gradientStep: GradientStep?
    let teacher: MeanTeacher
    let restoration: StochasticRestoration
    let random: RandomNumbers

    public static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.learningRate = 6e-5 / 8
        settings.momentum = 0
        settings.optimizer = .adam
        settings.teacherMomentum = 0.999
        settings.maskRatio = 0.01
        settings.confidenceThreshold = 0.69
        settings.augmentationScales = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
        return MethodEntry(
            name: "cotta", summary: "Mean teacher over augmented views, soft pseudo-labels, restoration (Wang et al. 2022).",
            type: CoTTA.self, lossTerms: ["loss"], settings: settings)
    }()

    /// - Throws: without a teacher momentum (the teacher is the method).
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .cotta)) throws {
        guard let momentum = config.teacherMomentum else {
            throw TorchError("CoTTA predicts with a mean teacher: give it a teacher momentum (0.999 in the paper)")
        }
        self.model = model
        self.config = config
        let adapted = try model.prepareForAdaptation(
            statistics: config.batchNormStatistics(otherwise: .batch), adapting: config.learningRate > 0 ? config.parameters : nil)
        source = try Snapshot(of: model)
        gradientStep = adapted.isEmpty ? nil : try GradientStep(adapted, model: model, config: config)
        teacher = try MeanTeacher(following: adapted, momentum: momentum)
        restoration = StochasticRestoration(ratio: config.maskRatio, source: source)
        random = try RandomNumbers(seed: config.seed)
    }

    public var parts: [(name: String, part: any MethodPart)] {
        methodParts(("optimizer", gradientStep), ("teacher", teacher), ("generator", random))
    }

    /// Mean over pixels of the largest class probability [1, K, H, W] -> scalar.
    static func confidence(_ probabilities: Tensor) throws -> Double {
        try probabilities.max(dim: 1).values.mean().item()
    }

    /// The mean of softmax probabilities [1, K, H, W] over the views: the frame at each scale
    /// (bilinear, corners not aligned) and its mirror image, each resized back to the frame.
    func augmentedProbabilities(_ input: Tensor) throws -> Tensor {
        let (height, width) = (input.shape[2], input.shape[3])
        var sum: Tensor?
        for scale in config.augmentationScales {
            let size = Pair(
                Swift.max(1, Int((Double(height) * scale).rounded())), Swift.max(1, Int((Double(width) * scale).rounded())))
            let scaled = scale == 1 ? input : try interpolate(input, size: size, mode: .bilinear(alignCorners: false))
            let logits = try model.viewLogits(scaled, flip: true)
            let back = scale == 1 ? logits : try interpolate(logits, size: Pair(height, width), mode: .bilinear(alignCorners: false))
            let probabilities = try back.softmax(dim: 1).sum(dims: [0], keepDim: true)
            sum = try sum.map { try $0 + probabilities } ?? probabilities
        }
        return try sum! / Double(2 * config.augmentationScales.count)
    }

    /// The source model's confidence on `input`, the current weights put back after.
    func sourceConfidence(_ input: Tensor) throws -> Double {
        let current = try Snapshot(of: model)
        try source.restore(model)
        let confidence = try withNoGrad { try Self.confidence(model.logits(input).softmax(dim: 1)) }
        try current.restore(model)
        return confidence
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let useViews = try sourceConfidence(input) < config.confidenceThreshold
        let target = try teacher.withTeacherWeights {
            try useViews ? augmentedProbabilities(input) : model.logits(input).softmax(dim: 1)
        }
        guard let gradientStep else { return try FrameResult(scores: target, areProbabilities: true) }
        let logits = try model.logits(input)
        let (losses, nonFinite) = try gradientStep.run(
            firstLogits: logits, forward: { try model.logits(input) },
            loss: { logits in
                let classes = logits.shape[1]
                let pseudo = classes < target.shape[1] ? try target.narrow(dim: 1, start: 0, length: classes) : target
                return (try -(pseudo * logits.logSoftmax(dim: 1)).sum(dims: [1]).mean(), [:])
            },
            afterStep: {
                try teacher.update()
                try restoration.apply(to: model, adapted: adapted, generator: random.generator)
            })
        return try FrameResult(scores: target, areProbabilities: true, losses: losses, nonFiniteLoss: nonFinite)
    }
}
