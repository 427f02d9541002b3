// 1x1 convolutions (stride 1, no padding) to few output channels, the channel reductions of
// encoder-decoder networks (ESPNet's: 40 to 256 channels in, 4 to 25 out). Over the P = H W
// pixels of each image,
//
//     y[n, o, p] = b[o] + sum_c w[o, c] x[n, c, p],
//
// and the backward pass
//
//     dx[n, c, p] = sum_o w[o, c] dy[n, o, p],      dw[o, c] = sum_{n, p} dy[n, o, p] x[n, c, p],
//     db[o] = sum_{n, p} dy[n, o, p].
//
// Each is a matrix product with one small side; oneDNN computes the forward at about a third
// of the machine's matrix product and the backward at less (docs/BENCHMARKS.md, "SegTTT's
// kernels"). Here y and dx keep B output channels by up to 4 vectors of pixels in registers
// over every input channel, reading the planes in place (the last P mod lanes pixels of each
// plane by plain loops); dw keeps G output by H input channels, one vector each, over a piece
// of pixels, and the pieces' sums are added in double. Vectors in the instruction set
// `instruction_set()` names, as in conv3x3.cpp.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "ckernels.h"
#include "ctorch_internal.h"
#include "vector_kernels.h"

namespace {

using namespace ctorch::vec;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The sizes of one product: `inputs` planes of `pixels` floats to `outputs` planes, per image.
struct Geometry {
    int64_t batch, inputs, outputs, pixels;
};

/// m [outputs, inputs] (contiguous) as [ceil(outputs / B)][inputs][B], zero past `outputs`.
std::vector<float> pack_rows(const float *m, int64_t outputs, int64_t inputs, int64_t block) {
    std::vector<float> packed(round_up(outputs, block) * inputs, 0.f);
    for (int64_t o = 0; o < outputs; ++o) {
        for (int64_t c = 0; c < inputs; ++c) packed[((o / block) * inputs + c) * block + o % block] = m[o * inputs + c];
    }
    return packed;
}

/// Output channels [o0, o0 + B) x pixels [p0, p0 + lanes C) of image n: y = b + m x, in registers.
template <class V, int64_t B, int64_t C>
__attribute__((always_inline)) inline void product_tile(const Geometry &g, const float *x, const float *packed,
                                                        const float *bias, float *y, int64_t n, int64_t o0,
                                                        int64_t p0) {
    constexpr int64_t L = lanes_of<V>;
    V acc[B][C] = {};
    const float *column = x + n * g.inputs * g.pixels + p0;
    for (int64_t c = 0; c < g.inputs; ++c) {
        V xs[C];
        for (int64_t v = 0; v < C; ++v) xs[v] = load<V>(column + c * g.pixels + v * L);
        for (int64_t o = 0; o < B; ++o) {
            const V s = splat<V>(packed[c * B + o]);
            for (int64_t v = 0; v < C; ++v) acc[o][v] += s * xs[v];
        }
    }
    for (int64_t o = 0; o < B && o0 + o < g.outputs; ++o) {
        const V shift = splat<V>(bias ? bias[o0 + o] : 0.f);
        float *line = y + (n * g.outputs + o0 + o) * g.pixels + p0;
        for (int64_t v = 0; v < C; ++v) store(line + v * L, acc[o][v] + shift);
    }
}

/// The tile of the last `remaining` < C whole vectors of pixels, by the widest tile that fits.
template <class V, int64_t B, int64_t C>
__attribute__((always_inline)) inline void last_tile(int64_t remaining, const Geometry &g, const float *x,
                                                     const float *packed, const float *bias, float *y, int64_t n,
                                                     int64_t o0, int64_t p0) {
    if constexpr (C > 1) {
        if (remaining == C - 1) return product_tile<V, B, C - 1>(g, x, packed, bias, y, n, o0, p0);
        last_tile<V, B, C - 1>(remaining, g, x, packed, bias, y, n, o0, p0);
    }
}

/// Units [first, last) of the flattened (n, span of `span` pixels, a multiple of the lanes):
/// y = b + m x over the span for every block of B outputs in turn, so that the span's planes of
/// x stay in cache; whole vectors in tiles, the last P mod lanes pixels one at a time; bias may
/// be null.
template <class I, int64_t B>
__attribute__((always_inline)) inline void product_units(const Geometry &g, const float *x, const float *packed,
                                                         const float *bias, float *y, int64_t span, int64_t first,
                                                         int64_t last) {
    using V = typename I::Vector;
    constexpr int64_t C = I::template kColumnVectors<B>, L = I::kLanes;
    const int64_t spans = (g.pixels + span - 1) / span;
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t n = unit / spans, p0 = (unit % spans) * span, p1 = std::min(g.pixels, p0 + span);
        const int64_t vectors = (p1 - p0) / L, whole = p0 + vectors * L;
        for (int64_t o0 = 0; o0 < g.outputs; o0 += B) {
            const float *weights = packed + (o0 / B) * g.inputs * B;
            int64_t v0 = 0;
            for (; vectors - v0 >= C; v0 += C) product_tile<V, B, C>(g, x, weights, bias, y, n, o0, p0 + v0 * L);
            if (v0 < vectors) last_tile<V, B, C>(vectors - v0, g, x, weights, bias, y, n, o0, p0 + v0 * L);
            for (int64_t p = whole; p < p1; ++p) {
                for (int64_t o = o0; o < std::min(o0 + B, g.outputs); ++o) {
                    float sum = 0.f;
                    for (int64_t c = 0; c < g.inputs; ++c) {
                        sum += weights[c * B + o - o0] * x[(n * g.inputs + c) * g.pixels + p];
                    }
                    y[(n * g.outputs + o) * g.pixels + p] = sum + (bias ? bias[o] : 0.f);
                }
            }
        }
    }
}

