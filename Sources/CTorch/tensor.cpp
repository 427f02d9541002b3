// Tensor lifetime, metadata, creation, conversion, layout, random numbers, in-place
// updates and autograd.
#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include "ctorch_internal.h"

using ctorch::dims;
using ctorch::wrap;

namespace {

at::TensorOptions options(int dtype, int device_type, int device_index) {
    return at::TensorOptions().dtype(ctorch::scalar_type(dtype)).device(ctorch::device(device_type, device_index));
}

at::Tensor require_cpu_contiguous(const at::Tensor &t) { return t.to(at::kCPU).contiguous(); }

}  // namespace

extern "C" {

void ct_tensor_free(ct_tensor t) {
    if (!t) return;
    ctorch::live_tensors.fetch_sub(1, std::memory_order_relaxed);
    delete t;
}

ct_status ct_tensor_from_data(const void *data, const int64_t *sizes, const int64_t *strides, int ndim, int dtype,
                              ct_tensor *out) {
    CT_PROTECT({
        auto opts = at::TensorOptions().dtype(ctorch::scalar_type(dtype));
        void *ptr = const_cast<void *>(data);
        at::Tensor view = strides ? at::from_blob(ptr, dims(sizes, ndim), dims(strides, ndim), opts)
                                  : at::from_blob(ptr, dims(sizes, ndim), opts);
        *out = wrap(view.clone(at::MemoryFormat::Contiguous));
    })
}

ct_status ct_tensor_copy_to(ct_tensor t, void *dst, size_t nbytes) {
    CT_PROTECT({
        at::Tensor c = require_cpu_contiguous(t->tensor);
        size_t expected = c.numel() * c.element_size();
        TORCH_CHECK(expected == nbytes, "copy_to: the tensor holds ", expected, " bytes but the buffer has ",
                    nbytes);
        if (nbytes) std::memcpy(dst, c.data_ptr(), nbytes);
    })
}

ct_status ct_tensor_dim(ct_tensor t, int *out) { CT_PROTECT(*out = static_cast<int>(t->tensor.dim())) }

ct_status ct_tensor_sizes(ct_tensor t, int64_t *sizes, int capacity, int *ndim) {
    CT_PROTECT({
        auto s = t->tensor.sizes();
        *ndim = static_cast<int>(s.size());
        for (int i = 0; i < *ndim && i < capacity; ++i) sizes[i] = s[i];
    })
}

ct_status ct_tensor_strides(ct_tensor t, int64_t *strides, int capacity, int *ndim) {
    CT_PROTECT({
        auto s = t->tensor.strides();
        *ndim = static_cast<int>(s.size());
        for (int i = 0; i < *ndim && i < capacity; ++i) strides[i] = s[i];
    })
}

ct_status ct_tensor_dtype(ct_tensor t, int *out) { CT_PROTECT(*out = static_cast<int>(t->tensor.scalar_type())) }

ct_status ct_tensor_device(ct_tensor t, int *type, int *index) {
    CT_PROTECT({
        auto d = t->tensor.device();
        *type = d.is_cuda() ? CT_CUDA : CT_CPU;
        *index = d.has_index() ? d.index() : 0;
    })
}

ct_status ct_tensor_is_contiguous(ct_tensor t, int memory_format, bool *out) {
    CT_PROTECT(*out = t->tensor.is_contiguous(memory_format == CT_MEMORY_CHANNELS_LAST
                                                  ? at::MemoryFormat::ChannelsLast
                                                  : at::MemoryFormat::Contiguous))
}

ct_status ct_tensor_item_double(ct_tensor t, double *out) { CT_PROTECT(*out = t->tensor.item<double>()) }
ct_status ct_tensor_item_int64(ct_tensor t, int64_t *out) { CT_PROTECT(*out = t->tensor.item<int64_t>()) }

ct_status ct_tensor_description(ct_tensor t, char **out) {
    CT_PROTECT({
        std::ostringstream s;
        s << t->tensor;
        *out = strdup(s.str().c_str());
    })
}

// ---- creation ------------------------------------------------------------------------------

ct_status ct_zeros(const int64_t *sizes, int ndim, int dtype, int dt, int di, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::zeros(dims(sizes, ndim), options(dtype, dt, di))))
}

