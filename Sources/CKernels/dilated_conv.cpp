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
// libtorch sends these convolutions to oneDNN, whose direct kernels want multiples of 8
// channels and whose im2col path (`gemm:jit`) builds a 9 C x H W column matrix for a product
// with only O <= 28 rows, far below the machine's matrix product (docs/BENCHMARKS.md,
// "SegTTT's kernels", gives the rates). Here the input's rows are copied once with d_w
// zero columns on either side, and every output row is accumulated in registers, 3 to 5
// output channels by 16 or 24 columns at a time, over the 9 C taps that reach it; taps
// whose source row lies outside the image are skipped. The weight gradient keeps 3 output
// channels by the 3 column taps of one (c, a) in registers over the rows of one piece of
// the image, and the pieces' sums are added in double. Vectors of 8
// floats through the compiler's vector extension: AVX2 with FMA where the CPU has both
// (chosen at run time), SSE otherwise.
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

/// Output channels whose weight gradients are accumulated together, for the 3 column taps of
/// one (c, a): 9 accumulators, 3 vectors of dy and one of x in registers (4 would spill).
constexpr int64_t kGradBlock = 3;

/// Vectors of columns accumulated together per output channel when B output channels are:
/// B x V accumulators, V input vectors and one broadcast weight take 13 or 11 of AVX2's 16
/// registers (B = 4, V = 3 would take all 16, and the compiler then spills accumulators).
template <int64_t B>
constexpr int64_t kColumnVectors = B == 3 ? 3 : 2;

/// The sizes of one convolution: `channels` planes of h x w in, `outputs` planes out. The
/// padded input holds `planes` >= `channels` planes per image, of rows of `stride` floats: the
/// image's column j at `dw + j`, zeros elsewhere.
struct Geometry {
    int64_t batch, channels, planes, outputs, h, w, dh, dw;
    int64_t vectors() const { return round_up(w, kLanes) / kLanes; }
    int64_t stride() const { return vectors() * kLanes + 2 * dw; }
    /// Blocks of `block` output channels that cover `outputs`.
    int64_t blocks(int64_t block) const { return round_up(outputs, block) / block; }
};

/// The geometry of x [N, C, H, W] convolved to `outputs` channels. A dilation beyond the
/// image's side is cut to the side (at least 1): the taps it moves reach only zeros either
/// way, and the padded rows stay at most 3 W + 8 floats.
Geometry geometry_of(const at::Tensor &x, int64_t outputs, int64_t dh, int64_t dw) {
    const int64_t h = x.size(2), w = x.size(3);
    return {x.size(0), x.size(1), x.size(1), outputs, h, w,
            std::max<int64_t>(1, std::min(dh, h)), std::max<int64_t>(1, std::min(dw, w))};
}

/// The output channels computed together for `outputs` of them: of 5, 4 and 3, the one that
/// leaves the fewest zero-weight channels in the last block (the first of a tie), so that
/// ESPNet's 25 channels take blocks of 5 and its 12 blocks of 4.
int64_t output_block(int64_t outputs) {
    int64_t best = 5;
    for (int64_t block : {4, 3}) {
        if (round_up(outputs, block) < round_up(outputs, best)) best = block;
    }
    return best;
}

