// 3x3 convolutions with stride 1 and padding equal to their dilation (d_h, d_w), so that the
// output keeps the input's size, for few channels (ESPNet's dilated branches: 4 to 28):
//
//     y[n, o, i, j] = b[o] + sum_c sum_{a, e in 0..2} w[o, c, a, e] x[n, c, i + (a - 1) d_h, j + (e - 1) d_w]
//
// with x = 0 outside the image, and its backward pass:
//
//     dx[n, c, i, j] = sum_o sum_{a, e} w[o, c, 2 - a, 2 - e] dy[n, o, i + (a - 1) d_h, j + (e - 1) d_w]
//     dw[o, c, a, e] = sum_{n, i, j} dy[n, o, i, j] x[n, c, i + (a - 1) d_h, j + (e - 1) d_w]
//     db[o]          = sum_{n, i, j} dy[n, o, i, j]
//
// dx is the same convolution of dy, with w's two channel axes swapped and its taps flipped.
// The same tiles also compute 3x3 convolutions with stride 2 and padding 1 (the downsampling
// layers: y[n, o, i, j] sums x[n, c, 2 i + a - 1, 2 j + e - 1]) and their weight gradient, from
// input rows whose even and odd columns are laid apart (`split_rows`), so that every tap reads
// consecutive floats; their dx, a transposed convolution, is libtorch's.
// libtorch sends these convolutions to oneDNN, whose direct kernels want multiples of 8
// channels and whose im2col path (`gemm:jit`) builds a 9 C x H W column matrix for a product
// with only O <= 28 rows, far below the machine's matrix product (docs/BENCHMARKS.md,
// "SegTTT's kernels", gives the rates). Here the input's rows are copied once with d_w
// zero columns on either side, and every output row is accumulated in registers, 3 to 5
// output channels by up to 4 vectors of columns at a time, over the 9 C taps that reach it;
// taps whose source row lies outside the image are skipped. The weight gradient keeps G output
// channels by the 3 column taps of one (c, a) in registers over the rows of one piece of the
// image, and the pieces' sums are added in double. Vectors through the compiler's vector
// extension, in the instruction set `instruction_set()` names: 16 floats in AVX-512's 32
// registers (G of 4 to 6), or 8 floats in AVX2's 16 (with FMA) or in pairs of SSE's (G = 3).
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

/// The sizes of one convolution: `channels` planes of h x w in, `outputs` planes of out_h x
/// out_w out, with stride `step` (1, or 2 with padding and dilation 1). The padded input holds
/// `planes` >= `channels` planes per image, of rows of `stride()` floats, zeros where no column
/// of the image is: with step 1 the image's column q at `dw + q`; with step 2 the even columns
/// 2 k at k and the odd ones 2 k - 1 at `vectors() lanes + k`, so that every tap e reads the
/// source columns of consecutive output columns j from consecutive floats, at `offset(e) + j`.
/// Output rows hold whole vectors of `lanes` floats.
struct Geometry {
    int64_t batch, channels, planes, outputs, h, w, dh, dw, lanes, step = 1;
    int64_t out_h() const { return step == 1 ? h : (h + 1) / 2; }
    int64_t out_w() const { return step == 1 ? w : (w + 1) / 2; }
    int64_t vectors() const { return round_up(out_w(), lanes) / lanes; }
    int64_t stride() const { return step == 1 ? vectors() * lanes + 2 * dw : 2 * vectors() * lanes + lanes; }
    /// Where in a padded row tap e reads output column 0's source column.
    int64_t offset(int64_t e) const { return step == 1 ? e * dw : e == 1 ? 0 : vectors() * lanes + e / 2; }
    /// The input row that tap a reads for output row i (outside the image: zeros).
    int64_t source_row(int64_t i, int64_t a) const { return step * i + (a - 1) * dh; }
    /// The floats of dy's padded rows and dy's column 0 in them: laid out as the input with
    /// step 1 (dx is the convolution of dy), whole vectors alone with step 2.
    int64_t grad_stride() const { return step == 1 ? stride() : vectors() * lanes; }
    int64_t grad_lead() const { return step == 1 ? dw : 0; }
    /// Blocks of `block` output channels that cover `outputs`.
    int64_t blocks(int64_t block) const { return round_up(outputs, block) / block; }
};