ct_status ct_ones(const int64_t *sizes, int ndim, int dtype, int dt, int di, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::ones(dims(sizes, ndim), options(dtype, dt, di))))
}

ct_status ct_full(const int64_t *sizes, int ndim, double value, int dtype, int dt, int di, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::full(dims(sizes, ndim), value, options(dtype, dt, di))))
}

ct_status ct_arange(double start, double end, double step, int dtype, int dt, int di, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::arange(start, end, step, options(dtype, dt, di))))
}

ct_status ct_zeros_like(ct_tensor t, ct_tensor *out) { CT_PROTECT(*out = wrap(at::zeros_like(t->tensor))) }

// ---- conversion and layout -----------------------------------------------------------------

ct_status ct_to(ct_tensor t, int dtype, int dt, int di, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.to(ctorch::device(dt, di), ctorch::scalar_type(dtype))))
}

ct_status ct_clone(ct_tensor t, ct_tensor *out) { CT_PROTECT(*out = wrap(t->tensor.clone())) }

ct_status ct_contiguous(ct_tensor t, int memory_format, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.contiguous(memory_format == CT_MEMORY_CHANNELS_LAST
                                                    ? at::MemoryFormat::ChannelsLast
                                                    : at::MemoryFormat::Contiguous)))
}

ct_status ct_reshape(ct_tensor t, const int64_t *sizes, int ndim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.reshape(dims(sizes, ndim))))
}

ct_status ct_permute(ct_tensor t, const int64_t *d, int ndim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.permute(dims(d, ndim))))
}

ct_status ct_transpose(ct_tensor t, int64_t dim0, int64_t dim1, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.transpose(dim0, dim1)))
}

ct_status ct_expand(ct_tensor t, const int64_t *sizes, int ndim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.expand(dims(sizes, ndim))))
}

ct_status ct_squeeze(ct_tensor t, int64_t dim, ct_tensor *out) { CT_PROTECT(*out = wrap(t->tensor.squeeze(dim))) }
ct_status ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.unsqueeze(dim)))
}

ct_status ct_flip(ct_tensor t, const int64_t *d, int ndim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.flip(dims(d, ndim))))
}

ct_status ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.narrow(dim, start, length)))
}

ct_status ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.slice(dim, start, end, step)))
}

ct_status ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) {
    CT_PROTECT(*out = wrap(t->tensor.index_select(dim, index->tensor)))
}

static std::vector<at::Tensor> tensor_list(const ct_tensor *ts, int count) {
    std::vector<at::Tensor> list;
    list.reserve(count);
    for (int i = 0; i < count; ++i) list.push_back(ts[i]->tensor);
    return list;
}

ct_status ct_cat(const ct_tensor *ts, int count, int64_t dim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::cat(tensor_list(ts, count), dim)))
}

ct_status ct_unbind(ct_tensor t, int64_t dim, ct_tensor *out, int capacity, int *count) {
    CT_PROTECT({
        const auto parts = at::unbind(t->tensor, dim);
        TORCH_CHECK(static_cast<int64_t>(parts.size()) <= capacity, "unbind gives ", parts.size(),
                    " tensors, room was made for ", capacity);
        for (size_t i = 0; i < parts.size(); ++i) out[i] = wrap(parts[i]);
        *count = static_cast<int>(parts.size());
    })
}

ct_status ct_stack(const ct_tensor *ts, int count, int64_t dim, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::stack(tensor_list(ts, count), dim)))
}

// ---- random numbers ------------------------------------------------------------------------

ct_status ct_generator_new(uint64_t seed, ct_generator *out) {
    CT_PROTECT({
        *out = new ct_generator_s{at::detail::createCPUGenerator(seed)};
        ctorch::live_generators.fetch_add(1, std::memory_order_relaxed);
    })
}

void ct_generator_free(ct_generator g) {
    if (!g) return;
    ctorch::live_generators.fetch_sub(1, std::memory_order_relaxed);
    delete g;
}

ct_status ct_generator_get_state(ct_generator g, ct_tensor *out) {
    CT_PROTECT({
        std::lock_guard<std::mutex> lock(g->generator.mutex());
        *out = wrap(g->generator.get_state());
    })
}

