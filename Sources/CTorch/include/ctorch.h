/*
 * ctorch: a small C interface over libtorch, written for the Swift `Torch` module.
 *
 * Implementation detail with no stable API. Rules every function follows:
 *  - Tensors and generators are opaque handles. Every handle a function returns is new
 *    and owned by the caller, who frees it with ct_tensor_free / ct_generator_free.
 *  - Every fallible function returns CT_OK or CT_ERROR and passes its results through
 *    out-parameters. On CT_ERROR, ct_last_error() holds libtorch's message (thread-local).
 *  - No C++ exception ever leaves this interface.
 *  - Scalar types use libtorch's c10::ScalarType codes (CT_FLOAT = 6, ...); devices are a
 *    type (CT_CPU, CT_CUDA) and an index.
 */
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor_s *ct_tensor;
typedef struct ct_generator_s *ct_generator;
typedef int ct_status;

enum { CT_OK = 0, CT_ERROR = 1 };
enum {
    CT_UINT8 = 0, CT_INT8 = 1, CT_INT16 = 2, CT_INT32 = 3, CT_INT64 = 4, CT_FLOAT16 = 5,
    CT_FLOAT32 = 6, CT_FLOAT64 = 7, CT_BOOL = 11, CT_BFLOAT16 = 15
};
enum { CT_CPU = 0, CT_CUDA = 1 };
enum { CT_MEMORY_CONTIGUOUS = 0, CT_MEMORY_CHANNELS_LAST = 1 };

/* ---- errors, bookkeeping, runtime ---------------------------------------------------- */
/** The message of the last failed call on this thread (empty when none). */
const char *ct_last_error(void);
/** Number of tensor handles alive now (for leak tests). */
int64_t ct_live_tensors(void);
/** Number of generator handles alive now (for leak tests). */
int64_t ct_live_generators(void);
void ct_set_num_threads(int n);
int ct_get_num_threads(void);
/** Sets flush-to-zero and denormals-are-zero (MXCSR) on the calling thread and every thread
 *  of libtorch's OpenMP team; false, doing nothing, on CPUs other than x86. */
bool ct_set_flush_denormals(bool on);
/** Whether the calling thread flushes denormals. */
bool ct_flush_denormals(void);
/** The threads of the calling thread's OpenMP team (itself included) that flush denormals. */
int ct_threads_flushing_denormals(void);
/** Sets the thread count of the BLAS libtorch calls for matrix products, where that BLAS is
 *  the pthread build of OpenBLAS (found in the process by `openblas_get_parallel`); returns
 *  false, doing nothing, for any other BLAS, and for OpenBLAS's OpenMP build, whose setter
 *  would set the calling thread's OpenMP team size, libtorch's own, as well. */
bool ct_set_blas_threads(int n);
/** The pthread OpenBLAS's thread count, or -1 where the process's BLAS is another one. */
int ct_blas_threads(void);
/** Makes glibc's malloc keep freed blocks for reuse: blocks up to 32 MiB come from the heap
 *  instead of their own mappings, and the heap's top is never returned to the system. Returns
 *  false, doing nothing, where the C library is not glibc. */
bool ct_keep_freed_memory(void);
/** glibc's bytes in its main heap (`mallinfo2().arena`) and in blocks mapped on their own
 *  (`hblkhd`); false where the C library is not glibc. */
bool ct_allocator_bytes(int64_t *heap, int64_t *mapped);
/** How many threads one of the shim's own parallel loops (fused kernels) runs on now. */
int ct_parallel_loop_threads(void);
/** Whether the shim's loops join libtorch's OpenMP team: libtorch runs on OpenMP and the
 *  process has libgomp's entry points; otherwise they run on the calling thread. */
bool ct_parallel_loops_join_openmp(void);
/** Clears the record read by `ct_parallel_loop_record`. */
void ct_clear_parallel_loop_record(void);
/** The most threads that any of the shim's parallel loops has run on since the record was
 *  last cleared (0 where none ran). */
int ct_parallel_loop_record(void);
/** Starts libtorch's CPU operator profiler for the operators this thread runs (and those of
 *  tasks it hands to libtorch's inter-op threads; work on OpenMP's threads inside an operator
 *  counts in that operator's time), recording each operator's input sizes with
 *  `record_shapes`. */
