// Output Contrastive Loss: Zhang et al., "Test-Time Training for Semantic Segmentation
// with Output Contrastive Loss", arXiv 2311.07877 (2023).
import SegTTTKernels
import Torch

/// OCL's loss on the logits of two views of one image.
///
/// With q = l2normalize(softmax(z, dim: C), dim: C) per pixel, for views v = 0, 1 and pixels
/// i = 1...N:
///
///     pos = -(1/N) sum_i q_0[i] . q_1[i]                      (agreement of the views)
///     neg = (1/2) sum_v (1/N^2) sum_{i,j} q_v[i] . q_v[j]      (uniformity within a view)
///     loss = posCoeff * pos + negCoeff * neg
///
/// The mean over all pixel pairs equals || (1/N) sum_i q_v[i] ||^2, with the same value and
/// the same gradient, so `neg` is computed in O(N * C) time and memory with no N x N matrix.
public struct OutputContrastiveLoss {
    public var posCoeff: Double
    public var negCoeff: Double
    /// When set, `neg` is computed from the explicit Gram matrix of the pixels at this spatial
    /// stride, as the published code does (for parity checks only: O(N^2) memory).
    public var negativeStride: Int?

    public init(posCoeff: Double = 3, negCoeff: Double = 1, negativeStride: Int? = nil) {
        self.posCoeff = posCoeff
        self.negCoeff = negCoeff
        self.negativeStride = negativeStride
    }

    /// The loss and its two terms for logits [2, C, H, W] of view 0 and of view 1 already
    /// flipped back into view 0's frame: by the fused kernel (`Kernels.outputContrastiveLoss`)
    /// where its rule admits them and the negative term is exact, otherwise by `composed`.
    public func callAsFunction(_ logits: Tensor) throws -> (loss: Tensor, pos: Tensor, neg: Tensor) {
        guard negativeStride == nil, Kernels.takesOutputContrastiveLoss(logits) else { return try composed(logits) }
        return try Kernels.outputContrastiveLoss(logits, posCoeff: posCoeff, negCoeff: negCoeff)
    }

    /// The same loss composed from libtorch's ops, on any device and dtype, with the Gram-form
    /// negative term when `negativeStride` is set.
    public func composed(_ logits: Tensor) throws -> (loss: Tensor, pos: Tensor, neg: Tensor) {
        let q = try logits.softmax(dim: 1).normalize(dim: 1)
        let v0 = try q.narrow(dim: 0, start: 0, length: 1)
        let v1 = try q.narrow(dim: 0, start: 1, length: 1)
        let pos = try -(v0 * v1).sum(dims: [1]).mean()
        let neg =
            try negativeStride.map { try OutputContrastiveLoss.gramNegative(q, stride: $0) }
            ?? OutputContrastiveLoss.exactNegative(q)
        return (try posCoeff * pos + negCoeff * neg, pos, neg)
    }

    /// (1/V) sum_v || mean_i q_v[i] ||^2 for q [V, C, H, W].
    public static func exactNegative(_ q: Tensor) throws -> Tensor {
        try q.mean(dims: [2, 3]).pow(2).sum(dims: [1]).mean()
    }

    /// (1/V) sum_v mean_{i,j} q_v[i] . q_v[j] through the Gram matrix of the pixels sampled at
    /// `stride` in both directions, one view at a time (one N x N matrix alive at once).
    public static func gramNegative(_ q: Tensor, stride: Int) throws -> Tensor {
        let sampled = try q.slice(dim: 2, step: stride).slice(dim: 3, step: stride)
        let shape = sampled.shape
        let flat = try sampled.reshape([shape[0], shape[1], shape[2] * shape[3]])  // [V, C, N]
        var total: Tensor?
        for view in 0..<shape[0] {
            let qv = try flat.narrow(dim: 0, start: view, length: 1).squeeze(dim: 0)  // [C, N]
            let term = try qv.transpose(0, 1).matmul(qv).mean()  // mean of the [N, N] Gram matrix
            total = try total.map { try $0 + term } ?? term
        }
        return try (total ?? Tensor.zeros([])) / Double(Swift.max(1, shape[0]))
    }
}
