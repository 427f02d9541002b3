// Output Contrastive Loss as one fused CPU kernel with its own backward pass.
//
// For logits z [2, C, H, W] (view 0 and view 1 already in view 0's frame), N = H * W:
//
//     p_v = softmax(z_v) over C,   q_v = p_v / max(|p_v|, eps) per pixel (eps 1e-12)
//     pos = -(1/N) sum_i q_0[i] . q_1[i]
//     m_v = (1/N) sum_i q_v[i],    neg = (1/2) sum_v |m_v|^2
//     loss = posCoeff * pos + negCoeff * neg
//
// Composed from libtorch ops this is about twenty passes over [2, C, H, W] and their
// backward nodes. Here the forward pass is one pass that computes p tile by tile (64 pixels
// by C channels) and, while the tile is in cache, reduces it to pos and m; the backward pass
// is one pass that writes dL/dz, in place of libtorch's softmax over C of an NCHW tensor and
// the ops after it (docs/BENCHMARKS.md, "SegTTT's kernels").
// With upstream gradients gl, gp, gn of (loss, pos, neg), A = gl * posCoeff + gp,
// B = gl * negCoeff + gn:
//
//     g_v   = dL/dq_v = (1/N) (-A q_{1-v} + B m_v)
//     dp_v  = (g_v - q_v (q_v . g_v)) / |p_v|          (through the normalisation)
//     dz_v  = p_v * (dp_v - p_v . dp_v)                 (through the softmax)
//
// |p| >= 1 / sqrt(C) for a softmax output, so the eps clamp never acts and needs no branch
// in the gradient. Pixels are split into a fixed number of chunks and the partial sums are
// added in chunk order, so the value does not depend on the thread count.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ctorch_internal.h"
#include "ckernels.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kTile = 64;     // pixels processed together, channel by channel
constexpr int64_t kChunks = 64;   // fixed partition of the pixels for the reductions
constexpr float kEps = 1e-12f;

/// sum_b a[b] * w[b] over a tile, in eight lanes that the compiler vectorises.
__attribute__((always_inline)) inline float tile_dot(const float *a, const float *w, int64_t len) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t b = 0;
    for (; b + 8 <= len; b += 8) {
        for (int l = 0; l < 8; ++l) lanes[l] += a[b + l] * w[b + l];
    }
    float total = 0;
    for (; b < len; ++b) total += a[b] * w[b];
    for (float lane : lanes) total += lane;
    return total;
}

