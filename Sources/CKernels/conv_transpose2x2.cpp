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
// vector registers, 3 output channels by two vectors of input columns, and its two column taps
// b = 0, 1 are interleaved on the way out. The backward pass reads dy's rows as they
// are, their column taps interleaved: dx accumulates w[c, o, a, b] in the lanes of parity b
// (a vector of weight pairs) times dy's vectors, and adds each pair of lanes on the way out; the
// weight gradient multiplies dy's vectors by x's row with every value twice (x[j] at 2 j and
// 2 j + 1), so that the lanes of parity b sum dw[.., b]; each thread keeps these sums in
// vectors over the rows it takes and adds their lanes once, in double, and the threads' sums
// are added in a fixed order. Rows whose width is not a multiple of the vector's lanes (8 in
// the backward pass) are first copied with zero columns up to it. Both passes run in the
// vectors of `instruction_set()`: 16 floats on AVX-512, 8 on AVX2 with FMA or in pairs of SSE's.
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

/// The sizes: x [batch, channels, h, w] to y [batch, outputs, 2 h, 2 w]; in the backward pass
/// x's rows padded to `width` = w rounded up to 8 (dy's to 2 `width`).
struct Geometry {
    int64_t batch, channels, outputs, h, w;
    int64_t width() const { return round_up(w, kLanes); }
};

/// t's rows [.., rows, w] copied to rows of `width` >= w floats, zeros after w (t itself where
/// the widths agree).
at::Tensor padded_rows(const at::Tensor &t, int64_t width) {
    if (t.size(-1) == width) return t;
    return at::constant_pad_nd(t, {0, width - t.size(-1)}, 0);
}

/// w [C, O, 2, 2] rearranged: w[c, o, tap] (tap = 2 a + b) at `index(c, o, tap)` of `size`
/// floats, zeros elsewhere.
template <class Index>
std::vector<float> rearranged(const at::Tensor &weight, int64_t size, Index index) {
    const at::Tensor w = weight.contiguous();
    const int64_t channels = w.size(0), outputs = w.size(1);
    std::vector<float> packed(size, 0.f);
    const float *p = w.data_ptr<float>();
    for (int64_t c = 0; c < channels; ++c) {
        for (int64_t o = 0; o < outputs; ++o) {
            for (int64_t tap = 0; tap < 4; ++tap) packed[index(c, o, tap)] = p[(c * outputs + o) * 4 + tap];
        }
    }
    return packed;
}

/// w [C, O, 2, 2] as [ceil(O / 3)][C][2 a][2 b][3] for the forward pass, zero past O.
std::vector<float> pack(const at::Tensor &weight) {
    const int64_t channels = weight.size(0), outputs = weight.size(1);
    return rearranged(weight, round_up(outputs, kOutputBlock) * channels * 4, [&](int64_t c, int64_t o, int64_t tap) {
        return (((o / kOutputBlock) * channels + c) * 4 + tap) * kOutputBlock + o % kOutputBlock;
    });
}