/// The geometry of x [N, C, H, W] convolved to `outputs` channels in vectors of `lanes`. A
/// dilation beyond the image's side is cut to the side (at least 1): the taps it moves reach
/// only zeros either way, and the padded rows stay at most 3 W + 2 lanes floats.
Geometry geometry_of(at::IntArrayRef x, int64_t outputs, int64_t dh, int64_t dw, int64_t lanes) {
    const int64_t h = x[2], w = x[3];
    return {x[0],
            x[1],
            x[1],
            outputs,
            h,
            w,
            std::max<int64_t>(1, std::min(dh, h)),
            std::max<int64_t>(1, std::min(dw, w)),
            lanes};
}

/// The geometry of x [N, C, H, W] convolved to `outputs` channels with stride 2, padding 1:
/// output ceil(H / 2) x ceil(W / 2).
Geometry strided_geometry_of(at::IntArrayRef x, int64_t outputs, int64_t lanes) {
    return {x[0], x[1], x[1], outputs, x[2], x[3], 1, 1, lanes, 2};
}

/// The output channels computed together by the forward tiles: 5, 4 or 3.
int64_t output_block(int64_t outputs) { return best_block(outputs, {5, 4, 3}); }

/// The output channels whose weight gradients are accumulated together, for the 3 column taps
/// of one (c, a): G x 3 accumulators, G vectors of dy and one of x in registers, so 3 on AVX2
/// (4 would spill) and 4 to 6 on AVX-512.
int64_t gradient_block(ck_instruction_set target, int64_t outputs) {
    return target == CK_AVX512 ? best_block(outputs, {6, 5, 4}) : 3;
}

/// The first and one-past-last output rows i whose source row step i + (a - 1) dh is inside
/// the image.
inline std::pair<int64_t, int64_t> rows_reached(const Geometry &g, int64_t a) {
    const int64_t shift = (a - 1) * g.dh;
    const int64_t first = shift >= 0 ? 0 : (-shift + g.step - 1) / g.step;
    return {first, std::min(g.out_h(), (g.h - shift + g.step - 1) / g.step)};
}

/// x [N, C, H, W] (contiguous) as [N, planes, H, stride] rows: `lead` zeros, the W values,
/// zeros to the end; planes c >= C all zero.
at::Tensor pad_rows(const at::Tensor &x, int64_t planes, int64_t lead, int64_t stride) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    at::Tensor padded = at::empty({n, planes, h, stride}, x.options());
    const float *from = x.data_ptr<float>();
    float *to = padded.data_ptr<float>();
    const int64_t rows = n * planes * h;
    ctorch::parallel_for(0, rows, std::max<int64_t>(1, 16384 / stride), [&](int64_t first, int64_t last) {
        for (int64_t row = first; row < last; ++row) {
            const int64_t plane = (row / h) % planes, image = row / (h * planes), i = row % h;
            float *line = to + row * stride;
            if (plane >= c) {
                std::fill(line, line + stride, 0.f);
                continue;
            }
            const float *source = from + ((image * c + plane) * h + i) * w;
            std::fill(line, line + lead, 0.f);
            std::copy(source, source + w, line + lead);
            std::fill(line + lead + w, line + stride, 0.f);
        }
    });
    return padded;
}

