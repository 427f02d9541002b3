internal import CKernels
import Torch

extension Kernels {
    /// `Tensor.argmax`: the index of the first maximum along `dim`, or of the first NaN where
    /// there is one. Rule: contiguous float32 CPU input reduced over a dimension other than the
    /// innermost one (the classes of [N, C, H, W] scores) takes SegTTT's kernel, which compares
    /// tiles of pixels class by class; other floating CPU input takes libtorch's max over
    /// `dim`, which gives the same indices faster than its argmax; the rest libtorch's argmax.
    public static func argmax(_ tensor: Tensor, dim: Int, keepDim: Bool = false) throws -> Tensor {
        try makeTensor { ck_argmax(tensor.handle, Int64(dim), keepDim, $0) }
    }
}