/// Lanes 0..L/2-1 of `even` and `odd` interleaved (even[0], odd[0], even[1], ...) when
/// `high` is false, lanes L/2..L-1 when it is true.
template <class V, bool high>
__attribute__((always_inline)) inline V interleaved(V even, V odd) {
    if constexpr (lanes_of<V> == 16) {
        if constexpr (high) {
            return __builtin_shufflevector(even, odd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        } else {
            return __builtin_shufflevector(even, odd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        }
    } else if constexpr (high) {
        return __builtin_shufflevector(even, odd, 4, 12, 5, 13, 6, 14, 7, 15);
    } else {
        return __builtin_shufflevector(even, odd, 0, 8, 1, 9, 2, 10, 3, 11);
    }
}

/// Output rows 2 i + a of 3 output channels from o0, for units [first, last) of (n, i, block,
/// a): consecutive units read the same input rows, which stay in cache; x rows padded to
/// `width`, a multiple of the vector's lanes.
template <class I>
__attribute__((always_inline)) inline void forward_rows(const Geometry &g, int64_t width, const float *x,
                                                        const float *packed, const float *bias, float *y,
                                                        int64_t first, int64_t last) {
    using V = typename I::Vector;
    constexpr int64_t L = I::kLanes;
    const int64_t blocks = round_up(g.outputs, kOutputBlock) / kOutputBlock, vectors = width / L;
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t a = unit % 2, block = (unit / 2) % blocks, i = (unit / (2 * blocks)) % g.h;
        const int64_t n = unit / (2 * blocks * g.h), o0 = block * kOutputBlock;
        const float *weights = packed + block * g.channels * 4 * kOutputBlock;
        for (int64_t v0 = 0; v0 < vectors; v0 += 2) {
            const int64_t count = std::min<int64_t>(2, vectors - v0);
            V acc[kOutputBlock][2][2] = {};  // [o][b][v]
            for (int64_t c = 0; c < g.channels; ++c) {
                const float *row = x + ((n * g.channels + c) * g.h + i) * width + v0 * L;
                const V x0 = load<V>(row), x1 = count == 2 ? load<V>(row + L) : V{};
                const float *taps = weights + (c * 4 + a * 2) * kOutputBlock;
                for (int64_t o = 0; o < kOutputBlock; ++o) {
                    for (int64_t b = 0; b < 2; ++b) {
                        const V s = splat<V>(taps[b * kOutputBlock + o]);
                        acc[o][b][0] += s * x0;
                        acc[o][b][1] += s * x1;
                    }
                }
            }
            for (int64_t o = 0; o < kOutputBlock && o0 + o < g.outputs; ++o) {
                const V shift = splat<V>(bias ? bias[o0 + o] : 0.f);
                float *line = y + ((n * g.outputs + o0 + o) * 2 * g.h + 2 * i + a) * 2 * g.w;
                for (int64_t v = 0; v < count; ++v) {
                    const V even = acc[o][0][v] + shift, odd = acc[o][1][v] + shift;
                    const int64_t j = (v0 + v) * L, valid = 2 * std::min(L, g.w - j);
                    float values[2 * L];
                    store(values, interleaved<V, false>(even, odd));
                    store(values + L, interleaved<V, true>(even, odd));
                    std::copy(values, values + valid, line + 2 * j);
                }
            }
        }
    }
}

CT_KERNEL_SETS(forward_rows, forward_rows,
               (const Geometry &g, int64_t width, const float *x, const float *packed, const float *bias, float *y,
                int64_t first, int64_t last),
               (g, width, x, packed, bias, y, first, last))

/// A vector whose lanes 2 m and 2 m + 1 hold p[0] and p[1] (one 64-bit broadcast).
template <class V>
__attribute__((always_inline)) inline V splat_pair(const float *p) {
    typedef double Pairs __attribute__((vector_size(sizeof(V))));
    double pair;
    __builtin_memcpy(&pair, p, sizeof pair);
    Pairs pairs;
    for (int64_t k = 0; k < lanes_of<V> / 2; ++k) pairs[k] = pair;
    V v;
    __builtin_memcpy(&v, &pairs, sizeof v);
    return v;
}

/// Lane m of the result: lo[2 m] + lo[2 m + 1] for m < L / 2, then hi's pairs.
template <class V>
__attribute__((always_inline)) inline V pair_sums(V lo, V hi) {
    if constexpr (lanes_of<V> == 16) {
        return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
               __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    } else {
        return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14) +
               __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
    }
}

/// w [C, O, 2, 2] as weight pairs for dx: [ceil(C / K)][O][2 a][K][2 b], zero past C.
std::vector<float> pack_pairs(const at::Tensor &weight) {
    const int64_t channels = weight.size(0), outputs = weight.size(1);
    return rearranged(weight, round_up(channels, kInputBlock) * outputs * 4, [&](int64_t c, int64_t o, int64_t tap) {
        return ((((c / kInputBlock) * outputs + o) * 2 + tap / 2) * kInputBlock + c % kInputBlock) * 2 + tap % 2;
    });
}