/// x [N, C, H, W] (contiguous) as rows of g.stride() floats for stride 2 (see `Geometry`):
/// x[.., 2 k] at k, x[.., 2 k - 1] at g.vectors() lanes + k, zeros elsewhere.
at::Tensor split_rows(const at::Tensor &x, const Geometry &g) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), stride = g.stride();
    const int64_t odd = g.vectors() * g.lanes, pairs = w / 2, evens = (w + 1) / 2;
    at::Tensor split = at::empty({n, c, h, stride}, x.options());
    const float *from = x.data_ptr<float>();
    float *to = split.data_ptr<float>();
    ctorch::parallel_for(0, n * c * h, std::max<int64_t>(1, 16384 / stride), [&](int64_t first, int64_t last) {
        for (int64_t row = first; row < last; ++row) {
            const float *__restrict source = from + row * w;
            float *__restrict even = to + row * stride, *__restrict shifted = even + odd + 1;
            for (int64_t k = 0; k < pairs; ++k) {
                even[k] = source[2 * k];
                shifted[k] = source[2 * k + 1];
            }
            if (evens > pairs) even[pairs] = source[w - 1];
            std::fill(even + evens, even + odd + 1, 0.f);  // past the even columns, and column -1
            std::fill(shifted + pairs, even + stride, 0.f);
        }
    });
    return split;
}

/// w [O, C, 3, 3] as [ceil(O / B)][C][3][3][B], zero past O; with `transpose` w [C, O, 3, 3]
/// is read as its transpose with flipped taps, w'[o, c, a, e] = w[c, o, 2 - a, 2 - e].
std::vector<float> pack_weight(const at::Tensor &weight, bool transpose, int64_t block) {
    const at::Tensor w = weight.contiguous();
    const int64_t outputs = transpose ? w.size(1) : w.size(0), channels = transpose ? w.size(0) : w.size(1);
    const float *p = w.data_ptr<float>();
    std::vector<float> packed(round_up(outputs, block) * channels * 9, 0.f);
    for (int64_t o = 0; o < outputs; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
            for (int64_t tap = 0; tap < 9; ++tap) {
                const float value = transpose ? p[(c * outputs + o) * 9 + 8 - tap] : p[(o * channels + c) * 9 + tap];
                packed[(((o / block) * channels + c) * 9 + tap) * block + o % block] = value;
            }
        }
    }
    return packed;
}

/// Output channels [o0, o0 + B) x columns [j0, j0 + lanes C) of output row i of image n:
/// y[o, i, j] = b[o] + sum_{c, a, e} w[o, c, a, e] x[c, s i + (a - 1) dh, s j + (e - 1) dw] (step s),
/// accumulated in registers (C a constant, so that the accumulators stay in them), then stored.
template <class V, int64_t B, int64_t C>
__attribute__((always_inline)) inline void output_tile(const Geometry &g, const float *image, const float *packed,
                                                       const float *bias, float *out, int64_t n, int64_t o0,
                                                       int64_t i, int64_t j0) {
    constexpr int64_t L = lanes_of<V>;
    const int64_t stride = g.stride();
    V acc[B][C] = {};
    for (int64_t a = 0; a < 3; ++a) {
        const int64_t r = g.source_row(i, a);
        if (r < 0 || r >= g.h) continue;
        for (int64_t c = 0; c < g.channels; ++c) {
            const float *row = image + (c * g.h + r) * stride + j0;
            const float *taps = packed + (c * 9 + a * 3) * B;
            for (int64_t e = 0; e < 3; ++e) {
                V x[C];
                for (int64_t v = 0; v < C; ++v) x[v] = load<V>(row + g.offset(e) + v * L);
                for (int64_t o = 0; o < B; ++o) {
                    const V s = splat<V>(taps[e * B + o]);
                    for (int64_t v = 0; v < C; ++v) acc[o][v] += s * x[v];
                }
            }
        }
    }
    for (int64_t o = 0; o < B && o0 + o < g.outputs; ++o) {
        const float shift = bias ? bias[o0 + o] : 0.f;
        float *line = out + ((n * g.outputs + o0 + o) * g.out_h() + i) * g.out_w();
        for (int64_t v = 0; v < C; ++v) {
            const int64_t j = j0 + v * L, valid = std::min(L, g.out_w() - j);
            if (valid == L) {
                store(line + j, acc[o][v] + splat<V>(shift));
                continue;
            }
            float values[L];
            store(values, acc[o][v]);
            for (int64_t k = 0; k < valid; ++k) line[j + k] = values[k] + shift;
        }
    }
}

