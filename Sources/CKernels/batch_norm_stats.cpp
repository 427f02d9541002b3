// The per-channel batch statistics that the BN prior mixes into the source ones
// (torch.batch_norm_update_stats), as two passes over each channel's values:
//
//     mean_c = (1/n) sum_i x_ci,   s_c = sum_i (x_ci - mean_c)^2,   n = N * H * W
//     running_mean_c <- m * mean_c + (1 - m) * running_mean_c
//     running_var_c  <- m * s_c / (n - 1) + (1 - m) * running_var_c
//
// summed in double, in place of libtorch's kernel, which takes several times a plain sum's
// time over the same values (docs/BENCHMARKS.md, "SegTTT's kernels"). Other inputs (not
// float32, not contiguous, not on the CPU, one value per channel) go to libtorch's.
#include <ATen/record_function.h>

#include <algorithm>

#include "ctorch_internal.h"
#include "ckernels.h"

namespace {

constexpr int kLanes = 8;

/// sum_i (x[i] - shift)^power over `count` values, power 1 or 2, in double lanes the compiler
/// vectorises.
template <int power>
double plane_sum(const float *x, int64_t count, double shift) {
    double lanes[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + kLanes <= count; i += kLanes) {
        for (int l = 0; l < kLanes; ++l) {
            const double d = static_cast<double>(x[i + l]) - shift;
            lanes[l] += power == 1 ? d : d * d;
        }
    }
    double total = 0;
    for (; i < count; ++i) {
        const double d = static_cast<double>(x[i]) - shift;
        total += power == 1 ? d : d * d;
    }
    for (double lane : lanes) total += lane;
    return total;
}

bool takes_fused_path(const at::Tensor &x, const at::Tensor &mean, const at::Tensor &var) {
    const auto fits = [](const at::Tensor &t) {
        return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous();
    };
    return fits(x) && fits(mean) && fits(var) && x.numel() / x.size(1) >= 2;
}

void update_statistics(const at::Tensor &x, at::Tensor &running_mean, at::Tensor &running_var, double momentum) {
    const int64_t batch = x.size(0), channels = x.size(1), plane = x.numel() / (batch * channels);
    const int64_t count = batch * plane;
    const float *data = x.data_ptr<float>();
    float *mean_out = running_mean.data_ptr<float>();
    float *var_out = running_var.data_ptr<float>();
    const int64_t grain = std::max<int64_t>(1, 32768 / count);
    ctorch::parallel_for(0, channels, grain, [&](int64_t first, int64_t last) {
        for (int64_t c = first; c < last; ++c) {
            double sum = 0;
            for (int64_t n = 0; n < batch; ++n) sum += plane_sum<1>(data + (n * channels + c) * plane, plane, 0.0);
            const double mean = sum / static_cast<double>(count);
            double squares = 0;
            for (int64_t n = 0; n < batch; ++n) squares += plane_sum<2>(data + (n * channels + c) * plane, plane, mean);
            const double unbiased = squares / static_cast<double>(count - 1);
            mean_out[c] = static_cast<float>(momentum * mean + (1 - momentum) * mean_out[c]);
            var_out[c] = static_cast<float>(momentum * unbiased + (1 - momentum) * var_out[c]);
        }
    });
}

}  // namespace

extern "C" {

ct_status ck_batch_norm_update_stats(ct_tensor input, ct_tensor running_mean, ct_tensor running_var,
                                     double momentum) {
    CT_PROTECT({
        const auto &x = input->tensor;
        ctorch::check_running_statistics(x, running_mean->tensor, running_var->tensor);
        if (takes_fused_path(x, running_mean->tensor, running_var->tensor)) {
            RECORD_FUNCTION("segttt::batch_norm_update_stats", std::vector<c10::IValue>{});
            update_statistics(x, running_mean->tensor, running_var->tensor, momentum);
        } else {
            at::batch_norm_update_stats(x, running_mean->tensor, running_var->tensor, momentum);
        }
        ctorch::mark_written(running_mean->tensor, running_var->tensor);
    })
}

}  // extern "C"