/// e^x for x <= 0, the softmax's shifted logits: e^x = 2^k e^r with k = round(x / ln 2) and
/// r = x - k ln 2 in [-ln 2 / 2, ln 2 / 2] (ln 2 split in two parts, so that k ln 2 is exact),
/// e^r by Cephes's degree-7 polynomial (relative error about 1e-7), and 2^k put into the
/// exponent bits, which hold 2^k only for k >= -126: x is clamped at -87 (k = -125 or -126),
/// giving 1.6e-38 instead of less, which no softmax sum (at least 1) can tell apart. A NaN
/// logit gives NaN, as libtorch's softmax does. Written with plain float operations so that
/// the loops calling it vectorise.
inline float exp_nonpositive(float x) {
    x = std::max(x, -87.f);
    const float shifter = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
    const float k = (x * 1.44269504088896341f + shifter) - shifter;
    const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.f;
    const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

/// p[c * n + b] = softmax over c of z[c * n + b], for the `len` pixels of one tile of one
/// view.
__attribute__((always_inline)) inline void softmax_tile(const float *z, float *p, int64_t channels, int64_t n,
                                                        int64_t len) {
    float top[kTile], inv_total[kTile];
    std::copy(z, z + len, top);
    for (int64_t c = 1; c < channels; ++c) {
        const float *row = z + c * n;
        for (int64_t b = 0; b < len; ++b) top[b] = std::max(top[b], row[b]);
    }
    std::fill(inv_total, inv_total + len, 0.f);
    for (int64_t c = 0; c < channels; ++c) {
        const float *row = z + c * n;
        float *out = p + c * n;
        for (int64_t b = 0; b < len; ++b) {
            out[b] = exp_nonpositive(row[b] - top[b]);
            inv_total[b] += out[b];
        }
    }
    for (int64_t b = 0; b < len; ++b) inv_total[b] = 1.f / inv_total[b];
    for (int64_t c = 0; c < channels; ++c) {
        float *out = p + c * n;
        for (int64_t b = 0; b < len; ++b) out[b] *= inv_total[b];
    }
}

/// Pixels [begin, end) of chunk k of n pixels split into `chunks`.
inline std::pair<int64_t, int64_t> chunk_range(int64_t k, int64_t chunks, int64_t n) {
    return {n * k / chunks, n * (k + 1) / chunks};
}

/// Per tile: inv[v][b] = 1 / max(|p_v[i0 + b]|, eps), dot[b] = p_0 . p_1 at pixel i0 + b.
struct TileNorms {
    float inv[2][kTile];
    float dot[kTile];

    __attribute__((always_inline)) void compute(const float *p, int64_t channels, int64_t n, int64_t i0,
                                                int64_t len) {
        for (int v = 0; v < 2; ++v) {
            float *iv = inv[v];
            std::fill(iv, iv + len, 0.f);
            for (int64_t c = 0; c < channels; ++c) {
                const float *row = p + (v * channels + c) * n + i0;
                for (int64_t b = 0; b < len; ++b) iv[b] += row[b] * row[b];
            }
            for (int64_t b = 0; b < len; ++b) iv[b] = 1.f / std::max(std::sqrt(iv[b]), kEps);
        }
        std::fill(dot, dot + len, 0.f);
        for (int64_t c = 0; c < channels; ++c) {
            const float *r0 = p + c * n + i0;
            const float *r1 = p + (channels + c) * n + i0;
            for (int64_t b = 0; b < len; ++b) dot[b] += r0[b] * r1[b];
        }
    }
};

/// The forward pass at the pixels [i0, i0 + len): p of both views from z, and their
/// contributions to sum_i q_0 . q_1 (`pos`) and to sum_i q_v (`mean`, [2, C]). Compiled also
/// for AVX2, taken at run time where the CPU has it.
__attribute__((target_clones("avx2", "default"))) void forward_tile(const float *zp, float *pp, int64_t channels,
                                                                        int64_t n, int64_t i0, int64_t len,
                                                                        double &pos, double *mean) {
    for (int64_t v = 0; v < 2; ++v) {
        softmax_tile(zp + v * channels * n + i0, pp + v * channels * n + i0, channels, n, len);
    }
    TileNorms tile;
    tile.compute(pp, channels, n, i0, len);
    float cosine[kTile];
    for (int64_t b = 0; b < len; ++b) cosine[b] = tile.dot[b] * tile.inv[0][b];
    pos += tile_dot(cosine, tile.inv[1], len);
    for (int v = 0; v < 2; ++v) {
        for (int64_t c = 0; c < channels; ++c) {
            mean[v * channels + c] += tile_dot(pp + (v * channels + c) * n + i0, tile.inv[v], len);
        }
    }
}

/// dL/dz at the pixels [i0, i0 + len) of both views, from p, the view means m [2, C] and the
/// coefficients A (`a`), B (`b_coeff`) and 1/N (see the top of the file); `dp` is scratch for
/// C x kTile values. Compiled also for AVX2, taken at run time where the CPU has it.
__attribute__((target_clones("avx2", "default"))) void backward_tile(const float *pp, const float *m, float *out,
                                                                         float *dp, int64_t channels, int64_t n,
                                                                         int64_t i0, int64_t len, float a,
                                                                         float b_coeff, float inv_n) {
    TileNorms tile;
    tile.compute(pp, channels, n, i0, len);
    float pm[kTile], qg[kTile], s[kTile];
    for (int v = 0; v < 2; ++v) {
        const int w = 1 - v;
        const float *mv = m + v * channels;
        std::fill(pm, pm + len, 0.f);
        for (int64_t c = 0; c < channels; ++c) {
            const float *row = pp + (v * channels + c) * n + i0;
            for (int64_t b = 0; b < len; ++b) pm[b] += row[b] * mv[c];
        }
        // q_v . g_v = (1/N) (-A q_0 . q_1 + B q_v . m_v)
        for (int64_t b = 0; b < len; ++b) {
            const float iv = tile.inv[v][b];
            qg[b] = inv_n * (-a * tile.dot[b] * iv * tile.inv[w][b] + b_coeff * pm[b] * iv);
        }
        std::fill(s, s + len, 0.f);
        for (int64_t c = 0; c < channels; ++c) {
            const float *pv = pp + (v * channels + c) * n + i0;
            const float *pw = pp + (w * channels + c) * n + i0;
            float *d = dp + c * kTile;
            const float bm = b_coeff * mv[c];
            for (int64_t b = 0; b < len; ++b) {
                const float iv = tile.inv[v][b];
                const float g = inv_n * (-a * pw[b] * tile.inv[w][b] + bm);
                d[b] = iv * (g - pv[b] * iv * qg[b]);
                s[b] += pv[b] * d[b];
            }
        }
        for (int64_t c = 0; c < channels; ++c) {
            const float *pv = pp + (v * channels + c) * n + i0;
            const float *d = dp + c * kTile;
            float *o = out + (v * channels + c) * n + i0;
            for (int64_t b = 0; b < len; ++b) o[b] = pv[b] * (d[b] - s[b]);
        }
    }
}

struct OutputContrastiveFunction : public torch::autograd::Function<OutputContrastiveFunction> {
    static variable_list forward(AutogradContext *ctx, const at::Tensor &logits, double pos_coeff, double neg_coeff) {
        const at::Tensor z = logits.contiguous();
        at::Tensor p = at::empty_like(z);
        const int64_t channels = p.size(1), n = p.size(2) * p.size(3);
        const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(kChunks, n / kTile));
        const float *zp = z.data_ptr<float>();
        float *pp = p.data_ptr<float>();
        // Per chunk: sum_i q_0 . q_1 and sum_i q_v[c], in double.
        std::vector<double> pos_part(chunks, 0.0), mean_part(chunks * 2 * channels, 0.0);
        ctorch::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
            for (int64_t k = first; k < last; ++k) {
                const auto [begin, end] = chunk_range(k, chunks, n);
                double *mean = &mean_part[k * 2 * channels];
                for (int64_t i0 = begin; i0 < end; i0 += kTile) {
                    forward_tile(zp, pp, channels, n, i0, std::min(kTile, end - i0), pos_part[k], mean);
                }
            }
        });
        double pos_sum = 0;
        for (double part : pos_part) pos_sum += part;
        at::Tensor means = at::zeros({2, channels}, at::kDouble);
        double *m = means.data_ptr<double>();
        for (int64_t k = 0; k < chunks; ++k) {
            for (int64_t j = 0; j < 2 * channels; ++j) m[j] += mean_part[k * 2 * channels + j];
        }
        double neg = 0;
        for (int64_t j = 0; j < 2 * channels; ++j) {
            m[j] /= static_cast<double>(n);
            neg += 0.5 * m[j] * m[j];
        }
        const double pos = -pos_sum / static_cast<double>(n);
        ctx->save_for_backward({p, means});
        ctx->saved_data["pos_coeff"] = pos_coeff;
        ctx->saved_data["neg_coeff"] = neg_coeff;
        const auto scalar = [&](double value) { return at::scalar_tensor(value, logits.options()); };
        return {scalar(pos_coeff * pos + neg_coeff * neg), scalar(pos), scalar(neg)};
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &p = saved[0];
        const auto upstream = [&](size_t i) { return grads[i].defined() ? grads[i].item<double>() : 0.0; };
        const double gl = upstream(0);
        const auto a = static_cast<float>(gl * ctx->saved_data["pos_coeff"].toDouble() + upstream(1));
        const auto b_coeff = static_cast<float>(gl * ctx->saved_data["neg_coeff"].toDouble() + upstream(2));
        const int64_t channels = p.size(1), n = p.size(2) * p.size(3);
        const float inv_n = 1.f / static_cast<float>(n);
        std::vector<float> m(2 * channels);
        const double *md = saved[1].data_ptr<double>();
        for (int64_t j = 0; j < 2 * channels; ++j) m[j] = static_cast<float>(md[j]);
        at::Tensor dz = at::empty_like(p);
        const float *pp = p.data_ptr<float>();
        float *out = dz.data_ptr<float>();
        const int64_t tiles = (n + kTile - 1) / kTile;
        ctorch::parallel_for(0, tiles, 16, [&](int64_t first, int64_t last) {
            std::vector<float> dp(channels * kTile);
            for (int64_t t = first; t < last; ++t) {
                const int64_t i0 = t * kTile;
                backward_tile(pp, m.data(), out, dp.data(), channels, n, i0, std::min(kTile, n - i0), a, b_coeff,
                              inv_n);
            }
        });
        return {dz, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

extern "C" {

ct_status ck_output_contrastive_loss(ct_tensor logits, double pos_coeff, double neg_coeff, ct_tensor *loss,
                                     ct_tensor *pos, ct_tensor *neg) {
    CT_PROTECT({
        const at::Tensor &z = logits->tensor;
        TORCH_CHECK(z.dim() == 4 && z.size(0) == 2 && z.size(1) > 0 && z.size(2) * z.size(3) > 0,
                    "the fused output contrastive loss needs logits [2, C, H, W] of two views, got ", z.sizes());
        TORCH_CHECK(z.device().is_cpu() && z.scalar_type() == at::kFloat,
                    "the fused output contrastive loss runs on float32 CPU logits, got ", z.scalar_type(), " on ",
                    z.device());
        RECORD_FUNCTION("segttt::output_contrastive_loss", std::vector<c10::IValue>{});
        auto outputs = OutputContrastiveFunction::apply(z, pos_coeff, neg_coeff);
        *loss = ctorch::wrap(outputs[0]);
        *pos = ctorch::wrap(outputs[1]);
        *neg = ctorch::wrap(outputs[2]);
    })
}

}  // extern "C"
