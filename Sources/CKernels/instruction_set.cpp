// Which instruction set the vectorised kernels run: the widest the CPU supports by default
// (docs/BENCHMARKS.md, "SegTTT's kernels", compares them per CPU), or the one a caller chose.
#include <atomic>

#include "ckernels.h"
#include "vector_kernels.h"

namespace {

ck_instruction_set widest_supported() {
    if (ctorch::vec::has_avx512()) return CK_AVX512;
    return ctorch::vec::has_avx2_fma() ? CK_AVX2 : CK_BASELINE;
}

std::atomic<int> &chosen() {
    static std::atomic<int> set{widest_supported()};
    return set;
}

}  // namespace

ck_instruction_set ctorch::vec::instruction_set() { return static_cast<ck_instruction_set>(chosen().load()); }

extern "C" {

bool ck_cpu_supports(ck_instruction_set set) {
    switch (set) {
        case CK_BASELINE: return true;
        case CK_AVX2: return ctorch::vec::has_avx2_fma();
        case CK_AVX512: return ctorch::vec::has_avx512();
    }
    return false;
}

ck_instruction_set ck_instruction_set_in_use(void) { return ctorch::vec::instruction_set(); }

bool ck_use_instruction_set(ck_instruction_set set) {
    if (!ck_cpu_supports(set)) return false;
    chosen().store(set);
    return true;
}

}  // extern "C"