/// The output tile of the last `remaining` < C vectors of a row, by the widest tile that fits.
template <class V, int64_t B, int64_t C>
__attribute__((always_inline)) inline void last_tile(int64_t remaining, const Geometry &g, const float *image,
                                                     const float *packed, const float *bias, float *out, int64_t n,
                                                     int64_t o0, int64_t i, int64_t j0) {
    if constexpr (C > 1) {
        if (remaining == C - 1) return output_tile<V, B, C - 1>(g, image, packed, bias, out, n, o0, i, j0);
        last_tile<V, B, C - 1>(remaining, g, image, packed, bias, out, n, o0, i, j0);
    }
}

/// Output rows [first, last) of the flattened (n, i, block of B outputs): y = b + w * x, from
/// the padded input and the weights packed in blocks of B; bias may be null. Consecutive
/// units read the same input rows, which stay in cache.
template <class I, int64_t B>
__attribute__((always_inline)) inline void correlate_rows(const Geometry &g, const float *input, const float *packed,
                                                          const float *bias, float *out, int64_t first, int64_t last) {
    using V = typename I::Vector;
    constexpr int64_t C = I::template kColumnVectors<B>;
    const int64_t stride = g.stride(), blocks = g.blocks(B);
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t block = unit % blocks, i = (unit / blocks) % g.out_h(), n = unit / (blocks * g.out_h());
        const float *image = input + n * g.planes * g.h * stride;
        const float *weights = packed + block * g.channels * 9 * B;
        int64_t v0 = 0;
        for (; g.vectors() - v0 >= C; v0 += C) {
            output_tile<V, B, C>(g, image, weights, bias, out, n, block * B, i, v0 * I::kLanes);
        }
        if (v0 < g.vectors()) {
            last_tile<V, B, C>(g.vectors() - v0, g, image, weights, bias, out, n, block * B, i, v0 * I::kLanes);
        }
    }
}

/// Adds to `sums` [planes][C][9] (double) dw[o, c, a, e]'s terms of the pieces [first, last)
/// of the flattened (n, piece of `rows` output rows), from dy padded like the input (planes
/// rounded up to G, zero past O and past W) and x. A piece's rows of dy stay in cache while
/// every (c, a, block of G outputs) passes over them, and the rows of x that one (c, a) reads
/// while every block passes over them.
template <class V, int64_t G>
__attribute__((always_inline)) inline void weight_grad_pieces(const Geometry &g, const float *grad, const float *input,
                                                              double *sums, int64_t rows, int64_t first,
                                                              int64_t last) {
    constexpr int64_t L = lanes_of<V>;
    const int64_t stride = g.stride(), blocks = g.blocks(G), planes = blocks * G;
    const int64_t grad_stride = g.grad_stride(), grad_plane = g.out_h() * grad_stride;
    const int64_t pieces = (g.out_h() + rows - 1) / rows;
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t n = unit / pieces, r0 = (unit % pieces) * rows, r1 = std::min(g.out_h(), r0 + rows);
        for (int64_t c = 0; c < g.channels; ++c) {
            for (int64_t a = 0; a < 3; ++a) {
                const auto [reached, beyond] = rows_reached(g, a);
                const int64_t begin = std::max(reached, r0), end = std::min(beyond, r1);
                if (begin >= end) continue;
                for (int64_t block = 0; block < blocks; ++block) {
                    V acc[G][3] = {};
                    for (int64_t i = begin; i < end; ++i) {
                        const float *x = input + ((n * g.channels + c) * g.h + g.source_row(i, a)) * stride;
                        const float *dy = grad + (n * planes + block * G) * grad_plane + i * grad_stride + g.grad_lead();
                        for (int64_t v = 0; v < g.vectors(); ++v) {
                            V d[G];
                            for (int64_t o = 0; o < G; ++o) d[o] = load<V>(dy + o * grad_plane + v * L);
                            for (int64_t e = 0; e < 3; ++e) {
                                const V xs = load<V>(x + g.offset(e) + v * L);
                                for (int64_t o = 0; o < G; ++o) acc[o][e] += d[o] * xs;
                            }
                        }
                    }
                    for (int64_t o = 0; o < G; ++o) {
                        for (int64_t e = 0; e < 3; ++e) {
                            sums[((block * G + o) * g.channels + c) * 9 + a * 3 + e] += lane_sum(acc[o][e]);
                        }
                    }
                }
            }
        }
    }
}

