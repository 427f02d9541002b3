// Transposed convolutions with a 2x2 kernel and stride 2 (ESPNet's decoder), in one pass:
// every input pixel paints its own 2x2 output block,
//
//     y[n, o, 2 i + a, 2 j + b] = bias[o] + sum_c x[n, c, i, j] w[c, o, a, b],
//
// and the backward pass
//
//     dx[n, c, i, j]  = sum_{o, a, b} w[c, o, a, b] dy[n, o, 2 i + a, 2 j + b]
//     dw[c, o, a, b]  = sum_{n, i, j} x[n, c, i, j] dy[n, o, 2 i + a, 2 j + b]
//     dbias[o]        = sum_{n, i, j, a, b} dy[n, o, 2 i + a, 2 j + b].
//
// Computed before as oneDNN's 1x1 convolution to 4 O channels (reorders to and from its
// blocked layout included) and a reshuffle of the blocks into place (block_shuffle.cpp;
// docs/BENCHMARKS.md, "SegTTT's kernels", gives the times). Here each output row is accumulated in
// vector registers, 3 output channels by 16 input columns, and its two column taps b = 0, 1
// are interleaved on the way out; the backward pass splits each dy row into its even and odd
// columns on the way in. The weight gradient is summed per thread over the rows it takes and
// the threads' sums added in the end, in a fixed order. Rows whose width is not a multiple of 8 are first
// copied with zero columns up to it. Vectors of 8 floats through the compiler's vector
// extension: AVX2 with FMA where the CPU has both (chosen at run time), SSE otherwise.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "ctorch_internal.h"
#include "ckernels.h"
#include "vector_kernels.h"

namespace {

using namespace ctorch::vec;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Output channels accumulated together forward, input channels backward (dx).
constexpr int64_t kOutputBlock = 3, kInputBlock = 4;

/// The sizes: x [batch, channels, h, w] to y [batch, outputs, 2 h, 2 w]; x's rows padded to
/// `width` = w rounded up to 8 (dy's to 2 `width`).
struct Geometry {
    int64_t batch, channels, outputs, h, w;
    int64_t width() const { return round_up(w, kLanes); }
    int64_t vectors() const { return width() / kLanes; }
};

/// t's rows [.., rows, w] copied to rows of `width` >= w floats, zeros after w (t itself where
/// the widths agree).
at::Tensor padded_rows(const at::Tensor &t, int64_t width) {
    if (t.size(-1) == width) return t;
    return at::constant_pad_nd(t, {0, width - t.size(-1)}, 0);
}

/// w [C, O, 2, 2] as [ceil(O / 3)][C][2 a][2 b][3] (forward) or as [ceil(C / 4)][O][2][2][4]
/// (dx), zero past the last channel.
std::vector<float> pack(const at::Tensor &weight, bool by_input) {
    const at::Tensor w = weight.contiguous();
    const int64_t channels = w.size(0), outputs = w.size(1);
    const int64_t block = by_input ? kInputBlock : kOutputBlock, blocked = by_input ? channels : outputs;
    const int64_t other = by_input ? outputs : channels;
    std::vector<float> packed(round_up(blocked, block) * other * 4, 0.f);
    const float *p = w.data_ptr<float>();
    for (int64_t c = 0; c < channels; ++c) {
        for (int64_t o = 0; o < outputs; ++o) {
            const int64_t k = by_input ? c : o, m = by_input ? o : c;
            for (int64_t tap = 0; tap < 4; ++tap) {
                packed[(((k / block) * other + m) * 4 + tap) * block + k % block] = p[(c * outputs + o) * 4 + tap];
            }
        }
    }
    return packed;
}

/// Output rows 2 i + a of 3 output channels from o0, for units [first, last) of (n, i, block,
/// a): consecutive units read the same input rows, which stay in cache; x rows padded to
/// `width`.
__attribute__((always_inline)) inline void forward_rows(const Geometry &g, const float *x, const float *packed,
                                                        const float *bias, float *y, int64_t first, int64_t last) {
    const int64_t blocks = round_up(g.outputs, kOutputBlock) / kOutputBlock, width = g.width();
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t a = unit % 2, block = (unit / 2) % blocks, i = (unit / (2 * blocks)) % g.h;
        const int64_t n = unit / (2 * blocks * g.h), o0 = block * kOutputBlock;
        const float *weights = packed + block * g.channels * 4 * kOutputBlock;
        for (int64_t v0 = 0; v0 < g.vectors(); v0 += 2) {
            const int64_t count = std::min<int64_t>(2, g.vectors() - v0);
            Vec acc[kOutputBlock][2][2] = {};  // [o][b][v]
            for (int64_t c = 0; c < g.channels; ++c) {
                const float *row = x + ((n * g.channels + c) * g.h + i) * width + v0 * kLanes;
                const Vec x0 = load(row), x1 = count == 2 ? load(row + kLanes) : Vec{};
                const float *taps = weights + (c * 4 + a * 2) * kOutputBlock;
                for (int64_t o = 0; o < kOutputBlock; ++o) {
                    for (int64_t b = 0; b < 2; ++b) {
                        const Vec s = splat(taps[b * kOutputBlock + o]);
                        acc[o][b][0] += s * x0;
                        acc[o][b][1] += s * x1;
                    }
                }
            }
            for (int64_t o = 0; o < kOutputBlock && o0 + o < g.outputs; ++o) {
                const Vec shift = splat(bias ? bias[o0 + o] : 0.f);
                float *line = y + ((n * g.outputs + o0 + o) * 2 * g.h + 2 * i + a) * 2 * g.w;
                for (int64_t v = 0; v < count; ++v) {
                    const Vec even = acc[o][0][v] + shift, odd = acc[o][1][v] + shift;
                    const Vec low = __builtin_shufflevector(even, odd, 0, 8, 1, 9, 2, 10, 3, 11);
                    const Vec high = __builtin_shufflevector(even, odd, 4, 12, 5, 13, 6, 14, 7, 15);
                    const int64_t j = (v0 + v) * kLanes, valid = 2 * std::min(kLanes, g.w - j);
                    float values[2 * kLanes];
                    store(values, low);
                    store(values + kLanes, high);
                    std::copy(values, values + valid, line + 2 * j);
                }
            }
        }
    }
}