/// The first and one-past-last output rows i whose source row i + (a - 1) dh is inside the image.
inline std::pair<int64_t, int64_t> rows_reached(int64_t a, int64_t h, int64_t dh) {
    const int64_t shift = (a - 1) * dh;
    return {std::max<int64_t>(0, -shift), std::min(h, h - shift)};
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

/// Output channels [o0, o0 + B) x columns [j0, j0 + 8 V) of output row i of image n:
/// y[o, i, j] = b[o] + sum_{c, a, e} w[o, c, a, e] x[c, i + (a - 1) dh, j + (e - 1) dw], accumulated
/// in registers (V a constant, so that the accumulators stay in them), then stored.
template <int64_t B, int64_t V>
__attribute__((always_inline)) inline void output_tile(const Geometry &g, const float *image, const float *packed,
                                                       const float *bias, float *out, int64_t n, int64_t o0,
                                                       int64_t i, int64_t j0) {
    const int64_t stride = g.stride();
    Vec acc[B][V] = {};
    for (int64_t a = 0; a < 3; ++a) {
        const int64_t r = i + (a - 1) * g.dh;
        if (r < 0 || r >= g.h) continue;
        for (int64_t c = 0; c < g.channels; ++c) {
            const float *row = image + (c * g.h + r) * stride + j0;
            const float *taps = packed + (c * 9 + a * 3) * B;
            for (int64_t e = 0; e < 3; ++e) {
                Vec x[V];
                for (int64_t v = 0; v < V; ++v) x[v] = load(row + e * g.dw + v * kLanes);
                for (int64_t o = 0; o < B; ++o) {
                    const Vec s = splat(taps[e * B + o]);
                    for (int64_t v = 0; v < V; ++v) acc[o][v] += s * x[v];
                }
            }
        }
    }
    for (int64_t o = 0; o < B && o0 + o < g.outputs; ++o) {
        const float shift = bias ? bias[o0 + o] : 0.f;
        float *line = out + ((n * g.outputs + o0 + o) * g.h + i) * g.w;
        for (int64_t v = 0; v < V; ++v) {
            const int64_t j = j0 + v * kLanes, valid = std::min(kLanes, g.w - j);
            float values[kLanes];
            store(values, acc[o][v]);
            for (int64_t k = 0; k < valid; ++k) line[j + k] = values[k] + shift;
        }
    }
}

/// Output rows [first, last) of the flattened (n, i, block of B outputs): y = b + w * x, from
/// the padded input and the weights packed in blocks of B; bias may be null. Consecutive
/// units read the same input rows, which stay in cache.
template <int64_t B>
__attribute__((always_inline)) inline void correlate_rows(const Geometry &g, const float *input, const float *packed,
                                                          const float *bias, float *out, int64_t first, int64_t last) {
    constexpr int64_t V = kColumnVectors<B>;
    const int64_t stride = g.stride(), blocks = g.blocks(B);
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t block = unit % blocks, i = (unit / blocks) % g.h, n = unit / (blocks * g.h);
        const float *image = input + n * g.planes * g.h * stride;
        const float *weights = packed + block * g.channels * 9 * B;
        for (int64_t v0 = 0; v0 < g.vectors(); v0 += V) {
            const int64_t j0 = v0 * kLanes;
            if (g.vectors() - v0 >= V) {
                output_tile<B, V>(g, image, weights, bias, out, n, block * B, i, j0);
            } else if (V == 3 && g.vectors() - v0 == 2) {
                output_tile<B, 2>(g, image, weights, bias, out, n, block * B, i, j0);
            } else {
                output_tile<B, 1>(g, image, weights, bias, out, n, block * B, i, j0);
            }
        }
    }
}