ct_status ct_profiler_start(bool record_shapes);
/** Stops the profiler and summarises what ran since `ct_profiler_start`: one line per
 *  operator or autograd node name (followed by its input sizes, "[2,20,360,480]", where they
 *  were recorded), "name\tcalls\ttotal_us\tself_us", by self time (time outside the
 *  profiled ranges nested in it) from the largest; freed with ct_string_free. */
ct_status ct_profiler_stop(char **out);
bool ct_cuda_is_available(void);
int ct_cuda_device_count(void);
/** Waits for every kernel queued on CUDA device `device_index` to finish. */
ct_status ct_cuda_synchronize(int device_index);
/** Whether autograd records operations on this thread. */
bool ct_grad_enabled(void);
void ct_set_grad_enabled(bool enabled);
ct_status ct_manual_seed(uint64_t seed);
/** libtorch's version string, e.g. "1.13.0". */
const char *ct_version(void);

/* ---- tensor lifetime and metadata ------------------------------------------------------ */
void ct_tensor_free(ct_tensor t);
/** Copies `nbytes` of `data` (laid out by `sizes`/`strides` in elements) into a new CPU tensor. */
ct_status ct_tensor_from_data(const void *data, const int64_t *sizes, const int64_t *strides, int ndim,
                              int dtype, ct_tensor *out);
/** Copies the tensor's elements, in row-major order, to `dst` (`nbytes` must equal numel * element size). */
ct_status ct_tensor_copy_to(ct_tensor t, void *dst, size_t nbytes);
ct_status ct_tensor_dim(ct_tensor t, int *out);
/** Writes up to `capacity` sizes; `*ndim` receives the true rank. */
ct_status ct_tensor_sizes(ct_tensor t, int64_t *sizes, int capacity, int *ndim);
ct_status ct_tensor_strides(ct_tensor t, int64_t *strides, int capacity, int *ndim);
ct_status ct_tensor_dtype(ct_tensor t, int *out);
ct_status ct_tensor_device(ct_tensor t, int *type, int *index);
ct_status ct_tensor_is_contiguous(ct_tensor t, int memory_format, bool *out);
ct_status ct_tensor_item_double(ct_tensor t, double *out);
ct_status ct_tensor_item_int64(ct_tensor t, int64_t *out);
/** A printable description; the caller frees it with ct_string_free. */
ct_status ct_tensor_description(ct_tensor t, char **out);
void ct_string_free(char *s);

/* ---- creation ---------------------------------------------------------------------------- */
ct_status ct_zeros(const int64_t *sizes, int ndim, int dtype, int device_type, int device_index, ct_tensor *out);
ct_status ct_ones(const int64_t *sizes, int ndim, int dtype, int device_type, int device_index, ct_tensor *out);
ct_status ct_full(const int64_t *sizes, int ndim, double value, int dtype, int device_type, int device_index,
                  ct_tensor *out);
ct_status ct_arange(double start, double end, double step, int dtype, int device_type, int device_index,
                    ct_tensor *out);
ct_status ct_zeros_like(ct_tensor t, ct_tensor *out);

/* ---- conversion and layout --------------------------------------------------------------- */
ct_status ct_to(ct_tensor t, int dtype, int device_type, int device_index, ct_tensor *out);
ct_status ct_clone(ct_tensor t, ct_tensor *out);
ct_status ct_contiguous(ct_tensor t, int memory_format, ct_tensor *out);
ct_status ct_reshape(ct_tensor t, const int64_t *sizes, int ndim, ct_tensor *out);
ct_status ct_permute(ct_tensor t, const int64_t *dims, int ndim, ct_tensor *out);
ct_status ct_transpose(ct_tensor t, int64_t dim0, int64_t dim1, ct_tensor *out);
ct_status ct_expand(ct_tensor t, const int64_t *sizes, int ndim, ct_tensor *out);
ct_status ct_squeeze(ct_tensor t, int64_t dim, ct_tensor *out);
ct_status ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out);
ct_status ct_flip(ct_tensor t, const int64_t *dims, int ndim, ct_tensor *out);
ct_status ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out);
ct_status ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ct_tensor *out);
ct_status ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out);
ct_status ct_cat(const ct_tensor *ts, int count, int64_t dim, ct_tensor *out);
ct_status ct_stack(const ct_tensor *ts, int count, int64_t dim, ct_tensor *out);
/** The views along `dim`, one per index (`*count` of them, at most `capacity`), into `out`. */
ct_status ct_unbind(ct_tensor t, int64_t dim, ct_tensor *out, int capacity, int *count);