/// dy's row of 2 `width` floats at v's 16 columns split into its even (b = 0) and odd (b = 1)
/// columns.
__attribute__((always_inline)) inline void split_columns(const float *row, int64_t v, Vec &even, Vec &odd) {
    const Vec low = load(row + 2 * v * kLanes), high = load(row + 2 * v * kLanes + kLanes);
    even = __builtin_shufflevector(low, high, 0, 2, 4, 6, 8, 10, 12, 14);
    odd = __builtin_shufflevector(low, high, 1, 3, 5, 7, 9, 11, 13, 15);
}

/// dx rows i of 4 input channels from c0, for units [first, last) of (n, i, block): consecutive
/// units read the same 2 O rows of dy, which stay in cache (in the order (n, block, i) dy was
/// read from memory once per block); dy rows padded to 2 `width`.
__attribute__((always_inline)) inline void input_grad_rows(const Geometry &g, const float *dy, const float *packed,
                                                           float *dx, int64_t first, int64_t last) {
    const int64_t blocks = round_up(g.channels, kInputBlock) / kInputBlock, width = g.width();
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t block = unit % blocks, i = (unit / blocks) % g.h, n = unit / (blocks * g.h);
        const int64_t c0 = block * kInputBlock;
        const float *weights = packed + block * g.outputs * 4 * kInputBlock;
        for (int64_t v0 = 0; v0 < g.vectors(); v0 += 2) {
            const int64_t count = std::min<int64_t>(2, g.vectors() - v0);
            Vec acc[kInputBlock][2] = {};
            for (int64_t o = 0; o < g.outputs; ++o) {
                for (int64_t a = 0; a < 2; ++a) {
                    const float *row = dy + ((n * g.outputs + o) * 2 * g.h + 2 * i + a) * 2 * width;
                    Vec even[2] = {}, odd[2] = {};
                    split_columns(row, v0, even[0], odd[0]);
                    if (count == 2) split_columns(row, v0 + 1, even[1], odd[1]);
                    const float *taps = weights + (o * 4 + a * 2) * kInputBlock;
                    for (int64_t c = 0; c < kInputBlock; ++c) {
                        const Vec s0 = splat(taps[c]), s1 = splat(taps[kInputBlock + c]);
                        for (int64_t v = 0; v < 2; ++v) acc[c][v] += s0 * even[v] + s1 * odd[v];
                    }
                }
            }
            for (int64_t c = 0; c < kInputBlock && c0 + c < g.channels; ++c) {
                float *line = dx + ((n * g.channels + c0 + c) * g.h + i) * g.w;
                for (int64_t v = 0; v < count; ++v) {
                    const int64_t j = (v0 + v) * kLanes, valid = std::min(kLanes, g.w - j);
                    float values[kLanes];
                    store(values, acc[c][v]);
                    std::copy(values, values + valid, line + j);
                }
            }
        }
    }
}

