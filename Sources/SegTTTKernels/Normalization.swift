internal import CKernels
import Torch

extension Kernels {
    /// prelu(batchNorm(input)) with statistics that carry no gradient, for float32 CPU input, as
    /// one fused kernel with its own backward pass (one pass over the input forward, one
    /// backward, against two and four or more for the pair of libtorch ops):
    ///
    ///     y = (x - mean) / sqrt(variance + eps) * weight + bias,   out = max(0, y) + slope * min(0, y)
    ///
    /// per channel; gradients reach `input`, `weight`, `bias` and `slope` (one slope, or one per
    /// channel), not the statistics. Rule (`takesBatchNormPReLU`): TorchNN's batch norm
    /// followed by PReLU takes it for float32 CPU input normalised with statistics that carry
    /// no gradient, and the two libtorch ops otherwise.
    public static func batchNormPReLU(
        _ input: Tensor, mean: Tensor, variance: Tensor, weight: Tensor, bias: Tensor, slope: Tensor, eps: Double
    ) throws -> Tensor {
        try makeTensor {
            ck_batch_norm_prelu(
                input.handle, mean.handle, variance.handle, weight.handle, bias.handle, slope.handle, eps, $0)
        }
    }

    /// The rule of `batchNormPReLU` on the input: float32 on the CPU (the caller knows
    /// whether its statistics carry a gradient).
    public static func takesBatchNormPReLU(_ input: Tensor) -> Bool { onCPUInFloat32(input) }

    /// `Torch.batchNormUpdateStatistics`: running_mean = m * mean(x) + (1 - m) * running_mean
    /// and running_var = m * var(x) + (1 - m) * running_var, var unbiased over the N * H * W
    /// values of a channel, in place, no gradient. Rule: contiguous float32 CPU input and
    /// statistics with at least two values per channel take SegTTT's kernel (two passes per
    /// channel, summed in double); the rest libtorch's `batch_norm_update_stats`.
    public static func batchNormUpdateStatistics(
        _ input: Tensor, runningMean: Tensor, runningVar: Tensor, momentum: Double
    ) throws {
        try withExtendedLifetime((runningMean, runningVar)) {
            try check(ck_batch_norm_update_stats(input.handle, runningMean.handle, runningVar.handle, momentum))
        }
    }
}
