internal import CTorch

/// A (height, width) pair of integers, written `3` for (3, 3) or `[1, 2]`, as PyTorch's
/// `_pair` arguments.
public struct Pair: Equatable, Hashable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    public init(_ both: Int) {
        self.init(both, both)
    }

    public init(integerLiteral value: Int) {
        self.init(value)
    }

    /// `[h, w]`, or `[n]` for (n, n).
    public init(arrayLiteral elements: Int...) {
        precondition(elements.count == 1 || elements.count == 2, "a Pair takes one or two integers")
        self.init(elements[0], elements.count == 2 ? elements[1] : elements[0])
    }

    var values: [Int64] { [Int64(height), Int64(width)] }

    public var description: String { "(\(height), \(width))" }
}

/// 2-d convolution of `input` [N, Cin, H, W] with `weight` [Cout, Cin / groups, kH, kW], by
/// libtorch's kernels (oneDNN's or its native ones).
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1,
    groups: Int = 1
) throws -> Tensor {
    try withExtendedLifetime(bias) {
        try makeTensor {
            ct_conv2d(
                input.handle, weight.handle, bias?.handle, stride.values, padding.values, dilation.values,
                Int64(groups),
                $0)
        }
    }
}

/// 2-d transposed convolution of `input` [N, Cin, H, W] with `weight` [Cin, Cout / groups, kH, kW],
/// by libtorch's kernels. Output size: (H - 1) * stride - 2 * padding + dilation * (kH - 1) +
/// outputPadding + 1.
public func convTranspose2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Pair = 1, padding: Pair = 0,
    outputPadding: Pair = 0, groups: Int = 1, dilation: Pair = 1
) throws -> Tensor {
    try withExtendedLifetime(bias) {
        try makeTensor {
            ct_conv_transpose2d(
                input.handle, weight.handle, bias?.handle, stride.values, padding.values, outputPadding.values,
                Int64(groups), dilation.values, $0)
        }
    }
}

/// Batch normalisation over [N, C, ...]: y = (x - mean) / sqrt(var + eps) * weight + bias.
///
/// With `training` false the given running statistics are the mean and variance. With
/// `training` true the batch's own statistics are used (biased variance for normalising)
/// and, when running statistics are given, they are updated in place:
/// running = (1 - momentum) * running + momentum * batch (unbiased variance).
public func batchNorm(
    _ input: Tensor, runningMean: Tensor?, runningVar: Tensor?, weight: Tensor? = nil, bias: Tensor? = nil,
    training: Bool, momentum: Double = 0.1, eps: Double = 1e-5
) throws -> Tensor {
    try withExtendedLifetime((runningMean, runningVar, weight, bias)) {
        try makeTensor {
            ct_batch_norm(
                input.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, training, momentum,
                eps, $0)
        }
    }
}

/// Folds the per-channel statistics of `input` [N, C, ...] into running ones, in place, by
/// libtorch's `batch_norm_update_stats`: running_mean = m * mean(x) + (1 - m) * running_mean
/// and running_var = m * var(x) + (1 - m) * running_var, var unbiased (over the N * H * W
/// values of a channel), m = `momentum`. No gradient flows; nothing is normalised.
public func batchNormUpdateStatistics(_ input: Tensor, runningMean: Tensor, runningVar: Tensor, momentum: Double)
    throws
{
    try withExtendedLifetime((runningMean, runningVar)) {
        try check(ct_batch_norm_update_stats(input.handle, runningMean.handle, runningVar.handle, momentum))
    }
}

/// Parametric ReLU: max(0, x) + weight * min(0, x), one slope per channel (or one in all).
public func prelu(_ input: Tensor, weight: Tensor) throws -> Tensor {
    try makeTensor { ct_prelu(input.handle, weight.handle, $0) }
}

/// Max pooling over [N, C, H, W]; `stride` defaults to the kernel size.
public func maxPool2d(
    _ input: Tensor, kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, dilation: Pair = 1,
    ceilMode: Bool = false
) throws -> Tensor {
    let step = stride ?? kernelSize
    return try makeTensor {
        ct_max_pool2d(input.handle, kernelSize.values, step.values, padding.values, dilation.values, ceilMode, $0)
    }
}

/// Average pooling over [N, C, H, W]; `stride` defaults to the kernel size.
/// With `countIncludePad` the padded zeros count in every window's divisor.
public func avgPool2d(
    _ input: Tensor, kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, ceilMode: Bool = false,
    countIncludePad: Bool = true
) throws -> Tensor {
    let step = stride ?? kernelSize
    return try makeTensor {
        ct_avg_pool2d(input.handle, kernelSize.values, step.values, padding.values, ceilMode, countIncludePad, $0)
    }
}

/// How `interpolate` computes values between input pixels.
public enum InterpolationMode: Sendable, Equatable {
    /// Bilinear; with `alignCorners` the corner pixels' centres of input and output coincide.
    case bilinear(alignCorners: Bool)
    /// Bicubic (Keys' kernel, a = -0.75, as PyTorch); values may overshoot the input's range.
    case bicubic(alignCorners: Bool)
    /// The nearest input pixel (PyTorch's legacy "nearest": index = floor(out * in / outSize)).
    case nearest
}

/// Resizes [N, C, H, W] to `size` (height, width).
public func interpolate(_ input: Tensor, size: Pair, mode: InterpolationMode) throws -> Tensor {
    switch mode {
    case .bilinear(let alignCorners):
        return try makeTensor {
            ct_upsample_bilinear2d(input.handle, Int64(size.height), Int64(size.width), alignCorners, $0)
        }
    case .bicubic(let alignCorners):
        return try makeTensor {
            ct_upsample_bicubic2d(input.handle, Int64(size.height), Int64(size.width), alignCorners, $0)
        }
    case .nearest:
        return try makeTensor { ct_upsample_nearest2d(input.handle, Int64(size.height), Int64(size.width), $0) }
    }
}

/// Negative log-likelihood of `logProbs` [N, C, ...] at int64 `target` [N, ...], skipping
/// `ignoreIndex`; mean over counted elements, or their sum.
public func nllLoss(_ logProbs: Tensor, target: Tensor, ignoreIndex: Int = -100, mean: Bool = true) throws -> Tensor {
    try makeTensor { ct_nll_loss(logProbs.handle, target.handle, Int64(ignoreIndex), mean, $0) }
}

/// Cross-entropy of `logits` [N, C, ...] against int64 `target` [N, ...]:
/// nllLoss(logSoftmax(logits, dim: 1)).
public func crossEntropy(_ logits: Tensor, target: Tensor, ignoreIndex: Int = -100) throws -> Tensor {
    try nllLoss(logits.logSoftmax(dim: 1), target: target, ignoreIndex: ignoreIndex)
}

extension Tensor {
    /// exp(x_i) / sum_j exp(x_j) along `dim`.
    public func softmax(dim: Int) throws -> Tensor {
        try makeTensor { ct_softmax(handle, Int64(dim), $0) }
    }

    /// x_i - log sum_j exp(x_j) along `dim`, computed stably.
    public func logSoftmax(dim: Int) throws -> Tensor {
        try makeTensor { ct_log_softmax(handle, Int64(dim), $0) }
    }

    /// x / max(||x||_p, eps) along `dim`, as torch.nn.functional.normalize.
    public func normalize(p: Double = 2, dim: Int = 1, eps: Double = 1e-12) throws -> Tensor {
        try makeTensor { ct_normalize(handle, p, Int64(dim), eps, $0) }
    }
}