/// Adds to `sums` [C][O][2][2] (double) dw's terms from the input rows [first, last) of the
/// flattened (n, i); x rows padded to `width`, dy's to 2 `width`, both with zeros.
__attribute__((always_inline)) inline void weight_grad_rows(const Geometry &g, const float *x, const float *dy,
                                                            double *sums, int64_t first, int64_t last) {
    const int64_t width = g.width();
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t i = unit % g.h, n = unit / g.h;
        for (int64_t o = 0; o < g.outputs; ++o) {
            for (int64_t a = 0; a < 2; ++a) {
                const float *row = dy + ((n * g.outputs + o) * 2 * g.h + 2 * i + a) * 2 * width;
                for (int64_t c0 = 0; c0 < g.channels; c0 += kInputBlock) {
                    const int64_t count = std::min(kInputBlock, g.channels - c0);
                    Vec acc[kInputBlock][2] = {};  // [c][b]
                    for (int64_t v = 0; v < g.vectors(); ++v) {
                        Vec even, odd;
                        split_columns(row, v, even, odd);
                        for (int64_t c = 0; c < kInputBlock; ++c) {
                            if (c >= count) break;
                            const Vec xs = load(x + ((n * g.channels + c0 + c) * g.h + i) * width + v * kLanes);
                            acc[c][0] += xs * even;
                            acc[c][1] += xs * odd;
                        }
                    }
                    for (int64_t c = 0; c < count; ++c) {
                        for (int64_t b = 0; b < 2; ++b) {
                            sums[(((c0 + c) * g.outputs + o) * 2 + a) * 2 + b] += lane_sum(acc[c][b]);
                        }
                    }
                }
            }
        }
    }
}

CT_KERNEL_TWINS(forward_rows, forward_rows,
                (const Geometry &g, const float *x, const float *packed, const float *bias, float *y, int64_t first,
                 int64_t last),
                (g, x, packed, bias, y, first, last))

CT_KERNEL_TWINS(input_grad_rows, input_grad_rows,
                (const Geometry &g, const float *dy, const float *packed, float *dx, int64_t first, int64_t last),
                (g, dy, packed, dx, first, last))

CT_KERNEL_TWINS(weight_grad_rows, weight_grad_rows,
                (const Geometry &g, const float *x, const float *dy, double *sums, int64_t first, int64_t last),
                (g, x, dy, sums, first, last))

/// Units of `work` floats per parallel range: about 16 K multiply-adds each.
int64_t grain(int64_t work) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work)); }