/// Adds to `sums` [outputs][inputs] (double) the terms dy[n, o, p] x[n, c, p] of the units
/// [first, last) of the flattened (n, piece of `piece` pixels): per block of G outputs and H
/// inputs, G H vectors of sums in registers over the piece, which stays in cache. The rows of
/// a partial block repeat the last plane; their sums are not kept.
template <class V, int64_t G, int64_t H>
__attribute__((always_inline)) inline void outer_pieces(const Geometry &g, const float *dy, const float *x,
                                                        double *sums, int64_t piece, int64_t first, int64_t last) {
    constexpr int64_t L = lanes_of<V>;
    const int64_t pieces = (g.pixels + piece - 1) / piece;
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t n = unit / pieces, p0 = (unit % pieces) * piece, p1 = std::min(g.pixels, p0 + piece);
        const int64_t whole = p0 + (p1 - p0) / L * L;
        for (int64_t o0 = 0; o0 < g.outputs; o0 += G) {
            const float *d[G];
            for (int64_t o = 0; o < G; ++o) d[o] = dy + (n * g.outputs + std::min(o0 + o, g.outputs - 1)) * g.pixels;
            for (int64_t c0 = 0; c0 < g.inputs; c0 += H) {
                const float *s[H];
                for (int64_t c = 0; c < H; ++c) s[c] = x + (n * g.inputs + std::min(c0 + c, g.inputs - 1)) * g.pixels;
                V acc[G][H] = {};
                for (int64_t p = p0; p < whole; p += L) {
                    V ds[G];
                    for (int64_t o = 0; o < G; ++o) ds[o] = load<V>(d[o] + p);
                    for (int64_t c = 0; c < H; ++c) {
                        const V xs = load<V>(s[c] + p);
                        for (int64_t o = 0; o < G; ++o) acc[o][c] += ds[o] * xs;
                    }
                }
                for (int64_t o = 0; o < G && o0 + o < g.outputs; ++o) {
                    for (int64_t c = 0; c < H && c0 + c < g.inputs; ++c) {
                        double sum = lane_sum(acc[o][c]);
                        for (int64_t p = whole; p < p1; ++p) sum += double(d[o][p]) * s[c][p];
                        sums[(o0 + o) * g.inputs + c0 + c] += sum;
                    }
                }
            }
        }
    }
}

using Units = void (*)(const Geometry &, const float *, const float *, const float *, float *, int64_t, int64_t,
                       int64_t);
using Pieces = void (*)(const Geometry &, const float *, const float *, double *, int64_t, int64_t, int64_t);

template <int64_t B>
void product_units_generic(const Geometry &g, const float *x, const float *packed, const float *bias, float *y,
                           int64_t span, int64_t first, int64_t last) {
    product_units<Baseline, B>(g, x, packed, bias, y, span, first, last);
}
template <int64_t B>
CT_AVX2_FMA void product_units_avx2(const Geometry &g, const float *x, const float *packed, const float *bias,
                                    float *y, int64_t span, int64_t first, int64_t last) {
    product_units<Avx2, B>(g, x, packed, bias, y, span, first, last);
}
template <int64_t B>
CT_AVX512 void product_units_avx512(const Geometry &g, const float *x, const float *packed, const float *bias,
                                    float *y, int64_t span, int64_t first, int64_t last) {
    product_units<Avx512, B>(g, x, packed, bias, y, span, first, last);
}

/// dw's blocks: 3 x 3 vectors of sums in 16 registers, 4 x 5 in AVX-512's 32.
void outer_pieces_generic(const Geometry &g, const float *dy, const float *x, double *sums, int64_t piece,
                          int64_t first, int64_t last) {
    outer_pieces<Vec, 3, 3>(g, dy, x, sums, piece, first, last);
}
CT_AVX2_FMA void outer_pieces_avx2(const Geometry &g, const float *dy, const float *x, double *sums, int64_t piece,
                                   int64_t first, int64_t last) {
    outer_pieces<Vec, 3, 3>(g, dy, x, sums, piece, first, last);
}
CT_AVX512 void outer_pieces_avx512(const Geometry &g, const float *dy, const float *x, double *sums, int64_t piece,
                                   int64_t first, int64_t last) {
    outer_pieces<Vec16, 4, 5>(g, dy, x, sums, piece, first, last);
}