/// Adds to `sums` [planes][C][9] (double) dw[o, c, a, e]'s terms of the pieces [first, last)
/// of the flattened (n, piece of `rows` output rows), from dy padded like the input (planes
/// rounded up to 3, zero past O and past W) and x. A piece's rows of dy and x stay in cache
/// while every (block of 3 outputs, c, a) passes over them.
__attribute__((always_inline)) inline void weight_grad_pieces(const Geometry &g, const float *grad, const float *input,
                                                              double *sums, int64_t rows, int64_t first,
                                                              int64_t last) {
    const int64_t stride = g.stride(), blocks = g.blocks(kGradBlock), planes = blocks * kGradBlock;
    const int64_t pieces = (g.h + rows - 1) / rows;
    for (int64_t unit = first; unit < last; ++unit) {
        const int64_t n = unit / pieces, r0 = (unit % pieces) * rows, r1 = std::min(g.h, r0 + rows);
        for (int64_t block = 0; block < blocks; ++block) {
            for (int64_t c = 0; c < g.channels; ++c) {
                for (int64_t a = 0; a < 3; ++a) {
                    const auto [reached, beyond] = rows_reached(a, g.h, g.dh);
                    const int64_t begin = std::max(reached, r0), end = std::min(beyond, r1);
                    if (begin >= end) continue;
                    Vec acc[kGradBlock][3] = {};
                    for (int64_t i = begin; i < end; ++i) {
                        const float *x = input + ((n * g.channels + c) * g.h + i + (a - 1) * g.dh) * stride;
                        const float *dy = grad + ((n * planes + block * kGradBlock) * g.h + i) * stride + g.dw;
                        for (int64_t v = 0; v < g.vectors(); ++v) {
                            Vec d[kGradBlock];
                            for (int64_t o = 0; o < kGradBlock; ++o) d[o] = load(dy + o * g.h * stride + v * kLanes);
                            for (int64_t e = 0; e < 3; ++e) {
                                const Vec xs = load(x + e * g.dw + v * kLanes);
                                for (int64_t o = 0; o < kGradBlock; ++o) acc[o][e] += d[o] * xs;
                            }
                        }
                    }
                    for (int64_t o = 0; o < kGradBlock; ++o) {
                        for (int64_t e = 0; e < 3; ++e) {
                            sums[((block * kGradBlock + o) * g.channels + c) * 9 + a * 3 + e] += lane_sum(acc[o][e]);
                        }
                    }
                }
            }
        }
    }
}

template <int64_t B>
CT_AVX2_FMA void correlate_rows_avx2(const Geometry &g, const float *input, const float *packed, const float *bias,
                                     float *out, int64_t first, int64_t last) {
    correlate_rows<B>(g, input, packed, bias, out, first, last);
}

template <int64_t B>
void correlate_rows_generic(const Geometry &g, const float *input, const float *packed, const float *bias, float *out,
                            int64_t first, int64_t last) {
    correlate_rows<B>(g, input, packed, bias, out, first, last);
}

CT_KERNEL_TWINS(weight_grad_pieces, weight_grad_pieces,
                (const Geometry &g, const float *grad, const float *input, double *sums, int64_t rows, int64_t first,
                 int64_t last),
                (g, grad, input, sums, rows, first, last))

/// y [N, O, H, W] = b + w * x for x padded by `pad_rows`; w [O, C, 3, 3], or with `transpose`
/// w [C, O, 3, 3] read as w' (see `pack_weight`).
at::Tensor correlate(const Geometry &g, const at::Tensor &padded, const at::Tensor &weight, bool transpose,
                     const float *bias) {
    at::Tensor out = at::empty({g.batch, g.outputs, g.h, g.w}, padded.options());
    const int64_t block = output_block(g.outputs);
    const std::vector<float> packed = pack_weight(weight, transpose, block);
    const float *input = padded.data_ptr<float>(), *w = packed.data();
    float *y = out.data_ptr<float>();
    using Rows = void (*)(const Geometry &, const float *, const float *, const float *, float *, int64_t, int64_t);
    const bool avx2 = has_avx2_fma();
    const Rows rows = block == 5   ? (avx2 ? correlate_rows_avx2<5> : correlate_rows_generic<5>)
                      : block == 4 ? (avx2 ? correlate_rows_avx2<4> : correlate_rows_generic<4>)
                                   : (avx2 ? correlate_rows_avx2<3> : correlate_rows_generic<3>);
    const int64_t units = g.batch * g.blocks(block) * g.h;
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, g.channels * g.w));
    ctorch::parallel_for(0, units, grain, [&](int64_t first, int64_t last) { rows(g, input, w, bias, y, first, last); });
    return out;
}

