// Supervised training of a source model: SGD with momentum and weight decay under the
// "poly" learning-rate schedule of DeepLab (L.-C. Chen et al., "DeepLab: Semantic Image
// Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs",
// TPAMI 2018), on pixel-wise cross-entropy, with random horizontal flips and random
// scale-and-crop as augmentation.
//
// Every random choice (the order of frames, the flips, scales and crops) comes from a
// SplitMix64 stream seeded by `SourceTrainingConfig.seed`, so a run is the same given the
// seed, the model's initial weights and the dataset.
import Foundation
import Torch
import TorchNN

/// The settings of `trainSource`.
public struct SourceTrainingConfig: Equatable, Sendable {
    /// Number of SGD steps (each on one batch).
    public var iterations: Int
    /// Frames per batch.
    public var batchSize: Int
    /// Learning rate at the first step; step i uses
    /// learningRate * (1 - i / iterations)^polyPower.
    public var learningRate: Double
    /// SGD momentum.
    public var momentum: Double
    /// L2 weight decay added to every gradient (g + weightDecay * p).
    public var weightDecay: Double
    /// Exponent of the poly schedule.
    public var polyPower: Double
    /// Seeds the frame order and every augmentation draw.
    public var seed: UInt64
    /// Mirror each crop left-right with probability 1/2.
    public var horizontalFlip: Bool
    /// Each frame is resized by a factor drawn uniformly from this range (1...1: never).
    public var scaleRange: ClosedRange<Double>
    /// The (height, width) of the crops fed to the model; nil: the first frame's size.
    /// Where a scaled frame is smaller, it is padded with black pixels labelled `ignoreLabel`.
    public var cropSize: Pair?

    /// - Parameters (defaults):
    ///   - iterations: 1000 steps.
    ///   - batchSize: 8 frames.
    ///   - learningRate: 0.01, DeepLab's base rate for SGD from scratch on small data.
    ///   - momentum: 0.9.
    ///   - weightDecay: 5e-4.
    ///   - polyPower: 0.9 (DeepLab's poly schedule).
    ///   - seed: 0.
    ///   - horizontalFlip: true.
    ///   - scaleRange: 0.75...1.5, a common range for street scenes.
    ///   - cropSize: nil, the frames' own size.
    public init(
        iterations: Int = 1000, batchSize: Int = 8, learningRate: Double = 0.01, momentum: Double = 0.9,
        weightDecay: Double = 5e-4, polyPower: Double = 0.9, seed: UInt64 = 0, horizontalFlip: Bool = true,
        scaleRange: ClosedRange<Double> = 0.75...1.5, cropSize: Pair? = nil
    ) {
        self.iterations = iterations
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.polyPower = polyPower
        self.seed = seed
        self.horizontalFlip = horizontalFlip
        self.scaleRange = scaleRange
        self.cropSize = cropSize
    }

    /// The learning rate of step `iteration` (0 ..< iterations):
    /// learningRate * (1 - iteration / iterations)^polyPower.
    public func learningRate(at iteration: Int) -> Double {
        let progress = Double(iteration) / Double(Swift.max(1, iterations))
        return learningRate * Foundation.pow(Swift.max(0, 1 - progress), polyPower)
    }

    /// Throws `SourceTrainingError.invalidConfig` naming the first setting out of range.
    public func validate() throws {
        func fail(_ problem: String) -> SourceTrainingError { .invalidConfig(problem) }
        guard iterations >= 1 else { throw fail("iterations is \(iterations), needs at least 1") }
        guard batchSize >= 1 else { throw fail("batchSize is \(batchSize), needs at least 1") }
        guard learningRate > 0, learningRate.isFinite else {
            throw fail("learningRate is \(learningRate), needs a positive number")
        }
        guard momentum >= 0, momentum < 1 else { throw fail("momentum is \(momentum), needs 0 <= momentum < 1") }
        guard weightDecay >= 0 else { throw fail("weightDecay is \(weightDecay), needs at least 0") }
        guard polyPower >= 0 else { throw fail("polyPower is \(polyPower), needs at least 0") }
        guard scaleRange.lowerBound > 0, scaleRange.upperBound.isFinite else {
            throw fail("scaleRange is \(scaleRange), needs positive finite factors, e.g. 0.75...1.5")
        }
        if let cropSize, cropSize.height < 1 || cropSize.width < 1 {
            throw fail("cropSize is \(cropSize), needs a positive height and width")
        }
    }
}

