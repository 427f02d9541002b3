// Elementwise arithmetic, reductions and neural-network functions.
#include "ctorch_internal.h"

using ctorch::dims;
using ctorch::wrap;

namespace {

at::Tensor binary(int op, const at::Tensor &a, const at::Tensor &b) {
    switch (op) {
    case CT_ADD: return a + b;
    case CT_SUB: return a - b;
    case CT_MUL: return a * b;
    case CT_DIV: return a / b;
    case CT_POW: return a.pow(b);
    case CT_EQ: return a.eq(b);
    case CT_NE: return a.ne(b);
    case CT_LT: return a.lt(b);
    case CT_LE: return a.le(b);
    case CT_GT: return a.gt(b);
    case CT_GE: return a.ge(b);
    case CT_MAXIMUM: return at::maximum(a, b);
    case CT_MINIMUM: return at::minimum(a, b);
    case CT_LOGICAL_AND: return at::logical_and(a, b);
    case CT_LOGICAL_OR: return at::logical_or(a, b);
    }
    TORCH_CHECK(false, "unknown binary operation code ", op);
}

at::Tensor binary_scalar(int op, const at::Tensor &a, const at::Scalar &s) {
    switch (op) {
    case CT_ADD: return a + s;
    case CT_SUB: return a - s;
    case CT_MUL: return a * s;
    case CT_DIV: return a / s;
    case CT_POW: return a.pow(s);
    case CT_EQ: return a.eq(s);
    case CT_NE: return a.ne(s);
    case CT_LT: return a.lt(s);
    case CT_LE: return a.le(s);
    case CT_GT: return a.gt(s);
    case CT_GE: return a.ge(s);
    case CT_MAXIMUM: return a.clamp_min(s);
    case CT_MINIMUM: return a.clamp_max(s);
    }
    TORCH_CHECK(false, "unsupported tensor-scalar operation code ", op);
}

at::Tensor unary(int op, const at::Tensor &a) {
    switch (op) {
    case CT_NEG: return a.neg();
    case CT_EXP: return a.exp();
    case CT_LOG: return a.log();
    case CT_SQRT: return a.sqrt();
    case CT_ABS: return a.abs();
    case CT_RELU: return a.relu();
    case CT_SIGMOID: return a.sigmoid();
    case CT_TANH: return a.tanh();
    case CT_RSQRT: return a.rsqrt();
    case CT_LOGICAL_NOT: return a.logical_not();
    case CT_FLOOR: return a.floor();
    case CT_ISFINITE: return a.isfinite();
    }
    TORCH_CHECK(false, "unknown unary operation code ", op);
}

}  // namespace

extern "C" {

ct_status ct_binary(int op, ct_tensor a, ct_tensor b, ct_tensor *out) {
    CT_PROTECT(*out = wrap(binary(op, a->tensor, b->tensor)))
}

ct_status ct_binary_scalar(int op, ct_tensor a, double s, ct_tensor *out) {
    CT_PROTECT(*out = wrap(binary_scalar(op, a->tensor, ctorch::scalar_for(a->tensor, s))))
}

ct_status ct_scalar_binary(int op, double s, ct_tensor a, ct_tensor *out) {
    CT_PROTECT({
        at::Scalar scalar = ctorch::scalar_for(a->tensor, s);
        switch (op) {
        case CT_SUB: *out = wrap(at::rsub(a->tensor, scalar)); break;
        case CT_DIV: *out = wrap(a->tensor.reciprocal() * scalar); break;
        case CT_POW: *out = wrap(at::pow(scalar, a->tensor)); break;
        default: *out = wrap(binary_scalar(op, a->tensor, scalar));  // commutative ones
        }
    })
}

ct_status ct_unary(int op, ct_tensor a, ct_tensor *out) { CT_PROTECT(*out = wrap(unary(op, a->tensor))) }

ct_status ct_where(ct_tensor condition, ct_tensor a, ct_tensor b, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::where(condition->tensor, a->tensor, b->tensor)))
}

ct_status ct_clamp(ct_tensor t, bool has_min, double min, bool has_max, double max, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = t->tensor;
        c10::optional<at::Scalar> lo = has_min ? c10::optional<at::Scalar>(ctorch::scalar_for(x, min)) : c10::nullopt;
        c10::optional<at::Scalar> hi = has_max ? c10::optional<at::Scalar>(ctorch::scalar_for(x, max)) : c10::nullopt;
        *out = wrap(at::clamp(t->tensor, lo, hi));
    })
}

// ---- reductions ----------------------------------------------------------------------------

ct_status ct_reduce(int op, ct_tensor t, const int64_t *d, int ndims, bool keepdim, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = t->tensor;
        at::IntArrayRef ds = dims(d, ndims);
        switch (op) {
        case CT_SUM: *out = wrap(ndims ? x.sum(ds, keepdim) : x.sum()); break;
        case CT_MEAN: *out = wrap(ndims ? x.mean(ds, keepdim) : x.mean()); break;
        case CT_AMAX: *out = wrap(x.amax(ds, keepdim)); break;
        case CT_AMIN: *out = wrap(x.amin(ds, keepdim)); break;
        default: TORCH_CHECK(false, "unknown reduction code ", op);
        }
    })
}

ct_status ct_var(ct_tensor t, const int64_t *d, int ndims, bool unbiased, bool keepdim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(ndims ? t->tensor.var(dims(d, ndims), unbiased, keepdim) : t->tensor.var(unbiased)))
}

