// The shim's own parallel loops, on the OpenMP threads that libtorch's kernels use.
//
// libtorch's `at::parallel_for` is a header template whose parallel branch is an
// `#pragma omp parallel` compiled into the caller. The Swift toolchain's clang generates
// OpenMP code only for LLVM's runtime (libomp), while libtorch runs on GCC's libgomp:
// compiled here, `at::parallel_for` quietly runs on one thread. A second OpenMP runtime
// would start a second pool of threads competing for the same cores, so the shim calls
// libgomp's entry point `GOMP_parallel` itself, which is what GCC emits for that pragma. It
// is looked up in the process rather than linked, so that whichever libgomp libtorch loaded
// (Debian's, or the renamed copy a PyTorch wheel ships) is the one used; where there is none
// (a libtorch built on another threading backend) the loops run on the calling thread.
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include "internal.h"

namespace {

/// libgomp's entry points, or null where the process has no libgomp.
struct OpenMP {
    using Parallel = void (*)(void (*)(void *), void *, unsigned, unsigned);
    using Query = int (*)(void);
    Parallel parallel = nullptr;
    Query thread_num = nullptr;
    Query num_threads = nullptr;

    OpenMP() {
        const auto start = reinterpret_cast<Parallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
        thread_num = reinterpret_cast<Query>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
        num_threads = reinterpret_cast<Query>(dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
        if (thread_num != nullptr && num_threads != nullptr) parallel = start;
    }
};

const OpenMP &openmp() {
    static const OpenMP runtime;
    return runtime;
}

struct Loop {
    int64_t begin, end, grain;
    const std::function<void(int64_t, int64_t)> *body;
    const OpenMP *runtime;
    std::atomic_flag failed = ATOMIC_FLAG_INIT;
    std::exception_ptr error;
};

int64_t divide_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// One thread's share: the same split as libtorch's own loops, one contiguous range per
/// thread, no more threads than ranges of `grain` iterations.
void run_share(void *data) {
    auto &loop = *static_cast<Loop *>(data);
    const int64_t count = loop.end - loop.begin;
    const int64_t threads = std::min<int64_t>(loop.runtime->num_threads(), divide_up(count, loop.grain));
    const int64_t chunk = divide_up(count, threads);
    const int64_t first = loop.begin + loop.runtime->thread_num() * chunk;
    if (first >= loop.end) return;
    try {
        (*loop.body)(first, std::min(loop.end, first + chunk));
    } catch (...) {
        if (!loop.failed.test_and_set()) loop.error = std::current_exception();
    }
}

}  // namespace

namespace ctorch {

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)> &body) {
    if (begin >= end) return;
    const auto &runtime = openmp();
    grain = std::max<int64_t>(grain, 1);
    at::internal::lazy_init_num_threads();  // this thread's team size from at::set_num_threads
    if (runtime.parallel == nullptr || end - begin <= grain || at::get_num_threads() <= 1 ||
        at::in_parallel_region()) {
        body(begin, end);
        return;
    }
    Loop loop{begin, end, grain, &body, &runtime};
    runtime.parallel(&run_share, &loop, /*num_threads: the team's default*/ 0, /*flags*/ 0);
    if (loop.error) std::rethrow_exception(loop.error);
}

}  // namespace ctorch

extern "C" int ct_parallel_loop_threads(void) {
    std::mutex lock;
    std::set<std::thread::id> threads;
    ctorch::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) {
        const std::lock_guard<std::mutex> guard(lock);
        threads.insert(std::this_thread::get_id());
    });
    return static_cast<int>(threads.size());
}