using Rows = void (*)(const Geometry &, const float *, const float *, const float *, float *, int64_t, int64_t);
using Pieces = void (*)(const Geometry &, const float *, const float *, double *, int64_t, int64_t, int64_t);

template <int64_t B>
void correlate_rows_generic(const Geometry &g, const float *input, const float *packed, const float *bias, float *out,
                            int64_t first, int64_t last) {
    correlate_rows<Baseline, B>(g, input, packed, bias, out, first, last);
}
template <int64_t B>
CT_AVX2_FMA void correlate_rows_avx2(const Geometry &g, const float *input, const float *packed, const float *bias,
                                     float *out, int64_t first, int64_t last) {
    correlate_rows<Avx2, B>(g, input, packed, bias, out, first, last);
}
template <int64_t B>
CT_AVX512 void correlate_rows_avx512(const Geometry &g, const float *input, const float *packed, const float *bias,
                                     float *out, int64_t first, int64_t last) {
    correlate_rows<Avx512, B>(g, input, packed, bias, out, first, last);
}

template <int64_t G>
void weight_grad_pieces_generic(const Geometry &g, const float *grad, const float *input, double *sums, int64_t rows,
                                int64_t first, int64_t last) {
    weight_grad_pieces<Vec, G>(g, grad, input, sums, rows, first, last);
}
template <int64_t G>
CT_AVX2_FMA void weight_grad_pieces_avx2(const Geometry &g, const float *grad, const float *input, double *sums,
                                         int64_t rows, int64_t first, int64_t last) {
    weight_grad_pieces<Vec, G>(g, grad, input, sums, rows, first, last);
}
template <int64_t G>
CT_AVX512 void weight_grad_pieces_avx512(const Geometry &g, const float *grad, const float *input, double *sums,
                                         int64_t rows, int64_t first, int64_t last) {
    weight_grad_pieces<Vec16, G>(g, grad, input, sums, rows, first, last);
}

/// The forward rows' loop for `target` and blocks of `block` outputs.
template <int64_t B>
Rows rows_for(ck_instruction_set target) {
    switch (target) {
        case CK_AVX512: return correlate_rows_avx512<B>;
        case CK_AVX2: return correlate_rows_avx2<B>;
        default: return correlate_rows_generic<B>;
    }
}

/// The weight gradient's loop for `target` and blocks of `block` outputs (`gradient_block`).
Pieces pieces_for(ck_instruction_set target, int64_t block) {
    if (target == CK_AVX512) {
        return block == 6 ? weight_grad_pieces_avx512<6>
               : block == 5 ? weight_grad_pieces_avx512<5>
                            : weight_grad_pieces_avx512<4>;
    }
    return target == CK_AVX2 ? weight_grad_pieces_avx2<3> : weight_grad_pieces_generic<3>;
}