ct_status ct_var_mean(ct_tensor t, const int64_t *d, int ndims, bool unbiased, bool keepdim, ct_tensor *var,
                      ct_tensor *mean) {
    CT_PROTECT({
        auto result = at::var_mean(t->tensor, dims(d, ndims), unbiased, keepdim);
        *var = wrap(std::get<0>(result));
        *mean = wrap(std::get<1>(result));
    })
}

ct_status ct_argmax(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.argmax(dim, keepdim)))
}

ct_status ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
    CT_PROTECT({
        auto result = t->tensor.max(dim, keepdim);
        *values = wrap(std::get<0>(result));
        *indices = wrap(std::get<1>(result));
    })
}

ct_status ct_norm(ct_tensor t, double p, const int64_t *d, int ndims, bool keepdim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::norm(t->tensor, p, dims(d, ndims), keepdim)))
}

ct_status ct_bincount(ct_tensor t, int64_t minlength, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::bincount(t->tensor, c10::nullopt, minlength)))
}

ct_status ct_matmul(ct_tensor a, ct_tensor b, ct_tensor *out) { CT_PROTECT(*out = wrap(at::matmul(a->tensor, b->tensor))) }

// ---- neural-network functions --------------------------------------------------------------

ct_status ct_conv2d(ct_tensor input, ct_tensor weight, ct_tensor bias, const int64_t stride[2],
                    const int64_t padding[2], const int64_t dilation[2], int64_t groups, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::conv2d(input->tensor, weight->tensor, ctorch::optional(bias), dims(stride, 2),
                                      dims(padding, 2), dims(dilation, 2), groups)))
}

ct_status ct_conv_transpose2d(ct_tensor input, ct_tensor weight, ct_tensor bias, const int64_t stride[2],
                              const int64_t padding[2], const int64_t output_padding[2], int64_t groups,
                              const int64_t dilation[2], ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::conv_transpose2d(input->tensor, weight->tensor, ctorch::optional(bias),
                                                dims(stride, 2), dims(padding, 2), dims(output_padding, 2), groups,
                                                dims(dilation, 2))))
}

ct_status ct_batch_norm(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor running_mean,
                        ct_tensor running_var, bool training, double momentum, double eps, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::batch_norm(input->tensor, ctorch::optional(weight), ctorch::optional(bias),
                                          ctorch::optional(running_mean), ctorch::optional(running_var), training,
                                          momentum, eps, /*cudnn_enabled=*/true)))
}

ct_status ct_batch_norm_update_stats(ct_tensor input, ct_tensor running_mean, ct_tensor running_var,
                                     double momentum) {
    CT_PROTECT({
        ctorch::check_running_statistics(input->tensor, running_mean->tensor, running_var->tensor);
        at::batch_norm_update_stats(input->tensor, running_mean->tensor, running_var->tensor, momentum);
        ctorch::mark_written(running_mean->tensor, running_var->tensor);
    })
}

ct_status ct_prelu(ct_tensor input, ct_tensor weight, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::prelu(input->tensor, weight->tensor)))
}

ct_status ct_max_pool2d(ct_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                        const int64_t dilation[2], bool ceil_mode, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::max_pool2d(input->tensor, dims(kernel, 2), dims(stride, 2), dims(padding, 2),
                                          dims(dilation, 2), ceil_mode)))
}

ct_status ct_avg_pool2d(ct_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                        bool ceil_mode, bool count_include_pad, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::avg_pool2d(input->tensor, dims(kernel, 2), dims(stride, 2), dims(padding, 2),
                                          ceil_mode, count_include_pad)))
}

ct_status ct_upsample_bilinear2d(ct_tensor input, int64_t height, int64_t width, bool align_corners, ct_tensor *out) {
    CT_PROTECT({
        int64_t size[2] = {height, width};
        *out = wrap(at::upsample_bilinear2d(input->tensor, dims(size, 2), align_corners));
    })
}

ct_status ct_upsample_nearest2d(ct_tensor input, int64_t height, int64_t width, ct_tensor *out) {
    CT_PROTECT({
        int64_t size[2] = {height, width};
        *out = wrap(at::upsample_nearest2d(input->tensor, dims(size, 2)));
    })
}

ct_status ct_upsample_bicubic2d(ct_tensor input, int64_t height, int64_t width, bool align_corners, ct_tensor *out) {
    CT_PROTECT({
        int64_t size[2] = {height, width};
        *out = wrap(at::upsample_bicubic2d(input->tensor, dims(size, 2), align_corners));
    })
}

ct_status ct_softmax(ct_tensor t, int64_t dim, ct_tensor *out) { CT_PROTECT(*out = wrap(at::softmax(t->tensor, dim))) }

ct_status ct_log_softmax(ct_tensor t, int64_t dim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::log_softmax(t->tensor, dim)))
}

ct_status ct_normalize(ct_tensor t, double p, int64_t dim, double eps, ct_tensor *out) {
    CT_PROTECT({
        int64_t d[1] = {dim};
        at::Tensor denom = at::norm(t->tensor, p, dims(d, 1), /*keepdim=*/true).clamp_min(eps);
        *out = wrap(t->tensor / denom.expand_as(t->tensor));
    })
}

ct_status ct_nll_loss(ct_tensor log_probs, ct_tensor target, int64_t ignore_index, bool mean, ct_tensor *out) {
    CT_PROTECT({
        int64_t reduction = mean ? at::Reduction::Mean : at::Reduction::Sum;
        *out = wrap(at::nll_loss_nd(log_probs->tensor, target->tensor, c10::nullopt, reduction, ignore_index));
    })
}

}  // extern "C"
