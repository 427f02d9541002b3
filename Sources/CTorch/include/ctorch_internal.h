// Shared helpers of the shim's implementation files and of SegTTT's kernels (CKernels), in
// C++. Not part of the C interface, and not in the module Swift imports (module.modulemap).
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "ctorch.h"

struct ct_tensor_s {
    at::Tensor tensor;
};

struct ct_generator_s {
    at::Generator generator;
};

namespace ctorch {

extern std::atomic<int64_t> live_tensors;
extern std::atomic<int64_t> live_generators;
void set_error(const std::string &message);

/// Wraps a libtorch result in a new handle owned by the caller.
inline ct_tensor wrap(at::Tensor t) {
    live_tensors.fetch_add(1, std::memory_order_relaxed);
    return new ct_tensor_s{std::move(t)};
}

/// Runs body(first, last) over [begin, end), split into one contiguous range per thread of
/// libtorch's OpenMP pool, as `at::parallel_for` does in libtorch's own kernels (which cannot
/// be compiled in parallel here: parallel.cpp says why). At most one range per `grain`
/// iterations; serial on one thread, inside a parallel region, or without libgomp. The first
/// exception thrown by a range is rethrown. Returns the number of threads that ran a range.
int parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)> &body);

/// Runs `body` once on the calling thread and once on every other thread of libtorch's
/// OpenMP team (for per-thread CPU state such as MXCSR); returns the threads it ran on.
int on_every_thread(void (*body)());

/// Runs body(first, last, sums) over [begin, end) as `parallel_for` does, each range adding
/// into its own `size` zeroed doubles, and returns their elementwise sum, added in the order
/// of the ranges, so that it does not depend on which thread finished first.
std::vector<double> parallel_sum(int64_t begin, int64_t end, int64_t grain, size_t size,
                                 const std::function<void(int64_t, int64_t, double *)> &body);

/// A float32 tensor of `sizes` (with `like`'s device) holding the first values of `sums`, the
/// double-precision sums a kernel's weight gradient is reduced in.
inline at::Tensor from_sums(const std::vector<double> &sums, at::IntArrayRef sizes, const at::Tensor &like) {
    at::Tensor t = at::empty(sizes, like.options().dtype(at::kFloat));
    std::copy(sums.begin(), sums.begin() + t.numel(), t.data_ptr<float>());
    return t;
}

/// Throws unless every defined tensor of `tensors` is a float32 CPU one and `bias` is
/// undefined or holds `outputs` values; `kernel` names the kernel in the message.
inline void check_kernel_operands(const char *kernel, std::initializer_list<const at::Tensor *> tensors,
                                  const at::Tensor &bias, int64_t outputs) {
    TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == outputs), kernel, " needs a bias of ",
                outputs, " values, got ", bias.sizes());
    for (const at::Tensor *t : tensors) {
        TORCH_CHECK(!t->defined() || (t->device().is_cpu() && t->scalar_type() == at::kFloat), kernel,
                    " runs on float32 CPU tensors, got ", t->scalar_type(), " on ", t->device());
    }
}

/// Throws unless `mean` and `var` hold one value per channel of `x` [N, C, ...], C > 0: libtorch's
/// batch_norm_update_stats writes one element per channel without checking the sizes.
inline void check_running_statistics(const at::Tensor &x, const at::Tensor &mean, const at::Tensor &var) {
    TORCH_CHECK(x.dim() >= 2 && x.size(1) > 0, "batch norm statistics need an input [N, C, ...] with C > 0, got ",
                x.sizes());
    for (const at::Tensor *stat : {&mean, &var}) {
        TORCH_CHECK(stat->dim() == 1 && stat->size(0) == x.size(1), "batch norm statistics: the running ones must have ",
                    x.size(1), " elements, one per input channel, got ", stat->sizes());
    }
}

/// Bumps the versions of running statistics written in place, as an in-place op does (libtorch's
/// schema of batch_norm_update_stats does not say it writes them), so that a graph which saved
/// them fails its backward instead of using the new values.
inline void mark_written(at::Tensor &mean, at::Tensor &var) {
    mean.unsafeGetTensorImpl()->bump_version();
    var.unsafeGetTensorImpl()->bump_version();
}

inline at::IntArrayRef dims(const int64_t *p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

inline at::Device device(int type, int index) {
    return type == CT_CUDA ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index)) : at::Device(at::kCPU);
}

inline at::ScalarType scalar_type(int code) { return static_cast<at::ScalarType>(code); }

/// A scalar operand for `t`: an integer one when `t` has an integer type and the value is
/// whole, so that integer tensors stay integer as in PyTorch (`i + 1` is int64, `i + 1.5`
/// is float).
inline at::Scalar scalar_for(const at::Tensor &t, double value) {
    bool whole = value == static_cast<double>(static_cast<int64_t>(value));
    if (whole && at::isIntegralType(t.scalar_type(), /*includeBool=*/true)) return at::Scalar(static_cast<int64_t>(value));
    return at::Scalar(value);
}

inline c10::optional<at::Tensor> optional(ct_tensor t) {
    return t ? c10::optional<at::Tensor>(t->tensor) : c10::nullopt;
}

inline c10::optional<at::Generator> optional(ct_generator g) {
    return g ? c10::optional<at::Generator>(g->generator) : c10::nullopt;
}

}  // namespace ctorch

/// Runs a body, turning any C++ exception into CT_ERROR with its message kept for
/// ct_last_error(). Every fallible function of the shim is written inside it.
#define CT_PROTECT(...)                                      \
    try {                                                   \
        __VA_ARGS__;                                        \
        return CT_OK;                                       \
    } catch (const c10::Error &e) {                         \
        ctorch::set_error(e.what_without_backtrace());      \
    } catch (const std::exception &e) {                     \
        ctorch::set_error(e.what());                        \
    } catch (...) {                                         \
        ctorch::set_error("unknown C++ exception");         \
    }                                                       \
    return CT_ERROR;