/// y [N, O, H, W] = b + w * x for x padded by `pad_rows`; w [O, C, 3, 3], or with `transpose`
/// w [C, O, 3, 3] read as w' (see `pack_weight`).
at::Tensor correlate(ck_instruction_set target, const Geometry &g, const at::Tensor &padded, const at::Tensor &weight,
                     bool transpose, const float *bias) {
    at::Tensor out = at::empty({g.batch, g.outputs, g.out_h(), g.out_w()}, padded.options());
    const int64_t block = output_block(g.outputs);
    const std::vector<float> packed = pack_weight(weight, transpose, block);
    const float *input = padded.data_ptr<float>(), *w = packed.data();
    float *y = out.data_ptr<float>();
    const Rows rows = block == 5 ? rows_for<5>(target) : block == 4 ? rows_for<4>(target) : rows_for<3>(target);
    const int64_t units = g.batch * g.blocks(block) * g.out_h();
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, g.channels * g.out_w()));
    ctorch::parallel_for(0, units, grain, [&](int64_t first, int64_t last) { rows(g, input, w, bias, y, first, last); });
    return out;
}

/// The geometry of x (of sizes `x`) convolved by `weight` with stride `step`: 1 with dilation
/// (dh, dw), or 2.
Geometry geometry_of(at::IntArrayRef x, const at::Tensor &weight, int64_t step, int64_t dh, int64_t dw,
                     ck_instruction_set target) {
    return step == 1 ? geometry_of(x, weight.size(0), dh, dw, lanes(target))
                     : strided_geometry_of(x, weight.size(0), lanes(target));
}

/// x in the padded rows that g's convolution reads.
at::Tensor laid_out(const at::Tensor &x, const Geometry &g) {
    return g.step == 1 ? pad_rows(x, g.channels, g.dw, g.stride()) : split_rows(x, g);
}

