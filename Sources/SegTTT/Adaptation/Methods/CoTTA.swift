// CoTTA: Wang, Fink, Van Gool, Dai, "Continual Test-Time Domain Adaptation", CVPR 2022.
import SegTTTKernels
import Torch
import TorchNN

/// Continual test-time adaptation with a mean teacher, one image at a time, as its
/// segmentation code does it (Cityscapes -> ACDC):
/// 1. pseudo-labels, per pixel: where the source model's confidence (its largest class
///    probability) exceeds `confidenceThreshold`, the argmax of the teacher's prediction of
///    the frame; elsewhere the argmax of the mean of the teacher's softmax probabilities over
///    augmented views (each scale of `augmentationScales`, plain and flipped, resized back to
///    the frame, bilinear, corners not aligned);
/// 2. the frame's prediction is the pseudo-label map (from the teacher, before any update);
/// 3. the student takes one step on the cross-entropy of its logits of the frame against the
///    pseudo-labels, mean over pixels (Adam);
/// 4. the teacher follows the student, theta_t <- a theta_t + (1 - a) theta, a = 0.999;
/// 5. stochastic restoration: each weight element of the student returns to its source value
///    with probability `maskRatio` (0.01).
///
/// Defaults are the segmentation setting: all parameters, Adam at lr 6e-5 / 8 = 7.5e-6,
/// threshold 0.69, views at scales 0.5 ... 2.0 with flips. The networks run in evaluation
/// mode there, so BatchNorm keeps its running statistics (`bnPrior` or `bnMomentum` change it).
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
            name: "cotta", summary: "Mean teacher, augmented views where the source is unsure, restoration (Wang et al. 2022).",
            type: CoTTA.self, lossTerms: ["loss"], settings: settings)
    }()

    /// - Throws: without a teacher momentum (the teacher is the method).
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .cotta)) throws {
        guard let momentum = config.teacherMomentum else {
            throw TorchError("CoTTA predicts with a mean teacher: give it a teacher momentum (0.999 in the paper)")
        }
        self.model = model
        self.config = config
        (source, gradientStep) = try GradientStep.configure(model, config: config, statistics: .running)
        let adapted = gradientStep?.parameters ?? []
        teacher = try MeanTeacher(following: adapted, momentum: momentum)
        restoration = StochasticRestoration(ratio: config.maskRatio, source: source)
        random = try RandomNumbers(seed: config.seed)
    }

    public var parts: [(name: String, part: any MethodPart)] {
        methodParts(("optimizer", gradientStep), ("teacher", teacher), ("generator", random))
    }

    /// The source model's largest class probability per pixel [1, 1, H, W], the current weights
    /// put back after.
    func sourceConfidence(_ input: Tensor) throws -> Tensor {
        let current = try Snapshot(of: model)
        try source.restore(model)
        let confidence = try withNoGrad { try model.logits(input).softmax(dim: 1).max(dim: 1, keepDim: true).values }
        try current.restore(model)
        return confidence
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let confident = try sourceConfidence(input).gt(config.confidenceThreshold)
        let target = try teacher.withTeacherWeights { () -> Tensor in
            let plain = try model.logits(input).softmax(dim: 1)
            guard try confident.logicalNot().to(.int64).sum().itemInt() > 0 else { return plain }
            return try Tensor.where(
                confident, plain, model.augmentedProbabilities(input, scales: config.augmentationScales, flip: true))
        }
        guard let gradientStep else { return try FrameResult(scores: target, areProbabilities: true) }
        let (losses, nonFinite) = try gradientStep.run(
            firstLogits: try model.logits(input), forward: { try model.logits(input) },
            loss: { logits in
                // Under taskOutputsOnly the logits keep the task's classes only.
                let classes = logits.shape[1]
                let kept = classes < target.shape[1] ? try target.narrow(dim: 1, start: 0, length: classes) : target
                return (try crossEntropy(logits, target: Kernels.argmax(kept, dim: 1)), [:])
            },
            afterStep: {
                try teacher.update()
                try restoration.apply(to: model, adapted: adapted, generator: random.generator)
            })
        return try FrameResult(scores: target, areProbabilities: true, losses: losses, nonFiniteLoss: nonFinite)
    }
}