/// dx[n, c0 .. c0 + K, i, columns of dy's vectors v0 .. v0 + 2 P] (v0 even): per channel c
/// and dy vector v, the sum over (o, a) of the pair (w[c, o, a, 0], w[c, o, a, 1]) times dy's
/// vector v of row 2 i + a, whose lane pairs then add to one dx column each. The last
/// `missing` vectors (0 or 1), past dy's row, count as zeros.
template <class V, int64_t P>
__attribute__((always_inline)) inline void input_grad_tile(const Geometry &g, const float *dy, const float *pairs,
                                                           float *dx, int64_t n, int64_t i, int64_t c0, int64_t v0,
                                                           int64_t missing) {
    constexpr int64_t L = lanes_of<V>, K = kInputBlock;
    const int64_t stride = 2 * g.width();
    V acc[K][2 * P] = {};
    for (int64_t o = 0; o < g.outputs; ++o) {
        for (int64_t a = 0; a < 2; ++a) {
            const float *row = dy + ((n * g.outputs + o) * 2 * g.h + 2 * i + a) * stride + v0 * L;
            V d[2 * P];
            for (int64_t v = 0; v < 2 * P; ++v) d[v] = v < 2 * P - missing ? load<V>(row + v * L) : V{};
            const float *w = pairs + (o * 2 + a) * K * 2;
            for (int64_t c = 0; c < K; ++c) {
                const V s = splat_pair<V>(w + 2 * c);
                for (int64_t v = 0; v < 2 * P; ++v) acc[c][v] += s * d[v];
            }
        }
    }
    for (int64_t c = 0; c < K && c0 + c < g.channels; ++c) {
        float *line = dx + ((n * g.channels + c0 + c) * g.h + i) * g.w;
        for (int64_t p = 0; p < P; ++p) {
            const V sums = pair_sums(acc[c][2 * p], acc[c][2 * p + 1]);
            const int64_t j = (v0 / 2 + p) * L, valid = std::min(L, g.w - j);
            if (valid == L) {
                store(line + j, sums);
            } else if (valid > 0) {
                float values[L];
                store(values, sums);
                std::copy(values, values + valid, line + j);
            }
        }
    }
}

/// dx rows i of K input channels from c0, for units [first, last) of (n, i, block of K):
/// consecutive units read the same 2 O rows of dy, which stay in cache; dy rows padded to
/// 2 `width`, pairs from `pack_pairs`.
template <class I>
__attribute__((always_inline)) inline void input_grad_rows(const Geometry &g, const float *dy, const float *pairs,
                                                           float *dx, int64_t first, int64_t last) {
    using V = typename I::Vector;
    constexpr int64_t L = I::kLanes, P = L == 16 ? 2 : 1;
    const int64_t blocks = round_up(g.channels, kInputBlock) / kInputBlock, vectors = 2 * g.width() / L;
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t block = unit % blocks, i = (unit / blocks) % g.h, n = unit / (blocks * g.h);
        const float *weights = pairs + block * g.outputs * 4 * kInputBlock;
        int64_t v0 = 0;
        for (; v0 + 2 * P <= vectors; v0 += 2 * P) {
            input_grad_tile<V, P>(g, dy, weights, dx, n, i, block * kInputBlock, v0, 0);
        }
        for (; v0 < vectors; v0 += 2) {
            input_grad_tile<V, 1>(g, dy, weights, dx, n, i, block * kInputBlock, v0, v0 + 1 == vectors ? 1 : 0);
        }
    }
}

/// x's row [.., width] with every value twice, into `twice` [2 width]: x[j] at 2 j and 2 j + 1.
__attribute__((always_inline)) inline void doubled(const float *x, int64_t width, float *twice) {
    for (int64_t j = 0; j < width; j += kLanes) {
        const Vec v = load(x + j);
        store(twice + 2 * j, Vec(__builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3)));
        store(twice + 2 * j + kLanes, Vec(__builtin_shufflevector(v, v, 4, 4, 5, 5, 6, 6, 7, 7)));
    }
}

/// Output channels and input channels of the weight gradient's register tile: G x K
/// accumulators, G vectors of dy and one of x.
template <class V>
constexpr int64_t kGradOutputs = lanes_of<V> == 16 ? 4 : 2;
constexpr int64_t kGradInputs = 4;