struct ConvTranspose2x2Function : public torch::autograd::Function<ConvTranspose2x2Function> {
    /// `bias` is [O], or empty for none (libtorch 1.13's custom functions take no undefined inputs).
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                              const at::Tensor &bias) {
        const at::Tensor x = input.contiguous(), b = bias.contiguous();
        const Geometry g{x.size(0), x.size(1), weight.size(1), x.size(2), x.size(3)};
        ctx->save_for_backward({x, weight});
        ctx->saved_data["bias"] = b.numel() > 0;
        const at::Tensor xp = padded_rows(x, g.width());
        const std::vector<float> packed = pack(weight, /*by_input=*/false);
        at::Tensor y = at::empty({g.batch, g.outputs, 2 * g.h, 2 * g.w}, x.options());
        const float *xs = xp.data_ptr<float>(), *w = packed.data(), *shift = b.numel() > 0 ? b.data_ptr<float>() : nullptr;
        float *out = y.data_ptr<float>();
        const auto rows = instruction_set() != CK_BASELINE ? forward_rows_avx2 : forward_rows_generic;
        const int64_t units = g.batch * (round_up(g.outputs, kOutputBlock) / kOutputBlock) * g.h * 2;
        ctorch::parallel_for(0, units, grain(g.channels * g.w * kOutputBlock * 2), [&](int64_t first, int64_t last) {
            rows(g, xs, w, shift, out, first, last);
        });
        return y;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        TORCH_CHECK(!at::GradMode::is_enabled(),
                    "SegTTT's 2x2 transposed convolution has first derivatives only; for higher ones use "
                    "libtorch's transposed convolution (Torch.convTranspose2d)");
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &weight = saved[1];
        const at::Tensor dy = grads[0].contiguous();
        const Geometry g{x.size(0), x.size(1), weight.size(1), x.size(2), x.size(3)};
        const at::Tensor dyp = padded_rows(dy, 2 * g.width());
        const float *grad = dyp.data_ptr<float>();
        at::Tensor dx, dweight, dbias;
        if (ctx->needs_input_grad(0)) {
            const std::vector<float> packed = pack(weight, /*by_input=*/true);
            dx = at::empty_like(x);
            float *out = dx.data_ptr<float>();
            const auto rows = instruction_set() != CK_BASELINE ? input_grad_rows_avx2 : input_grad_rows_generic;
            const int64_t units = g.batch * (round_up(g.channels, kInputBlock) / kInputBlock) * g.h;
            ctorch::parallel_for(0, units, grain(g.outputs * 4 * g.w * kInputBlock), [&](int64_t first, int64_t last) {
                rows(g, grad, packed.data(), out, first, last);
            });
        }
        if (ctx->needs_input_grad(1)) {
            const at::Tensor xp = padded_rows(x, g.width());
            const float *xs = xp.data_ptr<float>();
            const auto rows = instruction_set() != CK_BASELINE ? weight_grad_rows_avx2 : weight_grad_rows_generic;
            const std::vector<double> total = ctorch::parallel_sum(
                0, g.batch * g.h, grain(g.channels * g.outputs * 4 * g.w), g.channels * g.outputs * 4,
                [&](int64_t first, int64_t last, double *sums) { rows(g, xs, grad, sums, first, last); });
            dweight = ctorch::from_sums(total, {g.channels, g.outputs, 2, 2}, weight);
        }
        if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) dbias = dy.sum({0, 2, 3});
        return {dx, dweight, dbias};
    }
};

}  // namespace

extern "C" {

ct_status ck_conv_transpose2x2(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor, &w = weight->tensor;
        const at::Tensor b = bias ? bias->tensor : at::Tensor();
        TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(0) == x.size(1) && w.size(2) == 2 && w.size(3) == 2,
                    "the 2x2 transposed convolution needs input [N, C, H, W] and weight [C, O, 2, 2], got ",
                    x.sizes(), " and ", w.sizes());
        ctorch::check_kernel_operands("the 2x2 transposed convolution", {&x, &w, &b}, b, w.size(1));
        RECORD_FUNCTION("segttt::conv_transpose2x2", std::vector<c10::IValue>{});
        *out = ctorch::wrap(ConvTranspose2x2Function::apply(x, w, b.defined() ? b : at::empty({0}, w.options())));
    })
}

}  // extern "C"