ct_status ct_generator_set_state(ct_generator g, ct_tensor state) {
    CT_PROTECT({
        std::lock_guard<std::mutex> lock(g->generator.mutex());
        g->generator.set_state(state->tensor);
    })
}

// Random tensors are drawn on the CPU, so a seed gives the same numbers on every device.
ct_status ct_rand_uniform(const int64_t *sizes, int ndim, double low, double high, int dtype, ct_generator g,
                          ct_tensor *out) {
    CT_PROTECT({
        at::Tensor t = at::empty(dims(sizes, ndim), at::TensorOptions().dtype(ctorch::scalar_type(dtype)));
        t.uniform_(low, high, ctorch::optional(g));
        *out = wrap(t);
    })
}

ct_status ct_rand_normal(const int64_t *sizes, int ndim, double mean, double std, int dtype, ct_generator g,
                         ct_tensor *out) {
    CT_PROTECT({
        at::Tensor t = at::empty(dims(sizes, ndim), at::TensorOptions().dtype(ctorch::scalar_type(dtype)));
        t.normal_(mean, std, ctorch::optional(g));
        *out = wrap(t);
    })
}

ct_status ct_bernoulli(ct_tensor p, ct_generator g, ct_tensor *out) {
    CT_PROTECT(*out = wrap(at::bernoulli(p->tensor, ctorch::optional(g))))
}

ct_status ct_bernoulli_scalar(const int64_t *sizes, int ndim, double p, int dtype, ct_generator g, ct_tensor *out) {
    CT_PROTECT({
        at::Tensor t = at::empty(dims(sizes, ndim), at::TensorOptions().dtype(ctorch::scalar_type(dtype)));
        t.bernoulli_(p, ctorch::optional(g));
        *out = wrap(t);
    })
}

// ---- in-place updates ----------------------------------------------------------------------

ct_status ct_add_(ct_tensor self, ct_tensor other, double alpha) {
    // libtorch rejects a floating-point alpha for integer tensors (a step counter, say).
    CT_PROTECT(self->tensor.add_(other->tensor, ctorch::scalar_for(self->tensor, alpha)))
}
ct_status ct_mul_scalar_(ct_tensor self, double s) { CT_PROTECT(self->tensor.mul_(s)) }
ct_status ct_addcmul_(ct_tensor self, ct_tensor a, ct_tensor b, double value) {
    CT_PROTECT(self->tensor.addcmul_(a->tensor, b->tensor, value))
}
ct_status ct_addcdiv_(ct_tensor self, ct_tensor a, ct_tensor b, double value) {
    CT_PROTECT(self->tensor.addcdiv_(a->tensor, b->tensor, value))
}
ct_status ct_copy_(ct_tensor self, ct_tensor src) { CT_PROTECT(self->tensor.copy_(src->tensor)) }
ct_status ct_relu_(ct_tensor self) { CT_PROTECT(self->tensor.relu_()) }
ct_status ct_zero_(ct_tensor self) { CT_PROTECT(self->tensor.zero_()) }
ct_status ct_fill_(ct_tensor self, double value) { CT_PROTECT(self->tensor.fill_(ctorch::scalar_for(self->tensor, value))) }

// ---- autograd ------------------------------------------------------------------------------

ct_status ct_set_requires_grad(ct_tensor t, bool requires_grad) { CT_PROTECT(t->tensor.requires_grad_(requires_grad)) }
ct_status ct_requires_grad(ct_tensor t, bool *out) { CT_PROTECT(*out = t->tensor.requires_grad()) }

ct_status ct_backward(ct_tensor t, ct_tensor grad, bool retain_graph) {
    CT_PROTECT(t->tensor.backward(grad ? grad->tensor : at::Tensor(), retain_graph))
}

ct_status ct_grad(ct_tensor t, ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &g = t->tensor.grad();
        *out = g.defined() ? wrap(g) : nullptr;
    })
}

ct_status ct_zero_grad(ct_tensor t) { CT_PROTECT(t->tensor.mutable_grad().reset()) }

ct_status ct_detach(ct_tensor t, ct_tensor *out) { CT_PROTECT(*out = wrap(t->tensor.detach())) }

ct_status ct_tensor_share(ct_tensor t, ct_tensor *out) { CT_PROTECT(*out = wrap(t->tensor)) }

}  // extern "C"
