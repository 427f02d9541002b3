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

/// 2-d convolution of `input` [N, Cin, H, W] with `weight` [Cout, Cin / groups, kH, kW].
/// Float32 CPU 3x3 convolutions that keep the input's size (stride 1, padding = dilation) with
/// few channels, not all multiples of 8, take SegTTT's kernel (`dilatedConv3x3`); the rest
/// take libtorch's.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1,
    groups: Int = 1
) throws -> Tensor {
    if stride == 1, groups == 1, padding == dilation, fitsDilatedConvKernel(input, weight: weight, bias: bias) {
        return try dilatedConv3x3(input, weight: weight, bias: bias, dilation: dilation)
    }
    return try libtorchConv2d(
        input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
}

/// `conv2d` by libtorch's own kernels always (oneDNN's or its native ones): the reference
/// that SegTTT's kernels are tested and benchmarked against.
public func libtorchConv2d(
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

/// The most input or output channels for which `conv2d` takes `dilatedConv3x3`, which it
/// does only where one of the two is not a multiple of 8. On two cores its forward and
/// backward took 0.34-0.71x the time of libtorch's (oneDNN's) at ESPNet's shapes with 4 to
/// 28 channels, 0.63x from 19 to 12 channels at 180x240 and 0.74x from 36 to 20; with 32 to
/// 128 channels, multiples of 8, where oneDNN's direct kernels run, 0.95-1.12x, and forward
/// alone 1.16-1.25x (`segttt-bench --child convs --threads 2`, docs/BENCHMARKS.md).
let dilatedConvKernelChannels = 36

/// Whether `dilatedConv3x3` computes conv2d of these tensors faster than libtorch: float32
/// CPU tensors, a 3x3 weight of the input's channels, at most `dilatedConvKernelChannels`
/// channels in and out, not all multiples of 8.
func fitsDilatedConvKernel(_ input: Tensor, weight: Tensor, bias: Tensor?) -> Bool {
    guard input.rank == 4, weight.rank == 4, weight.shape[2] == 3, weight.shape[3] == 3,
        weight.shape[1] == input.shape[1], onCPUInFloat32(input, weight, bias)
    else { return false }
    let (channels, outputs) = (input.shape[1], weight.shape[0])
    return max(channels, outputs) <= dilatedConvKernelChannels && (channels % 8 != 0 || outputs % 8 != 0)
}

/// Whether every given tensor is a float32 CPU one, the only kind SegTTT's own kernels take.
func onCPUInFloat32(_ tensors: Tensor?...) -> Bool {
    tensors.allSatisfy { $0.map { $0.device == .cpu && $0.dtype == .float32 } ?? true }
}

/// 3x3 convolution of float32 CPU `input` [N, C, H, W] with `weight` [O, C, 3, 3] and
/// optional `bias` [O], stride 1 and padding equal to the dilation (d_h, d_w), so that the
/// output keeps H x W:
///
///     y[n, o, i, j] = b[o] + sum_{c, a, e} w[o, c, a, e] x[n, c, i + (a - 1) d_h, j + (e - 1) d_w]
///
/// with x = 0 outside the image. SegTTT's kernel, written for few channels: each output row
/// is accumulated in vector registers, a few output channels at a time, over the taps that
/// reach it; the backward pass computes dx as the same convolution of dy (weight transposed
/// and flipped) and dw as per-tap sums, first derivatives only.
public func dilatedConv3x3(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, dilation: Pair) throws -> Tensor {
    try withExtendedLifetime(bias) {
        try makeTensor {
            ct_dilated_conv3x3(
                input.handle, weight.handle, bias?.handle, Int64(dilation.height), Int64(dilation.width), $0)
        }
    }
}

/// 2-d transposed convolution of `input` [N, Cin, H, W] with `weight` [Cin, Cout / groups, kH, kW].
/// Output size: (H - 1) * stride - 2 * padding + dilation * (kH - 1) + outputPadding + 1.
public func convTranspose2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Pair = 1, padding: Pair = 0,
    outputPadding: Pair = 0, groups: Int = 1, dilation: Pair = 1
) throws -> Tensor {
    let kernel = Pair(weight.shape[2], weight.shape[3])
    if kernel == stride, padding == 0, outputPadding == 0, dilation == 1, groups == 1, input.rank == 4 {
        return try nonOverlappingConvTranspose2d(input, weight: weight, bias: bias)
    }
    return try libtorchConvTranspose2d(
        input, weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding,
        groups: groups, dilation: dilation)
}

/// `convTranspose2d` by libtorch's own kernels always: the reference that SegTTT's kernels
/// are tested and benchmarked against.
public func libtorchConvTranspose2d(
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

/// A transposed convolution whose kernel equals its stride (s_h x s_w, no padding, no
/// dilation, one group), the learned upsampling of encoder-decoder networks: every input
/// pixel paints its own s_h x s_w output block,
///
///     y[n, o, s_h i + a, s_w j + b] = sum_c x[n, c, i, j] w[c, o, a, b] + bias[o],
///
/// which is a 1x1 convolution to the O s_h s_w channels (o, a, b), with weight w as
/// [O s_h s_w, C, 1, 1], followed by a reshuffle of the blocks into place. libtorch's general
/// kernel takes a slow path for this case, and a plain matrix product [O s_h s_w, C] x [C, H W]
/// gets about 7 GFLOP/s from OpenBLAS at C = 20; oneDNN's 1x1 convolution, forward and
/// backward together, took 0.66 and 0.80 of the product's time in two runs at ESPNet's largest
/// decoder shape (2 x 20 channels at 180x240, two threads: `Benchmarks/conv_paths.py --threads 2`).
/// 2x2 blocks of float32 CPU tensors with at most `convTranspose2x2KernelChannels` channels in
/// and out (ESPNet's decoder) take SegTTT's kernel instead (`convTranspose2x2`).
func nonOverlappingConvTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
    if weight.shape[2] == 2, weight.shape[3] == 2, weight.shape[0] == input.shape[1],
        max(weight.shape[0], weight.shape[1]) <= convTranspose2x2KernelChannels,
        onCPUInFloat32(input, weight, bias)
    {
        return try convTranspose2x2(input, weight: weight, bias: bias)
    }
    let c = input.shape[1]
    let (o, sh, sw) = (weight.shape[1], weight.shape[2], weight.shape[3])
    let pointwise = try weight.reshape([c, o * sh * sw]).transpose(0, 1).reshape([o * sh * sw, c, 1, 1])
    var y = try blockShuffle(conv2d(input, weight: pointwise), height: sh, width: sw)
    if let bias { y = try y + bias.reshape([1, o, 1, 1]) }
    return y
}

/// The most input or output channels for which `convTranspose2d` takes `convTranspose2x2`.
/// Measured at ESPNet's 20 channels: forward and backward 0.63-0.80x the time of the 1x1
/// convolution and block shuffle (`segttt-bench --child convs --threads 2`); with more
/// channels the 1x1 convolution, whose oneDNN kernels gain with them, is kept.
let convTranspose2x2KernelChannels = 32

/// Transposed convolution of float32 CPU `input` [N, C, H, W] with `weight` [C, O, 2, 2] and
/// optional `bias` [O], stride 2, no padding: every input pixel paints its own 2x2 block,
///
///     y[n, o, 2 i + a, 2 j + b] = bias[o] + sum_c x[n, c, i, j] w[c, o, a, b].
///
/// SegTTT's kernel, in one pass: each output row is accumulated in vector registers and its
/// two column taps interleaved on the way out, in place of a 1x1 convolution to 4 O channels
/// and a reshuffle of the blocks; its backward pass splits dy's rows into even and odd
/// columns, first derivatives only.
public func convTranspose2x2(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    try withExtendedLifetime(bias) {
        try makeTensor { ct_conv_transpose2x2(input.handle, weight.handle, bias?.handle, $0) }
    }
}

/// Puts blocks [N, O s_h s_w, H, W] into place: out[n, o, s_h i + a, s_w j + b] =
/// blocks[n, (o s_h + a) s_w + b, i, j], giving [N, O, H s_h, W s_w] (pixel shuffle with
/// rectangular blocks). Float32 CPU tensors take SegTTT's kernel, which writes each output row
/// from its s_w block rows in one pass (libtorch's copy behind the reshape-permute-reshape
/// took 7 ms forward and 5 ms backward at ESPNet's last decoder layer), with a backward pass
/// for first derivatives only; other tensors take the reshape-permute-reshape itself.
public func blockShuffle(_ blocks: Tensor, height sh: Int, width sw: Int) throws -> Tensor {
    guard sh > 0, sw > 0, blocks.rank == 4, blocks.shape[1] % (sh * sw) == 0 else {
        throw TorchError("the block shuffle needs blocks [N, O * \(sh) * \(sw), H, W], got \(blocks.shape)")
    }
    if blocks.device == .cpu, blocks.dtype == .float32 {
        return try makeTensor { ct_block_shuffle(blocks.handle, Int64(sh), Int64(sw), $0) }
    }
    let (n, channels, h, w) = (blocks.shape[0], blocks.shape[1], blocks.shape[2], blocks.shape[3])
    let o = channels / (sh * sw)
    return try blocks.reshape([n, o, sh, sw, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([n, o, h * sh, w * sw])
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

/// Folds the per-channel statistics of `input` [N, C, ...] into running ones, in place:
/// running_mean = m * mean(x) + (1 - m) * running_mean and running_var = m * var(x) +
/// (1 - m) * running_var, var unbiased (over the N * H * W values of a channel), m = `momentum`.
/// No gradient flows; nothing is normalised. Contiguous float32 CPU input with contiguous
/// float32 running statistics and at least two values per channel takes SegTTT's own kernel
/// (two passes per channel, summed in double); the rest libtorch's `batch_norm_update_stats`,
/// which is about 3x faster than `varMean` but takes 5.7x the time of a sum over the same
/// values (over the ESPNet step's batch norms: `Benchmarks/ocl_profile.py bn-stats`).
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

/// prelu(batchNorm(input)) with statistics that carry no gradient, for float32 CPU input, as
/// one fused kernel with its own backward pass (one pass over the input forward, one
/// backward, against two and four or more for the pair of libtorch ops):
///
///     y = (x - mean) / sqrt(variance + eps) * weight + bias,   out = max(0, y) + slope * min(0, y)
///
/// per channel; gradients reach `input`, `weight`, `bias` and `slope` (one slope, or one per
/// channel), not the statistics.
public func batchNormPReLU(
    _ input: Tensor, mean: Tensor, variance: Tensor, weight: Tensor, bias: Tensor, slope: Tensor, eps: Double
) throws -> Tensor {
    try makeTensor {
        ct_batch_norm_prelu(
            input.handle, mean.handle, variance.handle, weight.handle, bias.handle, slope.handle, eps, $0)
    }
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