/// A mistake in setting up source training, or a run that diverged.
public enum SourceTrainingError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case emptyDataset(String)
    case unlabelledFrame(dataset: String, frame: String)
    case noTrainableParameters(model: String)
    case nonFiniteLoss(iteration: Int, learningRate: Double)

    public var description: String {
        switch self {
        case .invalidConfig(let problem):
            return "invalid source training settings: \(problem)"
        case .emptyDataset(let name):
            return "dataset \(name) has no frames to train on"
        case .unlabelledFrame(let dataset, let frame):
            return "frame \(frame) of \(dataset) has no label; source training needs a labelled dataset"
        case .noTrainableParameters(let model):
            return "model \(model) has no trainable parameters; call unfreeze() before training it"
        case .nonFiniteLoss(let iteration, let learningRate):
            return "the loss became infinite or NaN at iteration \(iteration) (learning rate \(learningRate)); "
                + "lower the learning rate"
        }
    }
}

/// Trains `model` on `dataset` with SGD and the poly schedule, then leaves it in
/// evaluation mode.
///
/// Each step draws `batchSize` frames (the dataset in a seeded random order, reshuffled
/// after every pass), augments each (scale by s ~ U(scaleRange): image bilinear, label
/// nearest; pad to the crop size with black / `ignoreLabel`; a uniformly placed crop; a
/// left-right flip with probability 1/2), normalises the batch with the model card, and
/// takes one SGD step on the mean cross-entropy over labelled pixels
///
///     L = -1/|P| sum_{p in P} log softmax(z_p)[y_p],   P = {p : y_p != ignoreLabel}
///
/// at learning rate lr_i = lr * (1 - i / iterations)^polyPower. BatchNorm layers use batch
/// statistics and update their running ones (PyTorch's training mode); the layers' own
/// `statistics` settings are restored afterwards. The model's parameters stay on their
/// device; batches are moved there.
///
/// - Parameters:
///   - onIteration: called after every step with the step's index and its loss.
/// - Throws: `SourceTrainingError` for invalid settings, an empty or unlabelled dataset, a
///   frozen model, or a loss that is no longer finite; errors of the dataset's frames.
public func trainSource(
    _ model: any SegmentationModel, on dataset: any SegmentationDataset, config: SourceTrainingConfig,
    onIteration: (Int, Double) -> Void = { _, _ in }
) throws {
    try config.validate()
    guard dataset.count > 0 else { throw SourceTrainingError.emptyDataset(dataset.name) }
    let parameters = model.parameters(for: .all)
    guard let first = parameters.first else { throw SourceTrainingError.noTrainableParameters(model: model.card.name) }
    let device = first.value.device
    let optimizer = try SGD(
        parameters, learningRate: config.learningRate, momentum: config.momentum, weightDecay: config.weightDecay)

    let batchNorms = model.batchNormLayers
    let savedStatistics = batchNorms.map(\.statistics)
    for layer in batchNorms { layer.statistics = .followMode }
    defer {
        for (layer, statistics) in zip(batchNorms, savedStatistics) { layer.statistics = statistics }
        model.eval()
    }
    model.train()

    var random = SplitMix64(seed: config.seed)
    var order: [Int] = []
    var cropSize = config.cropSize
    for iteration in 0..<config.iterations {
        var images: [Tensor] = []
        var labels: [Tensor] = []
        for _ in 0..<config.batchSize {
            if order.isEmpty { order = random.permutation(dataset.count) }
            let index = order.removeLast()
            let sample = try dataset.sample(at: index)
            guard let label = sample.label else {
                throw SourceTrainingError.unlabelledFrame(dataset: dataset.name, frame: sample.name)
            }
            let crop = cropSize ?? Pair(label.shape[0], label.shape[1])
            cropSize = crop
            let augmented = try augment(image: sample.image, label: label, crop: crop, config: config, random: &random)
            images.append(augmented.image)
            labels.append(augmented.label)
        }
        let input = try model.card.normalization.apply(Tensor.stack(images).to(device: device))  // [N, 3, h, w]
        let target = try Tensor.stack(labels).to(device: device)  // [N, h, w]
        optimizer.learningRate = config.learningRate(at: iteration)
        try optimizer.zeroGrad()
        let loss = try crossEntropy(model.logits(input), target: target, ignoreIndex: ignoreLabel)
        let value = try loss.item()
        guard value.isFinite else {
            throw SourceTrainingError.nonFiniteLoss(iteration: iteration, learningRate: optimizer.learningRate)
        }
        try loss.backward()
        try optimizer.step()
        onIteration(iteration, value)
    }
}

