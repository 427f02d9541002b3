// Flush-to-zero and denormals-are-zero: the x86 MXCSR bits FTZ (15) and DAZ (6), set on the
// calling thread and on every thread of libtorch's OpenMP team. MXCSR is per thread, and a
// thread starts with its creator's, so the team's threads started later (a larger
// at::set_num_threads) take the setting from the thread that sets it.
#include <atomic>

#include "ctorch_internal.h"
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace {

std::atomic<bool> wanted{false};

void apply() {
#if defined(__x86_64__) || defined(__i386__)
    constexpr unsigned bits = 0x8040;  // FTZ | DAZ
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(wanted.load() ? (csr | bits) : (csr & ~bits));
#endif
}

}  // namespace

extern "C" bool ct_set_flush_denormals(bool on) {
#if defined(__x86_64__) || defined(__i386__)
    wanted.store(on);
    ctorch::on_every_thread(&apply);
    return true;
#else
    (void)on;
    return false;
#endif
}

extern "C" bool ct_flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    return (_mm_getcsr() & 0x8040) == 0x8040;
#else
    return false;
#endif
}

extern "C" int ct_threads_flushing_denormals(void) {
    static std::atomic<int> count{0};
    count.store(0);
    ctorch::on_every_thread([] {
        if (ct_flush_denormals()) count.fetch_add(1);
    });
    return count.load();
}
