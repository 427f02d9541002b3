internal import CKernels
import Torch

extension Kernels {
    /// The most input or output channels for which `conv2d` takes `dilatedConv3x3`.
    static let dilatedConvChannels = 36

    /// The fewest input and output channels for which `conv2d` takes `winogradConv3x3`.
    static let winogradChannels = 64

    /// The most output channels for which `conv2d` takes `pointwiseConv` or `stridedConv3x3`.
    static let pointwiseConvOutputs = 36

    /// The most input or output channels for which `convTranspose2d` takes `convTranspose2x2`.
    static let convTranspose2x2Channels = 32

    /// `Torch.conv2d`, by `pointwiseConv`, `dilatedConv3x3` or `stridedConv3x3` where
    /// `takesConv2d` admits the call.
    public static func conv2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Pair = 1, padding: Pair = 0,
        dilation: Pair = 1, groups: Int = 1
    ) throws -> Tensor {
        if takesConv2d(
            input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        {
            if weight.shape[2] == 1 { return try pointwiseConv(input, weight: weight, bias: bias) }
            if stride == 2 { return try stridedConv3x3(input, weight: weight, bias: bias) }
            return max(input.shape[1], weight.shape[0]) <= dilatedConvChannels
                ? try dilatedConv3x3(input, weight: weight, bias: bias, dilation: dilation)
                : try winogradConv3x3(input, weight: weight, bias: bias, dilation: dilation)
        }
        return try Torch.conv2d(
            input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// The rule of `conv2d`: float32 CPU tensors, a weight over all the input's channels (one
    /// group), and one of
    /// - 1x1, stride 1, no padding, to at most `pointwiseConvOutputs` channels (`pointwiseConv`);
    /// - 3x3, stride 1, padding equal to the dilation (the output keeps the input's size), at
    ///   most `dilatedConvChannels` channels in and out, and not both counts multiples of 8,
    ///   where oneDNN's direct kernels run as fast (`dilatedConv3x3`);
    /// - 3x3, stride 1, padding equal to the dilation, at least `winogradChannels` channels in
    ///   and out, both multiples of 16, where `winogradAvailable` (`winogradConv3x3`);
    /// - 3x3, stride 2, padding 1, dilation 1, to at most `pointwiseConvOutputs` channels, not a
    ///   multiple of 8, where oneDNN's direct kernels run faster (`stridedConv3x3`).
    public static func takesConv2d(
        _ input: Tensor, weight: Tensor, bias: Tensor?, stride: Pair, padding: Pair, dilation: Pair, groups: Int
    ) -> Bool {
        guard groups == 1, input.rank == 4, weight.rank == 4, weight.shape[1] == input.shape[1],
            onCPUInFloat32(input, weight, bias)
        else { return false }
        let (channels, outputs) = (input.shape[1], weight.shape[0])
        switch (weight.shape[2], weight.shape[3], stride) {
        case (1, 1, 1): return padding == 0 && outputs <= pointwiseConvOutputs
        case (3, 3, 1):
            guard padding == dilation else { return false }
            if max(channels, outputs) <= dilatedConvChannels { return channels % 8 != 0 || outputs % 8 != 0 }
            return min(channels, outputs) >= winogradChannels && channels % 16 == 0 && outputs % 16 == 0
                && winogradAvailable
        case (3, 3, 2): return padding == 1 && dilation == 1 && outputs <= pointwiseConvOutputs && outputs % 8 != 0
        default: return false
        }
    }

    /// 1x1 convolution of float32 CPU `input` [N, C, H, W] with `weight` [O, C, 1, 1] and
    /// optional `bias` [O] (stride 1, no padding), over the H W pixels p of each image:
    ///
    ///     y[n, o, p] = b[o] + sum_c w[o, c] x[n, c, p]
    ///
    /// Written for few output channels: B output channels by a few vectors of pixels are
    /// accumulated in registers over every input channel; the backward pass computes dx as the
    /// same product with w transposed, and dw = sum_{n, p} dy[n, o, p] x[n, c, p] in blocks of
    /// output by input channels.
    public static func pointwiseConv(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try withExtendedLifetime(bias) {
            try makeTensor { ck_pointwise_conv(input.handle, weight.handle, bias?.handle, $0) }
        }
    }

    /// 3x3 convolution of float32 CPU `input` [N, C, H, W] with `weight` [O, C, 3, 3] and
    /// optional `bias` [O], stride 2 and padding 1 (the downsampling layers of encoders), giving
    /// [N, O, ceil(H / 2), ceil(W / 2)]:
    ///
    ///     y[n, o, i, j] = b[o] + sum_{c, a, e} w[o, c, a, e] x[n, c, 2 i + a - 1, 2 j + e - 1]
    ///
    /// with x = 0 outside the image. The input's even and odd columns are laid apart once, so
    /// that each tap reads consecutive floats, and every output row is accumulated in vector
    /// registers as in `dilatedConv3x3`; so is the weight gradient. The input's gradient is
    /// libtorch's.
    public static func stridedConv3x3(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try withExtendedLifetime(bias) {
            try makeTensor { ck_strided_conv3x3(input.handle, weight.handle, bias?.handle, $0) }
        }
    }

    /// 3x3 convolution of float32 CPU `input` [N, C, H, W] with `weight` [O, C, 3, 3] and
    /// optional `bias` [O], stride 1 and padding equal to the dilation (d_h, d_w), so that the
    /// output keeps H x W:
    ///
    ///     y[n, o, i, j] = b[o] + sum_{c, a, e} w[o, c, a, e] x[n, c, i + (a - 1) d_h, j + (e - 1) d_w]
    ///
    /// with x = 0 outside the image. Written for few channels: each output row is accumulated
    /// in vector registers, a few output channels at a time, over the taps that reach it; the
    /// backward pass computes dx as the same convolution of dy (weight transposed and flipped)
    /// and dw as per-tap sums.
    public static func dilatedConv3x3(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, dilation: Pair) throws
        -> Tensor
    {
        try withExtendedLifetime(bias) {
            try makeTensor {
                ck_dilated_conv3x3(
                    input.handle, weight.handle, bias?.handle, Int64(dilation.height), Int64(dilation.width), $0)
            }
        }
    }

    /// 3x3 convolution of float32 CPU `input` [N, C, H, W] with `weight` [O, C, 3, 3] and
    /// optional `bias` [O], stride 1 and padding equal to the dilation (d_h, d_w), as
    /// `dilatedConv3x3` but for many channels, by oneDNN's Winograd kernels F(4x4, 3x3): each
    /// 4x4 output tile is computed from a 6x6 input tile with 36 products per pair of channels
    /// instead of 144,
    ///
    ///     Y = A^T [ sum_c (G g_{o,c} G^T) * (B^T d_c B) ] A     (* elementwise),
    ///
    /// where d_c is the tile of channel c, g_{o,c} the 3x3 kernel, and B, G, A the transforms of
    /// minimal filtering with interpolation points 0, +-1, +-2. A dilated convolution is
    /// computed on the input's d_h d_w phases x[n, c, r::d_h, s::d_w], each an undilated one;
    /// the backward pass (dx, dw, db) is oneDNN's Winograd too. Throws where
    /// `winogradAvailable` is false. The values differ from the direct convolution's by the
    /// transforms' rounding (docs/BENCHMARKS.md gives the measured differences).
    public static func winogradConv3x3(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, dilation: Pair = 1)
        throws -> Tensor
    {
        try withExtendedLifetime(bias) {
            try makeTensor {
                ck_winograd_conv3x3(
                    input.handle, weight.handle, bias?.handle, Int64(dilation.height), Int64(dilation.width), $0)
            }
        }
    }

    /// Whether `winogradConv3x3` runs: this build links the oneDNN that libtorch runs
    /// (Debian's libtorch with libdnnl-dev), oneDNN has Winograd kernels for this CPU (its
    /// AVX-512 ones), and `useWinograd(false)` did not turn it off.
    public static var winogradAvailable: Bool { ck_winograd_available() }

    /// Turns `winogradConv3x3` on or off for `conv2d`'s rule, for the whole process; turning it
    /// on throws where this build or CPU has no Winograd kernels.
    public static func useWinograd(_ on: Bool) throws {
        guard ck_use_winograd(on) else {
            throw TorchError(
                "this build or CPU has no Winograd kernels: they come from the oneDNN that Debian's libtorch links "
                    + "(libdnnl-dev), for CPUs with AVX-512")
        }
    }

    /// `Torch.convTranspose2d`; a kernel that equals its stride (no padding, no dilation, one
    /// group) is computed as a 1x1 convolution followed by `blockShuffle`
    /// (`nonOverlappingConvTranspose2d`), or by `convTranspose2x2` where `takesConvTranspose2d`
    /// admits the call.
    public static func convTranspose2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Pair = 1, padding: Pair = 0,
        outputPadding: Pair = 0, groups: Int = 1, dilation: Pair = 1
    ) throws -> Tensor {
        let kernel = weight.rank == 4 ? Pair(weight.shape[2], weight.shape[3]) : Pair(0)
        if kernel == stride, padding == 0, outputPadding == 0, dilation == 1, groups == 1, input.rank == 4,
            weight.shape[0] == input.shape[1]
        {
            if takesConvTranspose2d(input, weight: weight, bias: bias) {
                return try convTranspose2x2(input, weight: weight, bias: bias)
            }
            return try nonOverlappingConvTranspose2d(input, weight: weight, bias: bias)
        }
        return try Torch.convTranspose2d(
            input, weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding,
            groups: groups, dilation: dilation)
    }

    /// The rule of `convTranspose2d` for `convTranspose2x2`, on a call whose kernel equals its
    /// stride: float32 CPU tensors, a 2x2 kernel, at most `convTranspose2x2Channels` channels
    /// in and out (with more, oneDNN's 1x1 convolution gains with them).
    public static func takesConvTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor?) -> Bool {
        input.rank == 4 && weight.rank == 4 && weight.shape[2] == 2 && weight.shape[3] == 2
            && weight.shape[0] == input.shape[1]
            && max(weight.shape[0], weight.shape[1]) <= convTranspose2x2Channels && onCPUInFloat32(input, weight, bias)
    }

    /// A transposed convolution whose kernel equals its stride (s_h x s_w, no padding, no
    /// dilation, one group), the learned upsampling of encoder-decoder networks: every input
    /// pixel paints its own s_h x s_w output block,
    ///
    ///     y[n, o, s_h i + a, s_w j + b] = sum_c x[n, c, i, j] w[c, o, a, b] + bias[o],
    ///
    /// computed as a 1x1 convolution to the O s_h s_w channels (o, a, b), with weight w as
    /// [O s_h s_w, C, 1, 1], followed by `blockShuffle`: libtorch's general kernel takes a slow
    /// path for this case.
    static func nonOverlappingConvTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        let c = input.shape[1]
        let (o, sh, sw) = (weight.shape[1], weight.shape[2], weight.shape[3])
        let pointwise = try weight.reshape([c, o * sh * sw]).transpose(0, 1).reshape([o * sh * sw, c, 1, 1])
        var y = try blockShuffle(conv2d(input, weight: pointwise), height: sh, width: sw)
        if let bias { y = try y + bias.reshape([1, o, 1, 1]) }
        return y
    }

    /// Transposed convolution of float32 CPU `input` [N, C, H, W] with `weight` [C, O, 2, 2] and
    /// optional `bias` [O], stride 2, no padding: every input pixel paints its own 2x2 block,
    ///
    ///     y[n, o, 2 i + a, 2 j + b] = bias[o] + sum_c x[n, c, i, j] w[c, o, a, b].
    ///
    /// In one pass: each output row is accumulated in vector registers and its two column taps
    /// interleaved on the way out, in place of a 1x1 convolution to 4 O channels and a
    /// reshuffle of the blocks; the backward pass splits dy's rows into even and odd columns.
    public static func convTranspose2x2(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try withExtendedLifetime(bias) {
            try makeTensor { ck_conv_transpose2x2(input.handle, weight.handle, bias?.handle, $0) }
        }
    }

    /// Puts blocks [N, O s_h s_w, H, W] into place: out[n, o, s_h i + a, s_w j + b] =
    /// blocks[n, (o s_h + a) s_w + b, i, j], giving [N, O, H s_h, W s_w] (pixel shuffle with
    /// rectangular blocks). Rule: float32 CPU blocks take the kernel, which writes each output
    /// row from its s_w block rows in one pass (libtorch's copy behind a reshape, permute and
    /// reshape runs with an innermost dimension of s_w elements); other tensors take that
    /// reshape-permute-reshape.
    public static func blockShuffle(_ blocks: Tensor, height sh: Int, width sw: Int) throws -> Tensor {
        guard sh > 0, sw > 0, blocks.rank == 4, blocks.shape[1] % (sh * sw) == 0 else {
            throw TorchError("the block shuffle needs blocks [N, O * \(sh) * \(sw), H, W], got \(blocks.shape)")
        }
        if onCPUInFloat32(blocks) {
            return try makeTensor { ck_block_shuffle(blocks.handle, Int64(sh), Int64(sw), $0) }
        }
        let (n, channels, h, w) = (blocks.shape[0], blocks.shape[1], blocks.shape[2], blocks.shape[3])
        let o = channels / (sh * sw)
        return try blocks.reshape([n, o, sh, sw, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([n, o, h * sh, w * sw])
    }
}

extension Kernels {
    /// A TorchScript graph's convolution (`ScriptModule.redirectConvolutions(to:)`) by
    /// `conv2d` or `convTranspose2d`, each under its rule.
    public static func convolution(_ call: ConvolutionCall) throws -> Tensor {
        if call.transposed {
            return try convTranspose2d(
                call.input, weight: call.weight, bias: call.bias, stride: call.stride, padding: call.padding,
                outputPadding: call.outputPadding, groups: call.groups, dilation: call.dilation)
        }
        return try conv2d(
            call.input, weight: call.weight, bias: call.bias, stride: call.stride, padding: call.padding,
            dilation: call.dilation, groups: call.groups)
    }
}
