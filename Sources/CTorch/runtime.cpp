// Errors, handle counting, threads, devices, grad mode and seeds.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

#include <dlfcn.h>
#include <malloc.h>

#include <climits>
#include <cstring>

#include "ctorch_internal.h"

namespace ctorch {
std::atomic<int64_t> live_tensors{0};
std::atomic<int64_t> live_generators{0};
static thread_local std::string last_error;
void set_error(const std::string &message) { last_error = message; }
}  // namespace ctorch

extern "C" {

const char *ct_last_error(void) { return ctorch::last_error.c_str(); }
int64_t ct_live_tensors(void) { return ctorch::live_tensors.load(); }
int64_t ct_live_generators(void) { return ctorch::live_generators.load(); }

void ct_set_num_threads(int n) {
    try {
        at::set_num_threads(n);
    } catch (...) {
    }
}

int ct_get_num_threads(void) { return at::get_num_threads(); }

// OpenBLAS is looked up by name rather than linked: libtorch reaches it through the generic
// libblas.so.3, which may be another BLAS on another machine.

/// Whether the process's BLAS is OpenBLAS's pthread build: `openblas_get_parallel` is 0 for
/// its serial build, 1 for pthreads and 2 for OpenMP.
static bool pthread_openblas() {
    using Query = int (*)(void);
    const auto parallel = reinterpret_cast<Query>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
    return parallel != nullptr && parallel() == 1;
}

bool ct_set_blas_threads(int n) {
    using SetThreads = void (*)(int);
    const auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (set == nullptr || !pthread_openblas()) return false;
    set(n);
    return true;
}

int ct_blas_threads(void) {
    using GetThreads = int (*)(void);
    const auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    return get == nullptr || !pthread_openblas() ? -1 : get();
}

bool ct_keep_freed_memory(void) {
#ifdef __GLIBC__
    const int largest_mmap_threshold = 32 << 20;  // glibc's ceiling on 64-bit systems
    return mallopt(M_MMAP_THRESHOLD, largest_mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
#else
    return false;
#endif
}

bool ct_allocator_bytes(int64_t *heap, int64_t *mapped) {
#ifdef __GLIBC__
    const struct mallinfo2 info = mallinfo2();
    *heap = static_cast<int64_t>(info.arena);
    *mapped = static_cast<int64_t>(info.hblkhd);
    return true;
#else
    return false;
#endif
}

bool ct_cuda_is_available(void) {
    try {
        return at::hasCUDA();
    } catch (...) {
        return false;
    }
}

ct_status ct_cuda_synchronize(int device_index) {
    CT_PROTECT({
        TORCH_CHECK(at::hasCUDA(), "CUDA is not available: this libtorch has no CUDA or sees no GPU; use the cpu device");
        const auto count = static_cast<int>(at::getNumGPUs());
        TORCH_CHECK(device_index >= 0 && device_index < count, "there is no cuda:", device_index, ": this machine has ",
                    count, " GPU(s), cuda:0 to cuda:", count - 1);
        at::detail::getCUDAHooks().deviceSynchronize(device_index);
    })
}

int ct_cuda_device_count(void) {
    try {
        return at::hasCUDA() ? static_cast<int>(at::getNumGPUs()) : 0;
    } catch (...) {
        return 0;
    }
}

bool ct_grad_enabled(void) { return at::GradMode::is_enabled(); }
void ct_set_grad_enabled(bool enabled) { at::GradMode::set_enabled(enabled); }

ct_status ct_manual_seed(uint64_t seed) { CT_PROTECT(at::manual_seed(seed)) }

const char *ct_version(void) { return TORCH_VERSION; }

void ct_string_free(char *s) { free(s); }

}  // extern "C"