struct Conv3x3Function : public torch::autograd::Function<Conv3x3Function> {
    /// `bias` is [O], or empty for none (libtorch 1.13's custom functions take no undefined inputs);
    /// `step` 1 with padding = dilation (dh, dw), or 2 with padding and dilation 1.
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                              const at::Tensor &bias, int64_t step, int64_t dh, int64_t dw) {
        const at::Tensor x = input.contiguous(), b = bias.contiguous();
        const ck_instruction_set target = instruction_set();
        const Geometry g = geometry_of(x.sizes(), weight, step, dh, dw, target);
        const at::Tensor rows = laid_out(x, g);
        // With stride 1 the weight gradient reads x in the same padded rows, so those are kept
        // rather than x (laid out for this call's instruction set, which the backward reuses).
        ctx->save_for_backward({step == 1 ? rows : x, weight});
        ctx->saved_data["sizes"] = x.sizes().vec();
        ctx->saved_data["target"] = static_cast<int64_t>(target);
        ctx->saved_data["step"] = step;
        ctx->saved_data["dh"] = dh;
        ctx->saved_data["dw"] = dw;
        ctx->saved_data["bias"] = b.numel() > 0;
        return correlate(target, g, rows, weight, /*transpose=*/false, b.numel() > 0 ? b.data_ptr<float>() : nullptr);
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        TORCH_CHECK(!at::GradMode::is_enabled(),
                    "SegTTT's 3x3 convolution has first derivatives only; for higher ones use "
                    "libtorch's convolution (Torch.conv2d)");
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &kept = saved[0], &weight = saved[1];  // x's padded rows with stride 1, x with 2
        const int64_t step = ctx->saved_data["step"].toInt();
        const int64_t dh = ctx->saved_data["dh"].toInt(), dw = ctx->saved_data["dw"].toInt();
        const at::Tensor dy = grads[0].contiguous();
        const auto target = static_cast<ck_instruction_set>(ctx->saved_data["target"].toInt());
        const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
        const Geometry g = geometry_of(sizes, weight, step, dh, dw, target);
        const int64_t gradient = gradient_block(target, g.outputs);
        const int64_t planes = g.blocks(gradient) * gradient;  // dy's planes, zero past O
        // dy padded, for dx with stride 1 and for dw; libtorch's dx with stride 2 reads dy as it is.
        const bool padded = (ctx->needs_input_grad(0) && step == 1) || ctx->needs_input_grad(1);
        const at::Tensor dy_padded = padded ? pad_rows(dy, planes, g.grad_lead(), g.grad_stride()) : at::Tensor();
        at::Tensor dx, dweight, dbias;
        if (ctx->needs_input_grad(0) && step == 1) {
            // dx is the convolution of dy's O planes (of the padded ones) by w'.
            const Geometry back{g.batch, g.outputs, planes, g.channels, g.h, g.w, g.dh, g.dw, g.lanes};
            dx = correlate(target, back, dy_padded, weight, /*transpose=*/true, nullptr);
        } else if (ctx->needs_input_grad(0)) {
            // With stride 2, dx (a transposed convolution of dy) is libtorch's.
            dx = std::get<0>(at::convolution_backward(dy, kept, weight, c10::nullopt, {2, 2}, {1, 1}, {1, 1}, false,
                                                      {0, 0}, 1, {true, false, false}));
        }
        if (ctx->needs_input_grad(1)) {
            const at::Tensor x_padded = step == 1 ? kept : laid_out(kept, g);
            const float *dyp = dy_padded.data_ptr<float>(), *xp = x_padded.data_ptr<float>();
            // Pieces of rows whose padded rows of dy and x take about 256 KiB, but at least 16
            // rows, so that the lane sums at the end of each pass stay a small share of it.
            const int64_t rows = std::max<int64_t>(16, 65536 / ((planes + g.channels) * g.stride()));
            const Pieces pieces = pieces_for(target, gradient);
            const std::vector<double> sums = ctorch::parallel_sum(
                0, g.batch * ((g.out_h() + rows - 1) / rows), 1, planes * g.channels * 9,
                [&](int64_t first, int64_t last, double *into) { pieces(g, dyp, xp, into, rows, first, last); });
            dweight = ctorch::from_sums(sums, {g.outputs, g.channels, 3, 3}, weight);
        }
        if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) dbias = dy.sum({0, 2, 3});
        return {dx, dweight, dbias, at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

/// Checks the operands of a 3x3 convolution named `kernel`.
void check_conv3x3(const char *kernel, const at::Tensor &x, const at::Tensor &w, const at::Tensor &b) {
    TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3, kernel,
                " needs input [N, C, H, W] and weight [O, C, 3, 3], got ", x.sizes(), " and ", w.sizes());
    ctorch::check_kernel_operands(kernel, {&x, &w, &b}, b, w.size(0));
}

}  // namespace

extern "C" {

ct_status ck_dilated_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, int64_t dh, int64_t dw,
                             ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor, &w = weight->tensor;
        const at::Tensor b = bias ? bias->tensor : at::Tensor();
        TORCH_CHECK(dh > 0 && dw > 0, "the dilated 3x3 convolution needs dilations of 1 or more, got ", dh, "x", dw);
        check_conv3x3("the dilated 3x3 convolution", x, w, b);
        RECORD_FUNCTION("segttt::dilated_conv3x3", std::vector<c10::IValue>{});
        *out = ctorch::wrap(Conv3x3Function::apply(x, w, b.defined() ? b : at::empty({0}, w.options()), 1, dh, dw));
    })
}

ct_status ck_strided_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor, &w = weight->tensor;
        const at::Tensor b = bias ? bias->tensor : at::Tensor();
        check_conv3x3("the strided 3x3 convolution", x, w, b);
        RECORD_FUNCTION("segttt::strided_conv3x3", std::vector<c10::IValue>{});
        *out = ctorch::wrap(Conv3x3Function::apply(x, w, b.defined() ? b : at::empty({0}, w.options()), 2, 1, 1));
    })
}

}  // extern "C"