/* ---- elementwise ------------------------------------------------------------------------- */
enum {
    CT_ADD = 0, CT_SUB = 1, CT_MUL = 2, CT_DIV = 3, CT_POW = 4, CT_EQ = 5, CT_NE = 6, CT_LT = 7, CT_LE = 8,
    CT_GT = 9, CT_GE = 10, CT_MAXIMUM = 11, CT_MINIMUM = 12, CT_LOGICAL_AND = 13, CT_LOGICAL_OR = 14
};
enum {
    CT_NEG = 0, CT_EXP = 1, CT_LOG = 2, CT_SQRT = 3, CT_ABS = 4, CT_RELU = 5, CT_SIGMOID = 6, CT_TANH = 7,
    CT_RSQRT = 8, CT_LOGICAL_NOT = 9, CT_FLOOR = 10, CT_ISFINITE = 11
};
/** Tensor-tensor operation `op` (CT_ADD ...), with broadcasting. */
ct_status ct_binary(int op, ct_tensor a, ct_tensor b, ct_tensor *out);
/** Tensor-scalar operation `op`: `a op s`. */
ct_status ct_binary_scalar(int op, ct_tensor a, double s, ct_tensor *out);
/** Scalar-tensor operation `op`: `s op a` (for s - a, s / a, s ** a). */
ct_status ct_scalar_binary(int op, double s, ct_tensor a, ct_tensor *out);
ct_status ct_unary(int op, ct_tensor a, ct_tensor *out);
ct_status ct_where(ct_tensor condition, ct_tensor a, ct_tensor b, ct_tensor *out);
/** Clamps to [min, max]; a bound is ignored when its has_ flag is false. */
ct_status ct_clamp(ct_tensor t, bool has_min, double min, bool has_max, double max, ct_tensor *out);

/* ---- reductions -------------------------------------------------------------------------- */
enum { CT_SUM = 0, CT_MEAN = 1, CT_AMAX = 2, CT_AMIN = 3 };
/** Reduction `op` over `dims` (all dims when ndims == 0). */
ct_status ct_reduce(int op, ct_tensor t, const int64_t *dims, int ndims, bool keepdim, ct_tensor *out);
ct_status ct_var(ct_tensor t, const int64_t *dims, int ndims, bool unbiased, bool keepdim, ct_tensor *out);
/* Variance and mean over dims in one pass (torch.var_mean). */
ct_status ct_var_mean(ct_tensor t, const int64_t *dims, int ndims, bool unbiased, bool keepdim, ct_tensor *var,
                      ct_tensor *mean);
ct_status ct_argmax(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *out);
ct_status ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices);
ct_status ct_norm(ct_tensor t, double p, const int64_t *dims, int ndims, bool keepdim, ct_tensor *out);
ct_status ct_bincount(ct_tensor t, int64_t minlength, ct_tensor *out);
ct_status ct_matmul(ct_tensor a, ct_tensor b, ct_tensor *out);

/* ---- neural-network functions ------------------------------------------------------------ */
ct_status ct_conv2d(ct_tensor input, ct_tensor weight, ct_tensor bias /* nullable */, const int64_t stride[2],
                    const int64_t padding[2], const int64_t dilation[2], int64_t groups, ct_tensor *out);
ct_status ct_conv_transpose2d(ct_tensor input, ct_tensor weight, ct_tensor bias /* nullable */,
                              const int64_t stride[2], const int64_t padding[2], const int64_t output_padding[2],
                              int64_t groups, const int64_t dilation[2], ct_tensor *out);
/** Functional batch norm; every tensor but input may be null. In training mode with running
 *  statistics given, they are updated in place with `momentum`, as torch.nn.functional.batch_norm. */
ct_status ct_batch_norm(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor running_mean,
                        ct_tensor running_var, bool training, double momentum, double eps, ct_tensor *out);
/** Per-channel batch statistics of input [N, C, ...] folded into the running ones in place:
 *  running = momentum * batch + (1 - momentum) * running, with the unbiased batch variance
 *  (libtorch's batch_norm_update_stats); nothing is normalised. */
ct_status ct_batch_norm_update_stats(ct_tensor input, ct_tensor running_mean, ct_tensor running_var,
                                     double momentum);