/// One training view of a frame: image [3, H, W] uint8 and label [H, W] int64 scaled by
/// s ~ U(scaleRange), padded to at least `crop` (black, `ignoreLabel`), cropped to `crop`
/// at a uniform position, and mirrored with probability 1/2 when `horizontalFlip`.
func augment(image: Tensor, label: Tensor, crop: Pair, config: SourceTrainingConfig, random: inout SplitMix64)
    throws -> (image: Tensor, label: Tensor)
{
    let height = label.shape[0]
    let width = label.shape[1]
    let range = config.scaleRange
    let scale = range.lowerBound + (range.upperBound - range.lowerBound) * random.nextUnit()
    let scaled = Pair(
        Swift.max(1, Int((Double(height) * scale).rounded())), Swift.max(1, Int((Double(width) * scale).rounded())))
    var x = try Resize.image(image, to: scaled)  // [3, h, w]
    var y = try Resize.label(label.to(.int64), to: scaled)  // [h, w]
    // Pad bottom and right up to the crop size.
    if scaled.height < crop.height {
        let rows = crop.height - scaled.height
        x = try Tensor.cat([x, Tensor.zeros([3, rows, scaled.width], dtype: .uint8)], dim: 1)
        y = try Tensor.cat([y, Tensor.full([rows, scaled.width], value: Double(ignoreLabel), dtype: .int64)], dim: 0)
    }
    let paddedWidth = x.shape[1]
    if scaled.width < crop.width {
        let columns = crop.width - scaled.width
        x = try Tensor.cat([x, Tensor.zeros([3, paddedWidth, columns], dtype: .uint8)], dim: 2)
        y = try Tensor.cat(
            [y, Tensor.full([paddedWidth, columns], value: Double(ignoreLabel), dtype: .int64)], dim: 1)
    }
    let top = random.nextInt(below: x.shape[1] - crop.height + 1)
    let left = random.nextInt(below: x.shape[2] - crop.width + 1)
    x = try x.narrow(dim: 1, start: top, length: crop.height).narrow(dim: 2, start: left, length: crop.width)
    y = try y.narrow(dim: 0, start: top, length: crop.height).narrow(dim: 1, start: left, length: crop.width)
    if config.horizontalFlip, random.nextUnit() < 0.5 {
        x = try x.flip([2])
        y = try y.flip([1])
    }
    return (try x.contiguous(), try y.contiguous())
}

/// Sebastiano Vigna's SplitMix64: a small, fast, seedable random stream whose outputs are
/// fixed by the seed on every platform and Swift version (unlike the standard library's
/// shuffles, whose algorithm is unspecified).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A draw from U[0, 1) with 53 random bits.
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform integer in 0 ..< n (n >= 1), by rejection, without modulo bias.
    mutating func nextInt(below n: Int) -> Int {
        let bound = UInt64(Swift.max(1, n))
        let limit = UInt64.max - UInt64.max % bound
        var value = next()
        while value >= limit { value = next() }
        return Int(value % bound)
    }

    /// 0 ..< n in a uniformly random order (Fisher-Yates).
    mutating func permutation(_ n: Int) -> [Int] {
        var result = Array(0..<n)
        var i = n - 1
        while i > 0 {
            result.swapAt(i, nextInt(below: i + 1))
            i -= 1
        }
        return result
    }
}
