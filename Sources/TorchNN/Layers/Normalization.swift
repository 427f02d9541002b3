import SegTTTKernels
import Torch

/// Which mean and variance a BatchNorm layer normalises with.
public enum BatchNormStatistics: Equatable, Sendable {
    /// PyTorch's behaviour: batch statistics in training mode (updating the running ones),
    /// running statistics in evaluation mode.
    case followMode
    /// The stored running statistics, whatever the mode.
    case running
    /// The current batch's statistics, whatever the mode; the running ones are not updated.
    case batch
    /// `prior * running + (1 - prior) * batch` for the mean and for the variance (unbiased
    /// batch variance), the batch statistics carrying no gradient and the running ones never
    /// updated (the "BN prior" of test-time adaptation; 1 = running, 0 = batch).
    case prior(Double)
    /// Statistics that follow the stream slowly: each forward pass normalises with
    /// `m * batch + (1 - m) * running` (unbiased batch variance, no gradient) and stores that
    /// mix as the new running statistics, an exponential moving average with momentum m.
    case movingAverage(Double)
    /// The source's statistics shrunk toward the frame's by how far the stream has moved
    /// from the source against how far the frame lies from the stream: with the stream's
    /// statistics S (a moving average of the frames' with momentum m, starting from the
    /// running ones R), the frame's F, and D the mean over channels of the Gaussian
    /// divergence KL(N(mu1, v1) || N(mu2, v2)) = (v1 / v2 + (mu1 - mu2)^2 / v2 - 1 - log(v1 / v2)) / 2
    /// (variances + eps), the layer normalises with (1 - w) R + w F for the mean and the
    /// variance, w = D(S || R) / (D(S || R) + D(F || S)): a shift the stream shows steadily
    /// (signal) takes the frame's statistics, a frame that only differs by its content
    /// (noise) keeps the source's. S is updated after w is computed. The running statistics
    /// are never updated; nothing carries a gradient.
    case shrinkage(Double)
}

/// Batch normalisation over [N, C, H, W], `torch.nn.BatchNorm2d`:
/// y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.
public final class BatchNorm2d: Module, UnaryModule {
    public let eps: Double
    public let momentum: Double
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Buffer
    public let runningVar: Buffer
    public let numBatchesTracked: Buffer
    /// Which statistics to normalise with (set by test-time adaptation methods).
    public var statistics: BatchNormStatistics = .followMode
    /// The stream's statistics under `.shrinkage` (nil until its first pass, or after a reset).
    public var streamMean: Tensor?
    public var streamVar: Tensor?
    /// The weight w of the frame's statistics in the last pass under `.shrinkage`.
    public private(set) var frameWeight: Double?
    /// Whether passes under `.prior` record `inputShift`.
    public var recordsInputShift = false
    /// How far the last input under `.prior` lay from the running statistics, with
    /// `recordsInputShift`: the mean over channels of KL(N(batch) || N(running)), the Gaussian
    /// divergence of `.shrinkage`.
    public private(set) var inputShift: Double?

