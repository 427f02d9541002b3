// DIGA: Wang, Zhong, Jia, Liu, Wu, Zhao, Wang, "Dynamically Instance-Guided Adaptation: A
// Backward-free Approach for Test-Time Domain Adaptive Semantic Segmentation", CVPR 2023.
import Torch
import TorchNN

/// Backward-free adaptation, one image at a time; the weights never change:
/// 1. distribution adaptation: every BatchNorm layer normalises with
///    l * source + (1 - l) * frame statistics, l = `bnPrior` (0.8);
/// 2. the network's features f [D, h, w] (the classifier's input) and logits z; at the
///    features' resolution, pseudo-labels are the argmax of softmax(z) where its largest
///    probability reaches `confidenceThreshold` (0.9);
/// 3. semantic adaptation: the frame's prototypes P_f,c = the mean feature of the pixels
///    labelled c; the stream's prototypes follow them, P_c <- m P_c + (1 - m) P_f,c
///    (m = `prototypeMomentum`, 0.9; a class seen for the first time takes P_f,c);
/// 4. a prototype classifier per set: q_c(x) = softmax over the classes with a prototype of
///    -||f(x) - P_c|| (Euclidean distance, temperature 1); q = a q_stream + (1 - a) q_frame,
///    a = `historyWeight` (0.8);
/// 5. the prediction: argmax of w up(q) + (1 - w) softmax(z), w = `prototypeWeight` (0.8),
///    up() bilinear to the frame's size.
///
/// Defaults are those of the reference code (Waybaba/DIGA). It updates the stream's
/// prototypes from the ground-truth labels after the first frame; here they come from the
/// pseudo-labels, as a method without labels must. The frame's BatchNorm variance is the
/// unbiased one, as in bn-prior (the reference code uses the biased one: a factor n/(n-1)).
public final class DIGA: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let prototypes: ClassPrototypes

    public static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.bnPrior = 0.8
        settings.confidenceThreshold = 0.9
        settings.prototypeMomentum = 0.9
        settings.historyWeight = 0.8
        settings.prototypeWeight = 0.8
        return MethodEntry(
            name: "diga", summary: "Backward-free: instance BatchNorm mix and class prototypes fused with the network (Wang et al. 2023).",
            type: DIGA.self, settings: settings)
    }()

    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .diga)) throws {
        self.model = model
        self.config = config
        _ = try model.prepareForAdaptation(statistics: config.batchNormStatistics(otherwise: .prior(0.8)), adapting: nil)
        source = try Snapshot(of: model)
        prototypes = ClassPrototypes(momentum: config.prototypeMomentum)
    }

    public var parts: [(name: String, part: any MethodPart)] { methodParts(("prototypes", prototypes)) }

    public func process(_ input: Tensor) throws -> FrameResult {
        let probabilities = try withNoGrad { () -> Tensor in
            guard let (features, logits) = try model.classifierFeatures(input) else {
                throw TorchError(
                    "DIGA builds class prototypes from the features the classifier reads, and \(model.card.name) "
                        + "does not expose them; use a native ESPNet or DeepLabV2, or another method")
            }
            let (classes, dims) = (logits.shape[1], features.shape[1])
            let (height, width) = (features.shape[2], features.shape[3])
            let network = try logits.softmax(dim: 1)
            let low = try interpolate(logits, size: Pair(height, width), mode: .bilinear(alignCorners: false))
            let flat = try features.reshape([dims, height * width])  // [D, N]
            let (confidence, labels) = try low.softmax(dim: 1).reshape([classes, height * width]).max(dim: 0)
            let frame = try ClassPrototypes.frameMeans(
                features: flat, labels: labels, keep: confidence.ge(config.confidenceThreshold), classes: classes)
            try prototypes.update(with: frame)
            var mixed = try prototypes.current.map { try ClassPrototypes.classify(flat, $0) }
            if frame.present.contains(true) {
                let own = try ClassPrototypes.classify(flat, frame)
                mixed = try mixed.map { try $0 * config.historyWeight + own * (1 - config.historyWeight) } ?? own
            }
            guard let mixed else { return network }
            let up = try interpolate(
                mixed.reshape([1, classes, height, width]), size: Pair(input.shape[2], input.shape[3]),
                mode: .bilinear(alignCorners: false))
            return try up * config.prototypeWeight + network * (1 - config.prototypeWeight)
        }
        return try FrameResult(scores: probabilities, areProbabilities: true)
    }
}

