internal import CKernels
import Torch

extension Kernels {
    /// Output Contrastive Loss of logits [2, C, H, W] (two views, the second already flipped
    /// back) as one fused CPU kernel with its own backward pass, for float32 CPU tensors:
    ///
    ///     q_v = l2normalize(softmax(z_v, dim: C), dim: C)        per pixel, v = 0, 1
    ///     pos = -(1/N) sum_i q_0[i] . q_1[i]
    ///     neg = (1/2) sum_v || (1/N) sum_i q_v[i] ||^2
    ///     loss = posCoeff * pos + negCoeff * neg
    ///
    /// The same values and gradients as composing those from libtorch's ops, in three passes
    /// over the logits instead of about twenty (`contrastive.cpp` derives the gradient). All
    /// three results are scalars that carry gradients back to `logits`. Rule
    /// (`takesOutputContrastiveLoss`): the OCL loss with its exact negative term takes it for
    /// float32 CPU logits of two views, and composes libtorch's ops elsewhere.
    public static func outputContrastiveLoss(_ logits: Tensor, posCoeff: Double, negCoeff: Double) throws -> (
        loss: Tensor, pos: Tensor, neg: Tensor
    ) {
        var loss: OpaquePointer?
        var pos: OpaquePointer?
        var neg: OpaquePointer?
        try check(ck_output_contrastive_loss(logits.handle, posCoeff, negCoeff, &loss, &pos, &neg))
        guard let loss, let pos, let neg else { throw TorchError("libtorch returned no tensor") }
        return (Tensor(handle: loss), Tensor(handle: pos), Tensor(handle: neg))
    }

    /// The rule of `outputContrastiveLoss`: float32 CPU logits [2, C, H, W].
    public static func takesOutputContrastiveLoss(_ logits: Tensor) -> Bool {
        onCPUInFloat32(logits) && logits.rank == 4 && logits.shape[0] == 2
    }
}