struct DilatedConvFunction : public torch::autograd::Function<DilatedConvFunction> {
    /// `bias` is [O], or empty for none (libtorch 1.13's custom functions take no undefined inputs).
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                              const at::Tensor &bias, int64_t dh, int64_t dw) {
        const at::Tensor x = input.contiguous(), b = bias.contiguous();
        const Geometry g = geometry_of(x, weight.size(0), dh, dw);
        ctx->save_for_backward({x, weight});
        ctx->saved_data["dh"] = dh;
        ctx->saved_data["dw"] = dw;
        ctx->saved_data["bias"] = b.numel() > 0;
        return correlate(g, pad_rows(x, g.channels, g.dw, g.stride()), weight, /*transpose=*/false,
                         b.numel() > 0 ? b.data_ptr<float>() : nullptr);
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        TORCH_CHECK(!at::GradMode::is_enabled(),
                    "SegTTT's dilated 3x3 convolution has first derivatives only; for higher ones use "
                    "libtorch's convolution (Torch.conv2d)");
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &weight = saved[1];
        const int64_t dh = ctx->saved_data["dh"].toInt(), dw = ctx->saved_data["dw"].toInt();
        const at::Tensor dy = grads[0].contiguous();
        const Geometry g = geometry_of(x, weight.size(0), dh, dw);
        const int64_t planes = g.blocks(kGradBlock) * kGradBlock;  // dy's planes, zero past O
        const at::Tensor dy_padded = pad_rows(dy, planes, g.dw, g.stride());
        at::Tensor dx, dweight, dbias;
        if (ctx->needs_input_grad(0)) {
            // dx is the convolution of dy's O planes (of the padded ones) by w'.
            const Geometry back{g.batch, g.outputs, planes, g.channels, g.h, g.w, g.dh, g.dw};
            dx = correlate(back, dy_padded, weight, /*transpose=*/true, nullptr);
        }
        if (ctx->needs_input_grad(1)) {
            const at::Tensor x_padded = pad_rows(x, g.channels, g.dw, g.stride());
            const float *dyp = dy_padded.data_ptr<float>(), *xp = x_padded.data_ptr<float>();
            // Pieces of rows whose padded rows of dy and x take about 256 KiB, but at least 16
            // rows, so that the lane sums at the end of each pass stay a small share of it.
            const int64_t rows = std::max<int64_t>(16, 65536 / ((planes + g.channels) * g.stride()));
            const auto pieces = has_avx2_fma() ? weight_grad_pieces_avx2 : weight_grad_pieces_generic;
            const std::vector<double> sums = ctorch::parallel_sum(
                0, g.batch * ((g.h + rows - 1) / rows), 1, planes * g.channels * 9,
                [&](int64_t first, int64_t last, double *into) { pieces(g, dyp, xp, into, rows, first, last); });
            dweight = at::empty({g.outputs, g.channels, 3, 3}, weight.options());
            std::copy(sums.begin(), sums.begin() + g.outputs * g.channels * 9, dweight.data_ptr<float>());
        }
        if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) dbias = dy.sum({0, 2, 3});
        return {dx, dweight, dbias, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

extern "C" {

ct_status ck_dilated_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, int64_t dh, int64_t dw,
                             ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor, &w = weight->tensor;
        const at::Tensor b = bias ? bias->tensor : at::Tensor();
        TORCH_CHECK(dh > 0 && dw > 0, "the dilated 3x3 convolution needs dilations of 1 or more, got ", dh, "x", dw);
        TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3,
                    "the dilated 3x3 convolution needs input [N, C, H, W] and weight [O, C, 3, 3], got ", x.sizes(),
                    " and ", w.sizes());
        ctorch::check_kernel_operands("the dilated 3x3 convolution", {&x, &w, &b}, b, w.size(0));
        RECORD_FUNCTION("segttt::dilated_conv3x3", std::vector<c10::IValue>{});
        *out = ctorch::wrap(DilatedConvFunction::apply(x, w, b.defined() ? b : at::empty({0}, w.options()), dh, dw));
    })
}

}  // extern "C"