/// Class prototypes built along a stream (DIGA): per class, a feature vector that follows the
/// frames' class means, P_c <- m P_c + (1 - m) P_frame,c.
public final class ClassPrototypes: MethodPart {
    /// Prototypes [K, D] and which classes have one.
    public struct Set {
        public var means: Tensor
        public var present: [Bool]
    }

    public let momentum: Double
    /// The stream's prototypes (nil before the first confident pixel).
    public private(set) var current: Set?

    public init(momentum: Double) {
        self.momentum = momentum
    }

    /// The mean feature [K, D] of the kept pixels of each class: `features` [D, N], `labels`
    /// [N] int64, `keep` [N] bool.
    static func frameMeans(features: Tensor, labels: Tensor, keep: Tensor, classes: Int) throws -> Set {
        let classIndex = try Tensor.arange(0, Double(classes), dtype: .int64, device: labels.device).reshape([classes, 1])
        let members = try labels.reshape([1, -1]).eq(classIndex).logicalAnd(keep.reshape([1, -1])).to(features.dtype)
        let counts = try members.sum(dims: [1], keepDim: true)  // [K, 1]
        let means = try members.matmul(features.transpose(0, 1)) / counts.clamp(min: 1)
        return Set(means: means, present: try counts.reshape([-1]).gt(0).toArray(Bool.self))
    }

    /// Folds a frame's prototypes in: classes new to the stream take the frame's, the others
    /// follow with the momentum.
    func update(with frame: Set) throws {
        guard var stream = current else {
            if frame.present.contains(true) { current = frame }
            return
        }
        let seen = try Tensor(stream.present.map { $0 ? 1.0 : 0.0 }, shape: [stream.present.count, 1]).to(frame.means.dtype)
        let now = try Tensor(frame.present.map { $0 ? 1.0 : 0.0 }, shape: [frame.present.count, 1]).to(frame.means.dtype)
        // seen and now: the moving average; now only: the frame's; otherwise unchanged.
        let followed = try stream.means * momentum + frame.means * (1 - momentum)
        let both = try seen * now
        stream.means = try followed * both + frame.means * (now - both) + stream.means * (1 - now)
        stream.present = zip(stream.present, frame.present).map { $0 || $1 }
        current = stream
    }

    /// Per-pixel class probabilities [K, N] of the prototype classifier: softmax over the
    /// classes present of -||f - P_c||; absent classes get 0.
    static func classify(_ features: Tensor, _ set: Set) throws -> Tensor {
        let squaredFeatures = try (features * features).sum(dims: [0], keepDim: true)  // [1, N]
        let squaredMeans = try (set.means * set.means).sum(dims: [1], keepDim: true)  // [K, 1]
        let squared = try squaredMeans + squaredFeatures - set.means.matmul(features) * 2
        let distance = try squared.clamp(min: 0).sqrt()
        let present = try Tensor(set.present.map { $0 ? 1.0 : 0.0 }, shape: [set.present.count, 1]).to(features.dtype)
        // Absent classes sit far beyond every present one, so their softmax weight is 0.
        let penalty = try (present * -1 + 1) * 1e30
        return try (distance * -1 - penalty).softmax(dim: 0)
    }

    public func state() throws -> StateDict {
        guard let current else { return StateDict() }
        let present = try Tensor(current.present.map { $0 ? 1.0 : 0.0 }, shape: [current.present.count])
        return StateDict([("means", try current.means.clone()), ("present", present)])
    }

    public func loadState(_ state: StateDict) throws {
        guard let means = state["means"], let present = state["present"] else {
            current = nil
            return
        }
        current = Set(means: try means.clone(), present: try present.toArray(Double.self).map { $0 > 0 })
    }

    public func reset() throws { current = nil }
}
