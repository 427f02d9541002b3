// The reshuffle that ends a transposed convolution whose kernel equals its stride (computed
// as a 1x1 convolution to O sh sw channels): from blocks [N, O sh sw, H, W] to
//
//     out[n, o, i sh + a, j sw + b] = blocks[n, (o sh + a) sw + b, i, j],
//
// with its backward, the inverse gather. Composed from reshape, permute and a copy, libtorch's
// copy runs with an innermost dimension of sw = 2 elements (docs/BENCHMARKS.md, "SegTTT's
// kernels", gives its time). Here each output row is written from sw input rows in one pass,
// spread over the threads by rows.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include "ctorch_internal.h"
#include "ckernels.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Rows of the output per parallel range: enough that a range moves about 64 KiB.
int64_t row_grain(int64_t row_length) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_length)); }

/// For every output row (n, o, i sh + a), with `Gather` false: writes it, of length w sw, from
/// the sw block rows (n, (o sh + a) sw + b, i) of length w in `source` (blocks) to `target`;
/// with `Gather` true, the inverse: from the rows of `source` (output-shaped) to the block rows
/// of `target`.
template <bool Gather>
void shuffle_rows(const float *source, float *target, int64_t planes, int64_t h, int64_t w, int64_t sh,
                  int64_t sw) {
    const int64_t rows = planes * h * sh;
    ctorch::parallel_for(0, rows, row_grain(w * sw), [&](int64_t first, int64_t last) {
        for (int64_t row = first; row < last; ++row) {
            const int64_t a = row % sh, i = (row / sh) % h, o = row / (sh * h);
            const int64_t line = row * w * sw;                       // offset of the output row
            const int64_t block = (((o * sh + a) * sw) * h + i) * w;  // of block row b = 0; b steps by h w
            if (sw == 2) {
                if (Gather) {
                    const float *from = source + line;
                    float *even = target + block, *odd = target + block + h * w;
                    for (int64_t j = 0; j < w; ++j) {
                        even[j] = from[2 * j];
                        odd[j] = from[2 * j + 1];
                    }
                } else {
                    const float *even = source + block, *odd = source + block + h * w;
                    float *to = target + line;
                    for (int64_t j = 0; j < w; ++j) {
                        to[2 * j] = even[j];
                        to[2 * j + 1] = odd[j];
                    }
                }
                continue;
            }
            for (int64_t b = 0; b < sw; ++b) {
                for (int64_t j = 0; j < w; ++j) {
                    if (Gather) {
                        target[block + b * h * w + j] = source[line + j * sw + b];
                    } else {
                        target[line + j * sw + b] = source[block + b * h * w + j];
                    }
                }
            }
        }
    });
}

struct BlockShuffleFunction : public torch::autograd::Function<BlockShuffleFunction> {
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, int64_t sh, int64_t sw) {
        const at::Tensor blocks = input.contiguous();
        const int64_t n = blocks.size(0), h = blocks.size(2), w = blocks.size(3), o = blocks.size(1) / (sh * sw);
        at::Tensor out = at::empty({n, o, h * sh, w * sw}, blocks.options());
        shuffle_rows</*Gather=*/false>(blocks.data_ptr<float>(), out.data_ptr<float>(), n * o, h, w, sh, sw);
        ctx->saved_data["sh"] = sh;
        ctx->saved_data["sw"] = sw;
        return out;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        const int64_t sh = ctx->saved_data["sh"].toInt(), sw = ctx->saved_data["sw"].toInt();
        const at::Tensor grad = grads[0].contiguous();
        const int64_t n = grad.size(0), o = grad.size(1), h = grad.size(2) / sh, w = grad.size(3) / sw;
        at::Tensor dblocks = at::empty({n, o * sh * sw, h, w}, grad.options());
        shuffle_rows</*Gather=*/true>(grad.data_ptr<float>(), dblocks.data_ptr<float>(), n * o, h, w, sh, sw);
        return {dblocks, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

extern "C" {

ct_status ck_block_shuffle(ct_tensor blocks, int64_t sh, int64_t sw, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = blocks->tensor;
        TORCH_CHECK(sh > 0 && sw > 0, "the block shuffle needs block sides of 1 or more, got ", sh, "x", sw);
        TORCH_CHECK(x.dim() == 4 && x.size(1) % (sh * sw) == 0,
                    "the block shuffle needs blocks [N, O * ", sh, " * ", sw, ", H, W], got ", x.sizes());
        TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat,
                    "the block shuffle runs on float32 CPU tensors, got ", x.scalar_type(), " on ", x.device());
        RECORD_FUNCTION("segttt::block_shuffle", std::vector<c10::IValue>{});
        *out = ctorch::wrap(BlockShuffleFunction::apply(x, sh, sw));
    })
}

}  // extern "C"
