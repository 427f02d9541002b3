// Argmax over one dimension: the index of the first maximum, or of the first NaN where there
// is one, as torch.argmax. libtorch's CPU argmax over a dimension that is not the innermost
// one (the classes of [N, C, H, W] scores) is slower than its max over it, which returns the
// same indices, and both are slower than this file's kernel, which compares tiles of pixels
// class by class, for contiguous float32 input (docs/BENCHMARKS.md, "SegTTT's kernels").
#include <ATen/record_function.h>

#include <algorithm>
#include <climits>

#include "ctorch_internal.h"
#include "ckernels.h"

namespace {

constexpr int64_t kTile = 256;  // pixels compared together, class by class

/// indices[o, i] = argmax over c of x[o, c, i], x contiguous [outer, size, inner].
void argmax_over_middle(const float *x, int64_t *indices, int64_t outer, int64_t size, int64_t inner) {
    TORCH_CHECK(size <= INT32_MAX, "argmax over ", size, " entries");
    const int64_t tiles = (inner + kTile - 1) / kTile;
    const int64_t grain = std::max<int64_t>(1, 32768 / (kTile * size));
    ctorch::parallel_for(0, outer * tiles, grain, [&](int64_t first, int64_t last) {
        float best[kTile];
        int32_t arg[kTile];  // 32 bits, so that the compare-and-select loop vectorises
        for (int64_t t = first; t < last; ++t) {
            const int64_t o = t / tiles, i0 = (t % tiles) * kTile, len = std::min(kTile, inner - i0);
            const float *slab = x + o * size * inner + i0;
            std::copy(slab, slab + len, best);
            std::fill(arg, arg + len, 0);
            for (int64_t c = 1; c < size; ++c) {
                const float *row = slab + c * inner;
                const auto index = static_cast<int32_t>(c);
                for (int64_t b = 0; b < len; ++b) {
                    const float v = row[b], held = best[b];
                    // A larger value, or the first NaN; a NaN already held is kept.
                    const bool take = (v > held) | ((v != v) & (held == held));
                    best[b] = take ? v : held;
                    arg[b] = take ? index : arg[b];
                }
            }
            std::copy(arg, arg + len, indices + o * inner + i0);
        }
    });
}

}  // namespace

extern "C" {

ct_status ck_argmax(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = t->tensor;
        const int64_t d = x.dim() > 0 ? at::maybe_wrap_dim(dim, x.dim()) : 0;
        const bool middle = x.dim() > 0 && d < x.dim() - 1 && x.size(d) > 0;
        if (middle && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.is_contiguous() && x.numel() > 0) {
            RECORD_FUNCTION("segttt::argmax", std::vector<c10::IValue>{});
            // The sizes, not the strides: a contiguous tensor's dimensions of size 1 may have
            // any stride.
            const int64_t size = x.size(d), inner = c10::multiply_integers(x.sizes().slice(d + 1)),
                          outer = x.numel() / (size * inner);
            auto sizes = x.sizes().vec();
            sizes[d] = 1;
            at::Tensor indices = at::empty(sizes, x.options().dtype(at::kLong));
            argmax_over_middle(x.data_ptr<float>(), indices.data_ptr<int64_t>(), outer, size, inner);
            *out = ctorch::wrap(keepdim ? indices : indices.squeeze(d));
            return CT_OK;
        }
        // Elsewhere libtorch's max over the dimension, which returns the same indices as its
        // argmax and is faster on the CPU for other floating types too.
        const bool by_max = x.device().is_cpu() && at::isFloatingType(x.scalar_type()) && x.dim() > 0;
        *out = ctorch::wrap(by_max ? std::get<1>(at::max(x, dim, keepdim)) : x.argmax(dim, keepdim));
    })
}

}  // extern "C"