/// Adds to `sums` [C][O][2 a][2 b] (double) dw's terms from the input rows [first, last) of the
/// flattened (n, i): per (a, o, c), the vectors dy[o, 2 i + a, :] x twice[c, i, :] summed in a
/// vector over the rows, whose lanes of parity b sum dw[c, o, a, b] at the end; x rows padded to
/// `width`, dy's to 2 `width`, both with zeros.
template <class I>
__attribute__((always_inline)) inline void weight_grad_rows(const Geometry &g, const float *x, const float *dy,
                                                            double *sums, int64_t first, int64_t last) {
    using V = typename I::Vector;
    constexpr int64_t L = I::kLanes, G = kGradOutputs<V>, K = kGradInputs;
    const int64_t width = g.width(), stride = 2 * width, vectors = stride / L;
    const int64_t outputs = round_up(g.outputs, G), channels = round_up(g.channels, K);
    std::vector<float> twice(channels * stride, 0.f), zeros(stride, 0.f);
    std::vector<float> partial(2 * outputs * channels * L, 0.f);  // [a][o][c][lanes]
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t i = unit % g.h, n = unit / g.h;
        for (int64_t c = 0; c < g.channels; ++c) {
            doubled(x + ((n * g.channels + c) * g.h + i) * width, width, twice.data() + c * stride);
        }
        for (int64_t a = 0; a < 2; ++a) {
            for (int64_t o0 = 0; o0 < outputs; o0 += G) {
                const float *rows[G];
                for (int64_t o = 0; o < G; ++o) {
                    rows[o] = o0 + o < g.outputs ? dy + ((n * g.outputs + o0 + o) * 2 * g.h + 2 * i + a) * stride
                                                 : zeros.data();
                }
                for (int64_t c0 = 0; c0 < channels; c0 += K) {
                    V acc[G][K] = {};
                    const float *xs = twice.data() + c0 * stride;
                    for (int64_t v = 0; v < vectors; ++v) {
                        V d[G];
                        for (int64_t o = 0; o < G; ++o) d[o] = load<V>(rows[o] + v * L);
                        for (int64_t c = 0; c < K; ++c) {
                            const V t = load<V>(xs + c * stride + v * L);
                            for (int64_t o = 0; o < G; ++o) acc[o][c] += d[o] * t;
                        }
                    }
                    for (int64_t o = 0; o < G; ++o) {
                        for (int64_t c = 0; c < K; ++c) {
                            float *into = partial.data() + ((a * outputs + o0 + o) * channels + c0 + c) * L;
                            store(into, load<V>(into) + acc[o][c]);
                        }
                    }
                }
            }
        }
    }
    for (int64_t a = 0; a < 2; ++a) {
        for (int64_t o = 0; o < g.outputs; ++o) {
            for (int64_t c = 0; c < g.channels; ++c) {
                const float *lanes = partial.data() + ((a * outputs + o) * channels + c) * L;
                for (int64_t k = 0; k < L; ++k) sums[((c * g.outputs + o) * 2 + a) * 2 + k % 2] += lanes[k];
            }
        }
    }
}

CT_KERNEL_SETS(input_grad_rows, input_grad_rows,
               (const Geometry &g, const float *dy, const float *pairs, float *dx, int64_t first, int64_t last),
               (g, dy, pairs, dx, first, last))

CT_KERNEL_SETS(weight_grad_rows, weight_grad_rows,
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
        const ck_instruction_set target = instruction_set();
        const int64_t width = round_up(g.w, lanes(target));
        const at::Tensor xp = padded_rows(x, width);
        const std::vector<float> packed = pack(weight);
        at::Tensor y = at::empty({g.batch, g.outputs, 2 * g.h, 2 * g.w}, x.options());
        const float *xs = xp.data_ptr<float>(), *w = packed.data(), *shift = b.numel() > 0 ? b.data_ptr<float>() : nullptr;
        float *out = y.data_ptr<float>();
        const auto rows = forward_rows_for(target);
        const int64_t units = g.batch * (round_up(g.outputs, kOutputBlock) / kOutputBlock) * g.h * 2;
        ctorch::parallel_for(0, units, grain(g.channels * g.w * kOutputBlock * 2), [&](int64_t first, int64_t last) {
            rows(g, width, xs, w, shift, out, first, last);
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
        const ck_instruction_set target = instruction_set();
        at::Tensor dx, dweight, dbias;
        if (ctx->needs_input_grad(0)) {
            const std::vector<float> pairs = pack_pairs(weight);
            dx = at::empty_like(x);
            float *out = dx.data_ptr<float>();
            const auto rows = input_grad_rows_for(target);
            const int64_t units = g.batch * (round_up(g.channels, kInputBlock) / kInputBlock) * g.h;
            ctorch::parallel_for(0, units, grain(g.outputs * 4 * g.w * kInputBlock), [&](int64_t first, int64_t last) {
                rows(g, grad, pairs.data(), out, first, last);
            });
        }
        if (ctx->needs_input_grad(1)) {
            const at::Tensor xp = padded_rows(x, g.width());
            const float *xs = xp.data_ptr<float>();
            const auto rows = weight_grad_rows_for(target);
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