ct_status ct_prelu(ct_tensor input, ct_tensor weight, ct_tensor *out);
ct_status ct_max_pool2d(ct_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                        const int64_t dilation[2], bool ceil_mode, ct_tensor *out);
ct_status ct_avg_pool2d(ct_tensor input, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                        bool ceil_mode, bool count_include_pad, ct_tensor *out);
ct_status ct_upsample_bilinear2d(ct_tensor input, int64_t height, int64_t width, bool align_corners,
                                 ct_tensor *out);
ct_status ct_upsample_nearest2d(ct_tensor input, int64_t height, int64_t width, ct_tensor *out);
ct_status ct_upsample_bicubic2d(ct_tensor input, int64_t height, int64_t width, bool align_corners,
                                ct_tensor *out);
ct_status ct_softmax(ct_tensor t, int64_t dim, ct_tensor *out);
ct_status ct_log_softmax(ct_tensor t, int64_t dim, ct_tensor *out);
/** x / max(||x||_p over dim, eps), as torch.nn.functional.normalize. */
ct_status ct_normalize(ct_tensor t, double p, int64_t dim, double eps, ct_tensor *out);
/** Mean (or summed) negative log-likelihood of log-probabilities [N, C, ...] against int64 targets. */
ct_status ct_nll_loss(ct_tensor log_probs, ct_tensor target, int64_t ignore_index, bool mean, ct_tensor *out);

/* ---- random numbers ---------------------------------------------------------------------- */
ct_status ct_generator_new(uint64_t seed, ct_generator *out);
void ct_generator_free(ct_generator g);
ct_status ct_generator_get_state(ct_generator g, ct_tensor *out);
ct_status ct_generator_set_state(ct_generator g, ct_tensor state);
/** Uniform on [low, high); `g` may be null for the global generator. */
ct_status ct_rand_uniform(const int64_t *sizes, int ndim, double low, double high, int dtype, ct_generator g,
                          ct_tensor *out);
ct_status ct_rand_normal(const int64_t *sizes, int ndim, double mean, double std, int dtype, ct_generator g,
                         ct_tensor *out);
/** Draws 0/1 elementwise with the probabilities in `p`. */
ct_status ct_bernoulli(ct_tensor p, ct_generator g, ct_tensor *out);
ct_status ct_bernoulli_scalar(const int64_t *sizes, int ndim, double p, int dtype, ct_generator g, ct_tensor *out);

/* ---- in-place updates (optimizers, state loading) ---------------------------------------- */
/** self += alpha * other */
ct_status ct_add_(ct_tensor self, ct_tensor other, double alpha);
ct_status ct_mul_scalar_(ct_tensor self, double s);
/** self += value * a * b */
ct_status ct_addcmul_(ct_tensor self, ct_tensor a, ct_tensor b, double value);
/** self += value * a / b */
ct_status ct_addcdiv_(ct_tensor self, ct_tensor a, ct_tensor b, double value);
ct_status ct_copy_(ct_tensor self, ct_tensor src);
/** self = max(self, 0); recorded by autograd like torch.relu_ (the forward of a layer may use it
 *  on a fresh intermediate whose producer does not keep it for its backward). */
ct_status ct_relu_(ct_tensor self);
ct_status ct_zero_(ct_tensor self);
ct_status ct_fill_(ct_tensor self, double value);

/* ---- autograd ---------------------------------------------------------------------------- */
ct_status ct_set_requires_grad(ct_tensor t, bool requires_grad);
ct_status ct_requires_grad(ct_tensor t, bool *out);
/** Backpropagates from `t`; `grad` may be null for a scalar `t`. */
ct_status ct_backward(ct_tensor t, ct_tensor grad, bool retain_graph);
/** The accumulated gradient, or *out = NULL when there is none. */
ct_status ct_grad(ct_tensor t, ct_tensor *out);
/** Drops the accumulated gradient (as zero_grad(set_to_none=True)). */
ct_status ct_zero_grad(ct_tensor t);
ct_status ct_detach(ct_tensor t, ct_tensor *out);
/** A second handle to the same tensor, autograd history included (for handing a Swift
 *  tensor back to libtorch, which frees the handle). */
ct_status ct_tensor_share(ct_tensor t, ct_tensor *out);

/* ---- TorchScript modules (script_module.cpp) --------------------------------------------- */
typedef struct ct_script_module_s *ct_script_module;
/** Asked by every BatchNorm call that `ct_script_module_redirect_batch_norm` redirected:
 *  normalise `input` (a new handle the callee frees) as layer `layer` of model `model`, then,
 *  when `slope` is not NULL (a new handle too: the graph applied PReLU to the result), apply
 *  PReLU with that slope; return a new handle in `out`. On CT_ERROR the message set by
 *  `ct_set_last_error` becomes the forward pass's error. */