template <int64_t B>
Units units_for(ck_instruction_set set) {
    switch (set) {
        case CK_AVX512: return product_units_avx512<B>;
        case CK_AVX2: return product_units_avx2<B>;
        default: return product_units_generic<B>;
    }
}

/// y [N, outputs, P] = b + m x for x [N, inputs, P] (contiguous) and m [outputs, inputs]
/// (contiguous); bias may be null.
at::Tensor product(ck_instruction_set set, const Geometry &g, const at::Tensor &x, const float *m, const float *bias,
                   at::IntArrayRef sizes) {
    at::Tensor y = at::empty(sizes, x.options());
    const int64_t block = best_block(g.outputs, {5, 4, 3});
    const std::vector<float> packed = pack_rows(m, g.outputs, g.inputs, block);
    const Units units = block == 5 ? units_for<5>(set) : block == 4 ? units_for<4>(set) : units_for<3>(set);
    const float *xs = x.data_ptr<float>(), *w = packed.data();
    float *out = y.data_ptr<float>();
    // Spans whose planes of x take about 64 KiB, whole vectors of 16 pixels.
    const int64_t span = round_up(std::max<int64_t>(64, 16384 / g.inputs), 16);
    ctorch::parallel_for(0, g.batch * ((g.pixels + span - 1) / span), 1,
                         [&](int64_t first, int64_t last) { units(g, xs, w, bias, out, span, first, last); });
    return y;
}

struct PointwiseConvFunction : public torch::autograd::Function<PointwiseConvFunction> {
    /// `bias` is [O], or empty for none (libtorch 1.13's custom functions take no undefined inputs).
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                              const at::Tensor &bias) {
        const at::Tensor x = input.contiguous(), w = weight.contiguous(), b = bias.contiguous();
        const Geometry g{x.size(0), x.size(1), w.size(0), x.size(2) * x.size(3)};
        ctx->save_for_backward({x, w});
        ctx->saved_data["bias"] = b.numel() > 0;
        return product(instruction_set(), g, x, w.data_ptr<float>(), b.numel() > 0 ? b.data_ptr<float>() : nullptr,
                       {g.batch, g.outputs, x.size(2), x.size(3)});
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        TORCH_CHECK(!at::GradMode::is_enabled(),
                    "SegTTT's 1x1 convolution has first derivatives only; for higher ones use libtorch's "
                    "convolution (Torch.conv2d)");
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &w = saved[1];
        const at::Tensor dy = grads[0].contiguous();
        const ck_instruction_set set = instruction_set();
        const Geometry g{x.size(0), x.size(1), w.size(0), x.size(2) * x.size(3)};
        at::Tensor dx, dweight, dbias;
        if (ctx->needs_input_grad(0)) {
            // dx is the product of w's transpose with dy: inputs and outputs swap.
            const at::Tensor wt = w.reshape({g.outputs, g.inputs}).t().contiguous();
            dx = product(set, Geometry{g.batch, g.outputs, g.inputs, g.pixels}, dy, wt.data_ptr<float>(), nullptr,
                         x.sizes());
        }
        if (ctx->needs_input_grad(1)) {
            // Pieces of pixels whose planes of dy and x take about 256 KiB, whole vectors of 16.
            const int64_t piece = round_up(std::max<int64_t>(64, 65536 / (g.inputs + g.outputs)), 16);
            const auto pieces = set == CK_AVX512 ? outer_pieces_avx512 : set == CK_AVX2 ? outer_pieces_avx2
                                                                                         : outer_pieces_generic;
            const float *dys = dy.data_ptr<float>(), *xs = x.data_ptr<float>();
            const std::vector<double> sums = ctorch::parallel_sum(
                0, g.batch * ((g.pixels + piece - 1) / piece), 1, g.outputs * g.inputs,
                [&](int64_t first, int64_t last, double *into) { pieces(g, dys, xs, into, piece, first, last); });
            dweight = ctorch::from_sums(sums, w.sizes(), w);
        }
        if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) dbias = dy.sum({0, 2, 3});
        return {dx, dweight, dbias};
    }
};

}  // namespace

extern "C" {

ct_status ck_pointwise_conv(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor, &w = weight->tensor;
        const at::Tensor b = bias ? bias->tensor : at::Tensor();
        TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 1 && w.size(3) == 1,
                    "the 1x1 convolution needs input [N, C, H, W] and weight [O, C, 1, 1], got ", x.sizes(), " and ",
                    w.sizes());
        ctorch::check_kernel_operands("the 1x1 convolution", {&x, &w, &b}, b, w.size(0));
        RECORD_FUNCTION("segttt::pointwise_conv", std::vector<c10::IValue>{});
        *out = ctorch::wrap(PointwiseConvFunction::apply(x, w, b.defined() ? b : at::empty({0}, w.options())));
    })
}

}  // extern "C"
