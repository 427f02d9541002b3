// Batch normalisation with given statistics followed by PReLU, as one fused CPU kernel with
// its own backward pass (ESPNet's `BR`, the most frequent pair of its step).
//
// Per channel c, with s_c = w_c / sqrt(var_c + eps) and t_c = b_c - mean_c s_c:
//
//     y = s_c x + t_c,    out = y if y > 0 else a_c y
//
// The statistics carry no gradient (running, BN-prior or moving-average statistics). With
// g = dL/dout and h = g if y > 0 else a_c g:
//
//     dL/dx = s_c h,   dL/dw_c = sum h (x - mean_c) / sqrt(var_c + eps),
//     dL/db_c = sum h, dL/da_c = sum_{y <= 0} g y
//
// libtorch's batch_norm and prelu take two passes forward and four or more backward; this
// takes one forward and one backward (y is recomputed from x). Each channel is reduced
// serially, so the sums do not depend on the thread count.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "ctorch_internal.h"
#include "ckernels.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Per-channel scale s and shift t of the normalisation, in float.
std::pair<at::Tensor, at::Tensor> scale_shift(const at::Tensor &mean, const at::Tensor &var, const at::Tensor &weight,
                                              const at::Tensor &bias, double eps) {
    at::Tensor scale = (weight.to(at::kDouble) / (var.to(at::kDouble) + eps).sqrt());
    at::Tensor shift = bias.to(at::kDouble) - mean.to(at::kDouble) * scale;
    return {scale.to(at::kFloat).contiguous(), shift.to(at::kFloat).contiguous()};
}

struct BatchNormPReLUFunction : public torch::autograd::Function<BatchNormPReLUFunction> {
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &mean,
                              const at::Tensor &var, const at::Tensor &weight, const at::Tensor &bias,
                              const at::Tensor &slope, double eps) {
        const at::Tensor x = input.contiguous();
        const auto [scale, shift] = scale_shift(mean, var, weight, bias, eps);
        const at::Tensor a = slope.to(at::kFloat).expand({x.size(1)}).contiguous();
        at::Tensor out = at::empty_like(x);
        const int64_t batch = x.size(0), channels = x.size(1), plane = x.numel() / (batch * channels);
        const float *px = x.data_ptr<float>(), *ps = scale.data_ptr<float>(), *pt = shift.data_ptr<float>(),
                    *pa = a.data_ptr<float>();
        float *po = out.data_ptr<float>();
        ctorch::parallel_for(0, batch * channels, 1, [&](int64_t first, int64_t last) {
            for (int64_t k = first; k < last; ++k) {
                const int64_t c = k % channels;
                const float s = ps[c], t = pt[c], ac = pa[c];
                const float *xi = px + k * plane;
                float *oi = po + k * plane;
                for (int64_t i = 0; i < plane; ++i) {
                    const float y = s * xi[i] + t;
                    oi[i] = y > 0 ? y : ac * y;
                }
            }
        });
        ctx->save_for_backward({x, mean, var, weight, bias, slope});
        ctx->saved_data["eps"] = eps;
        return out;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &mean = saved[1], &var = saved[2], &slope = saved[5];
        const double eps = ctx->saved_data["eps"].toDouble();
        const auto [scale, shift] = scale_shift(mean, var, saved[3], saved[4], eps);
        const at::Tensor a = slope.to(at::kFloat).expand({x.size(1)}).contiguous();
        const at::Tensor g = grads[0].contiguous();
        const int64_t batch = x.size(0), channels = x.size(1), plane = x.numel() / (batch * channels);
        at::Tensor dx = at::empty_like(x);
        // Per channel: sum h (x - mean), sum h, sum_{y <= 0} g y.
        at::Tensor sums = at::zeros({channels, 3}, at::kDouble);
        const at::Tensor mean_f = mean.to(at::kFloat).contiguous();
        const float *px = x.data_ptr<float>(), *pg = g.data_ptr<float>(), *ps = scale.data_ptr<float>(),
                    *pt = shift.data_ptr<float>(), *pa = a.data_ptr<float>(), *pm = mean_f.data_ptr<float>();
        float *pdx = dx.data_ptr<float>();
        double *psum = sums.data_ptr<double>();
        ctorch::parallel_for(0, channels, 1, [&](int64_t first, int64_t last) {
            for (int64_t c = first; c < last; ++c) {
                const float s = ps[c], t = pt[c], ac = pa[c], m = pm[c];
                double centred = 0, total = 0, negative = 0;
                for (int64_t n = 0; n < batch; ++n) {
                    const int64_t offset = (n * channels + c) * plane;
                    const float *__restrict xi = px + offset, *__restrict gi = pg + offset;
                    float *__restrict di = pdx + offset;
                    float plane_centred = 0, plane_total = 0, plane_negative = 0;
                    {
// Lets the compiler split the three sums into vector lanes.
#pragma clang fp reassociate(on)
                        for (int64_t i = 0; i < plane; ++i) {
                            const float y = s * xi[i] + t;
                            const float h = (y > 0 ? 1.f : ac) * gi[i];
                            di[i] = s * h;
                            plane_centred += h * (xi[i] - m);
                            plane_total += h;
                            plane_negative += y > 0 ? 0.f : gi[i] * y;
                        }
                    }
                    centred += plane_centred;
                    total += plane_total;
                    negative += plane_negative;
                }
                psum[3 * c] = centred;
                psum[3 * c + 1] = total;
                psum[3 * c + 2] = negative;
            }
        });
        const at::Tensor inv_std = (var.to(at::kDouble) + eps).rsqrt();
        at::Tensor dweight = (sums.select(1, 0) * inv_std).to(saved[3].scalar_type());
        at::Tensor dbias = sums.select(1, 1).to(saved[4].scalar_type());
        at::Tensor dslope = sums.select(1, 2);
        if (slope.numel() == 1) dslope = dslope.sum().reshape(slope.sizes());
        return {dx, at::Tensor(), at::Tensor(), dweight, dbias, dslope.to(slope.scalar_type()), at::Tensor()};
    }
};

}  // namespace

extern "C" {

ct_status ck_batch_norm_prelu(ct_tensor input, ct_tensor mean, ct_tensor var, ct_tensor weight, ct_tensor bias,
                              ct_tensor slope, double eps, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor;
        TORCH_CHECK(x.dim() >= 2 && x.size(1) > 0 && x.device().is_cpu() && x.scalar_type() == at::kFloat,
                    "the fused batch norm and PReLU runs on float32 CPU input [N, C, ...], got ", x.scalar_type(),
                    " ", x.sizes(), " on ", x.device());
        const int64_t channels = x.size(1);
        for (const auto *t : {&mean->tensor, &var->tensor, &weight->tensor, &bias->tensor}) {
            TORCH_CHECK(t->dim() == 1 && t->size(0) == channels && t->device().is_cpu(),
                        "the fused batch norm and PReLU needs per-channel statistics, weight and bias of ", channels,
                        " elements on the CPU, got ", t->sizes());
        }
        const at::Tensor &a = slope->tensor;
        TORCH_CHECK(a.dim() == 1 && (a.size(0) == 1 || a.size(0) == channels) && a.device().is_cpu(),
                    "the fused batch norm and PReLU needs one PReLU slope or ", channels, ", got ", a.sizes());
        RECORD_FUNCTION("segttt::batch_norm_prelu", std::vector<c10::IValue>{});
        *out = ctorch::wrap(BatchNormPReLUFunction::apply(x, mean->tensor.detach(), var->tensor.detach(),
                                                          weight->tensor, bias->tensor, a, eps));
    })
}

}  // extern "C"