typedef ct_status (*ct_batch_norm_callback)(int64_t model, int64_t layer, ct_tensor input, ct_tensor slope,
                                            ct_tensor *out);
/** Sets the process's one BatchNorm callback (NULL: redirected calls run aten::batch_norm). */
void ct_set_batch_norm_callback(ct_batch_norm_callback callback);
/** Asked by every convolution `ct_script_module_redirect_convolutions` redirected: a 2-d
 *  convolution (transposed or not) of `input` by `weight` and `bias` (NULL: none), new handles
 *  the callee frees; `params` = stride h, w, padding h, w, dilation h, w, groups, output
 *  padding h, w. Returns a new handle in `out`. */
typedef ct_status (*ct_convolution_callback)(bool transposed, ct_tensor input, ct_tensor weight, ct_tensor bias,
                                             const int64_t *params, ct_tensor *out);
/** Sets the process's one convolution callback (NULL: redirected calls run libtorch's). */
void ct_set_convolution_callback(ct_convolution_callback callback);
/** Inlines the forward graph and replaces its 2-d convolutions (aten::conv2d with integer
 *  padding, aten::conv_transpose2d, a trace's aten::_convolution) by calls of the
 *  convolution callback; `count` says how many. */
ct_status ct_script_module_redirect_convolutions(ct_script_module m, int64_t *count);
/** Sets this thread's ct_last_error() text (for callbacks that fail). */
void ct_set_last_error(const char *message);
/** Number of script module handles alive now (for leak tests). */
int64_t ct_live_script_modules(void);
/** Loads a file saved by torch.jit.save on the CPU. A file of a newer file format version
 *  than this libtorch reads, or one that uses operators it does not know, fails with a
 *  message naming both versions and the fix. */
ct_status ct_script_module_load(const char *path, ct_script_module *out);
void ct_script_module_free(ct_script_module m);
/** "name\ttype\n" per submodule, depth first, the root first with name "". */
ct_status ct_script_module_submodules(ct_script_module m, char **out);
/** The parameters (or buffers) in state-dict order: `count` is set; when `capacity` >= it,
 *  `tensors` receives new handles sharing the module's tensors and `names` their dotted
 *  names, one a line (freed with ct_string_free); otherwise *names = NULL. */
ct_status ct_script_module_tensors(ct_script_module m, bool buffers, char **names, ct_tensor *tensors, int capacity,
                                   int *count);
ct_status ct_script_module_train(ct_script_module m, bool on);
ct_status ct_script_module_to(ct_script_module m, int device_type, int device_index);
/** Runs forward(input) unoptimised (operator by operator, as eager PyTorch) and returns the
 *  logits: the output itself (key NULL, index < 0), element `index` of a tuple or list, or
 *  entry `key` of a dict. An output of another form fails with a description of it. */
ct_status ct_script_module_forward(ct_script_module m, ct_tensor input, const char *key, int64_t index,
                                   ct_tensor *out);
/** Runs forward(input) and describes what it returned ("dict (out: tensor [1, 21, 64, 64])"). */
ct_status ct_script_module_describe_output(ct_script_module m, ct_tensor input, char **out);
/** The forward method's schema, "forward(__torch__.Net self, Tensor x) -> Tensor". */
ct_status ct_script_module_schema(ct_script_module m, char **out);
/** Counts over the inlined forward graph: nodes, BatchNorm calls, whether it reads a
 *  module's `training` attribute (scripted code does; a trace fixed it) and has control flow. */
ct_status ct_script_module_graph_summary(ct_script_module m, int64_t *nodes, int64_t *batch_norms,
                                         bool *reads_training, bool *control_flow);
/** Inlines the forward graph and replaces every aten::batch_norm call whose running
 *  statistics are buffers of a submodule and whose eps and momentum are constants by a call
 *  of the BatchNorm callback with (`model`, layer index). `layers` lists the layers,
 *  "path\teps\tmomentum\n" in order of their index; `kept` counts the calls left as they were. A PReLU that is the only use of
 *  a redirected call's result is passed to the same callback, as ESPNet's fused layers are. */
ct_status ct_script_module_redirect_batch_norm(ct_script_module m, int64_t model, char **layers, int64_t *kept);

#ifdef __cplusplus
}
#endif

#endif /* CTORCH_H */