    /// `affine` adds weight (ones) and bias (zeros); running statistics start at 0 and 1.
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true) throws {
        self.eps = eps
        self.momentum = momentum
        weight = affine ? try Parameter(Tensor.ones([numFeatures])) : nil
        bias = affine ? try Parameter(Tensor.zeros([numFeatures])) : nil
        runningMean = Buffer(try Tensor.zeros([numFeatures]))
        runningVar = Buffer(try Tensor.ones([numFeatures]))
        numBatchesTracked = Buffer(try Tensor.zeros([], dtype: .int64), optionalInCheckpoint: true)
        super.init()
        if let weight { registerParameter("weight", weight) }
        if let bias { registerParameter("bias", bias) }
        registerBuffer("running_mean", runningMean)
        registerBuffer("running_var", runningVar)
        registerBuffer("num_batches_tracked", numBatchesTracked)
    }

    /// A layer over existing tensors (a TorchScript module's BatchNorm, whose graph calls
    /// back here), registered under PyTorch's names; a missing `num_batches_tracked` is
    /// counted in a tensor of its own, not registered.
    public init(
        weight: Parameter?, bias: Parameter?, runningMean: Buffer, runningVar: Buffer, numBatchesTracked: Buffer?,
        eps: Double, momentum: Double
    ) throws {
        self.eps = eps
        self.momentum = momentum
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVar = runningVar
        self.numBatchesTracked = try numBatchesTracked ?? Buffer(Tensor.zeros([], dtype: .int64))
        super.init()
        if let weight { registerParameter("weight", weight) }
        if let bias { registerParameter("bias", bias) }
        registerBuffer("running_mean", runningMean)
        registerBuffer("running_var", runningVar)
        if let numBatchesTracked { registerBuffer("num_batches_tracked", numBatchesTracked) }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        if let (mean, variance) = try fixedStatistics(for: input) {
            return try normalize(input, mean: mean, variance: variance, training: false)
        }
        if isTraining, statistics == .followMode {
            try withNoGrad { try numBatchesTracked.value.add_(Tensor.ones([], dtype: .int64)) }
            return try normalize(input, mean: runningMean.value, variance: runningVar.value, training: true)
        }
        return try normalize(input, mean: nil, variance: nil, training: true)
    }

    /// prelu(forward(input), slope) by the fused kernel (`Kernels.batchNormPReLU`: one pass
    /// over the input forward, one backward), or nil, with nothing changed, where that kernel
    /// does not apply: input its rule refuses, no affine parameters, or statistics that carry a
    /// gradient. A zero slope makes it ReLU; `slope` gets a gradient when it requires one.
    public func fusedForward(_ input: Tensor, thenPReLU slope: Tensor) throws -> Tensor? {
        guard Kernels.takesBatchNormPReLU(input), let weight, let bias,
            let (mean, variance) = try fixedStatistics(for: input)
        else { return nil }
        return try Kernels.batchNormPReLU(
            input, mean: mean, variance: variance, weight: weight.value, bias: bias.value, slope: slope, eps: eps)
    }

    /// The mean and variance this layer normalises `input` with when they carry no gradient
    /// (running, BN-prior or moving-average statistics; the moving average is updated here,
    /// as by `forward`), or nil, with nothing changed, when it normalises with the batch's
    /// own statistics and their gradient (`.batch`, `.followMode` in training).
    public func fixedStatistics(for input: Tensor) throws -> (mean: Tensor, variance: Tensor)? {
        switch statistics {
        case .followMode where isTraining, .batch:
            return nil
        case .followMode, .running:
            return (runningMean.value, runningVar.value)
        case .prior(let prior):
            return try withNoGrad {
                guard recordsInputShift else {
                    let (mean, variance) = (try runningMean.value.clone(), try runningVar.value.clone())
                    try Kernels.batchNormUpdateStatistics(input, runningMean: mean, runningVar: variance, momentum: 1 - prior)
                    return (mean, variance)
                }
                // One pass over the input gives both the shift and the mixture.
                let (source, sourceVar) = (runningMean.value, runningVar.value)
                let (frame, frameVar) = try frameStatistics(input)
                inputShift = try gaussianDivergence(frame, frameVar, from: source, sourceVar)
                return (try source * prior + frame * (1 - prior), try sourceVar * prior + frameVar * (1 - prior))
            }
        case .movingAverage(let momentum):
            try withNoGrad {
                try Kernels.batchNormUpdateStatistics(
                    input, runningMean: runningMean.value, runningVar: runningVar.value, momentum: momentum)
            }
            return (runningMean.value, runningVar.value)
        case .shrinkage(let momentum):
            return try withNoGrad { try shrunkStatistics(input, momentum: momentum) }
        }
    }

    /// The statistics of `.shrinkage(momentum)` for `input`, updating the stream's.
    private func shrunkStatistics(_ input: Tensor, momentum: Double) throws -> (mean: Tensor, variance: Tensor) {
        let (source, sourceVar) = (runningMean.value, runningVar.value)
        let (frame, frameVar) = try frameStatistics(input)
        let stream = try streamMean ?? source.clone(), streamVariance = try streamVar ?? sourceVar.clone()
        let signal = try gaussianDivergence(stream, streamVariance, from: source, sourceVar)
        let noise = try gaussianDivergence(frame, frameVar, from: stream, streamVariance)
        let weight = signal + noise > 0 ? signal / (signal + noise) : 0
        try Kernels.batchNormUpdateStatistics(input, runningMean: stream, runningVar: streamVariance, momentum: momentum)
        (streamMean, streamVar, frameWeight) = (stream, streamVariance, weight)
        return (try source * (1 - weight) + frame * weight, try sourceVar * (1 - weight) + frameVar * weight)
    }

    /// The batch's mean and unbiased variance per channel.
    private func frameStatistics(_ input: Tensor) throws -> (mean: Tensor, variance: Tensor) {
        let mean = try runningMean.value.zerosLike(), variance = try runningVar.value.zerosLike()
        try Kernels.batchNormUpdateStatistics(input, runningMean: mean, runningVar: variance, momentum: 1)
        return (mean, variance)
    }

    /// The mean over channels of KL(N(mean, variance) || N(baseMean, baseVariance)), eps added
    /// to both variances.
    private func gaussianDivergence(_ mean: Tensor, _ variance: Tensor, from baseMean: Tensor, _ baseVariance: Tensor)
        throws -> Double
    {
        let ratio = try (variance + eps) / (baseVariance + eps)
        let shift = try (mean - baseMean) * (mean - baseMean) / (baseVariance + eps)
        return try ((ratio + shift - 1 - ratio.log()) * 0.5).mean().item()
    }

    private func normalize(_ input: Tensor, mean: Tensor?, variance: Tensor?, training: Bool) throws -> Tensor {
        try batchNorm(
            input, runningMean: mean, runningVar: variance, weight: weight?.value, bias: bias?.value,
            training: training,
            momentum: momentum, eps: eps)
    }
}
