// The shim's own parallel loops, on the OpenMP threads that libtorch's kernels use.
//
// libtorch's `at::parallel_for` is a header template whose parallel branch is an
// `#pragma omp parallel` compiled into the caller, and only where the caller is compiled
// with OpenMP on. The shim is not (Package.swift): the Swift toolchain's clang generates
// OpenMP code only for LLVM's runtime (libomp), while libtorch runs on GCC's libgomp, and a
// second runtime would start a second pool of threads competing for the same cores. So
// `at::parallel_for` takes its serial branch here, and the shim calls libgomp's entry point
// `GOMP_parallel` itself, which is what GCC emits for that pragma. It is looked up in the
// process rather than linked, so that whichever libgomp libtorch loaded (Debian's, or the
// renamed copy a PyTorch wheel ships) is the one used, and its three entry points are all
// taken from that one library. Where libtorch runs on another threading backend, or the
// process has no libgomp, the loops run on the calling thread.
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>

#include "ctorch_internal.h"

namespace {

/// libgomp's entry points, all from the library that defines `GOMP_parallel`; `parallel` is
/// null where libtorch does not run on OpenMP or the process has no libgomp.
struct OpenMP {
    using Parallel = void (*)(void (*)(void *), void *, unsigned, unsigned);
    using Query = int (*)(void);
    Parallel parallel = nullptr;
    Query thread_num = nullptr;
    Query num_threads = nullptr;

    OpenMP() {
#if AT_PARALLEL_OPENMP
        const auto start = reinterpret_cast<Parallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
        Dl_info origin;
        if (start == nullptr || dladdr(reinterpret_cast<void *>(start), &origin) == 0) return;
        void *library = dlopen(origin.dli_fname, RTLD_LAZY | RTLD_NOLOAD);  // already loaded: no new copy
        if (library == nullptr) return;
        thread_num = reinterpret_cast<Query>(dlsym(library, "omp_get_thread_num"));
        num_threads = reinterpret_cast<Query>(dlsym(library, "omp_get_num_threads"));
        if (thread_num != nullptr && num_threads != nullptr) parallel = start;
#endif
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
    std::atomic<int> working{0};  // threads that got a non-empty range
};

/// The most threads that one of the shim's loops ran on since the record was last cleared.
std::atomic<int> most_loop_threads{0};

void record_loop_threads(int threads) {
    int seen = most_loop_threads.load();
    while (threads > seen && !most_loop_threads.compare_exchange_weak(seen, threads)) {
    }
}

int64_t divide_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// One thread's share: the same split as libtorch's own loops, one contiguous range per
/// thread, no more threads than ranges of `grain` iterations.
void run_share(void *data) {
    auto &loop = *static_cast<Loop *>(data);
    const int64_t count = loop.end - loop.begin;
    const int64_t threads = std::min<int64_t>(loop.runtime->num_threads(), divide_up(count, loop.grain));
    const int64_t chunk = divide_up(count, threads);
    const int thread = loop.runtime->thread_num();
    const int64_t first = loop.begin + thread * chunk;
    if (first >= loop.end) return;
    loop.working.fetch_add(1);
    const at::internal::ThreadIdGuard id(thread);  // at::get_thread_num() inside the body
    try {
        (*loop.body)(first, std::min(loop.end, first + chunk));
    } catch (...) {
        if (!loop.failed.test_and_set()) loop.error = std::current_exception();
    }
}

}  // namespace

namespace ctorch {

int parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)> &body) {
    if (begin >= end) return 0;
    const auto &runtime = openmp();
    grain = std::max<int64_t>(grain, 1);
    at::internal::lazy_init_num_threads();  // this thread's team size from at::set_num_threads
    if (runtime.parallel == nullptr || end - begin <= grain || at::get_num_threads() <= 1 ||
        at::in_parallel_region()) {
        record_loop_threads(1);
        body(begin, end);
        return 1;
    }
    Loop loop{begin, end, grain, &body, &runtime};
    runtime.parallel(&run_share, &loop, static_cast<unsigned>(at::get_num_threads()), /*flags*/ 0);
    const int threads = loop.working.load();
    record_loop_threads(threads);
    if (loop.error) std::rethrow_exception(loop.error);
    return threads;
}

int on_every_thread(void (*body)()) {
    const auto &runtime = openmp();
    at::internal::lazy_init_num_threads();
    if (runtime.parallel == nullptr || at::get_num_threads() <= 1 || at::in_parallel_region()) {
        body();
        return 1;
    }
    // The calling thread is the team's first, so the body runs there too.
    runtime.parallel([](void *data) { reinterpret_cast<void (*)()>(data)(); }, reinterpret_cast<void *>(body),
                     static_cast<unsigned>(at::get_num_threads()), /*flags*/ 0);
    return at::get_num_threads();
}

std::vector<double> parallel_sum(int64_t begin, int64_t end, int64_t grain, size_t size,
                                 const std::function<void(int64_t, int64_t, double *)> &body) {
    std::map<int64_t, std::vector<double>> ranges;  // by first index
    std::mutex adding;
    parallel_for(begin, end, grain, [&](int64_t first, int64_t last) {
        std::vector<double> sums(size, 0.0);
        body(first, last, sums.data());
        const std::lock_guard<std::mutex> lock(adding);
        ranges.emplace(first, std::move(sums));
    });
    std::vector<double> total(size, 0.0);
    for (const auto &range : ranges) {
        for (size_t k = 0; k < size; ++k) total[k] += range.second[k];
    }
    return total;
}

}  // namespace ctorch

extern "C" void ct_clear_parallel_loop_record(void) { most_loop_threads.store(0); }

extern "C" int ct_parallel_loop_record(void) { return most_loop_threads.load(); }

extern "C" int ct_parallel_loop_threads(void) { return ctorch::parallel_for(0, 1 << 16, 1, [](int64_t, int64_t) {}); }

extern "C" bool ct_parallel_loops_join_openmp(void) { return openmp().parallel != nullptr; }
