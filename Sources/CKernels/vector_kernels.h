// Helpers of the shim's vectorised kernels (conv3x3.cpp, pointwise_conv.cpp, conv_transpose2x2.cpp): vectors
// of 8 or 16 floats through the compiler's vector extension, and the instruction sets their
// loops are compiled for, chosen at run time. Not part of the C interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "ckernels.h"

// Every helper here and every kernel body that takes or returns a vector is always inlined, so
// no vector crosses a call whose ABI would differ between the baseline and the AVX2 or AVX-512
// code; the compiler's warning about that ABI does not apply.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif

namespace ctorch::vec {

/// 8 floats: AVX2's register (two SSE registers in the baseline code).
typedef float Vec __attribute__((vector_size(32)));
/// 16 floats: AVX-512's register.
typedef float Vec16 __attribute__((vector_size(64)));
constexpr int64_t kLanes = 8;

/// The number of floats in a vector of type V.
template <class V>
constexpr int64_t lanes_of = sizeof(V) / sizeof(float);

/// A vector's floats from p, any alignment.
template <class V = Vec>
__attribute__((always_inline)) inline V load(const float *p) {
    V v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/// v's floats to p, any alignment.
template <class V>
__attribute__((always_inline)) inline void store(float *p, V v) {
    __builtin_memcpy(p, &v, sizeof v);
}

/// A vector of copies of t.
template <class V = Vec>
__attribute__((always_inline)) inline V splat(float t) {
    V v;
    for (int64_t k = 0; k < lanes_of<V>; ++k) v[k] = t;
    return v;
}

/// The sum of v's lanes, added pairwise (16 lanes: the two halves first).
template <class V>
__attribute__((always_inline)) inline float lane_sum(V v) {
    if constexpr (lanes_of<V> == 16) {
        const Vec low = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
        const Vec high = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
        return lane_sum(low + high);
    } else {
        static_assert(lanes_of<V> == 8, "vectors of 8 or 16 floats");
        const V half = v + __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
        const V quarter = half + __builtin_shufflevector(half, half, 2, 3, 0, 1, 2, 3, 0, 1);
        return quarter[0] + quarter[1];
    }
}

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

}  // namespace ctorch::vec

/// A kernel's loop compiled for AVX2 + FMA, or for AVX-512 (F, VL, DQ, BW) + FMA: call it only
/// where `has_avx2_fma()`, or `has_avx512()`, holds; its baseline twin is the same always-inline
/// body in a plain function (`CT_KERNEL_SETS`). Off x86 every variant is the baseline.
#if defined(__x86_64__) || defined(__i386__)
#define CT_AVX2_FMA __attribute__((target("avx2,fma")))
#define CT_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
namespace ctorch::vec {
inline bool has_avx2_fma() {
    static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return supported;
}
inline bool has_avx512() {
    static const bool supported = has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
                                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                                  __builtin_cpu_supports("avx512bw");
    return supported;
}
}  // namespace ctorch::vec
#else
#define CT_AVX2_FMA
#define CT_AVX512
namespace ctorch::vec {
inline bool has_avx2_fma() { return false; }
inline bool has_avx512() { return false; }
}  // namespace ctorch::vec
#endif

namespace ctorch::vec {
/// The instruction set the kernels run (instruction_set.cpp): the widest the CPU supports unless
/// `ck_use_instruction_set` chose another.
ck_instruction_set instruction_set();

/// An instruction set's vectors and register file: the kernels' register tiles are sized so
/// that their accumulators, inputs and one broadcast weight fit `kRegisters` vectors of type
/// `Vector` with three to spare (the compiler spills accumulators when they do not).
template <class V, int64_t Registers>
struct Isa {
    using Vector = V;
    static constexpr int64_t kLanes = lanes_of<V>, kRegisters = Registers;
    /// Vectors of columns accumulated together per output channel when B output channels are:
    /// B x C accumulators, C input vectors and one broadcast weight, C at most 4.
    template <int64_t B>
    static constexpr int64_t kColumnVectors = std::min<int64_t>(4, (Registers - 4) / (B + 1));
};
/// SSE's 16 registers of 4 floats, each vector two of them.
using Baseline = Isa<Vec, 16>;
/// AVX2's 16 registers of 8 floats.
using Avx2 = Isa<Vec, 16>;
/// AVX-512's 32 registers of 16 floats.
using Avx512 = Isa<Vec16, 32>;

/// The lanes of the vectors of `set`'s code.
inline int64_t lanes(ck_instruction_set set) { return set == CK_AVX512 ? Avx512::kLanes : Avx2::kLanes; }

/// Of `sizes` (largest first), the block that leaves the fewest zero channels in the last block
/// of `count` channels (the first of a tie): 25 channels take blocks of 5, 12 of 4 (or 6 where
/// that is offered).
inline int64_t best_block(int64_t count, std::initializer_list<int64_t> sizes) {
    int64_t best = *sizes.begin();
    for (int64_t block : sizes) {
        if (round_up(count, block) < round_up(count, best)) best = block;
    }
    return best;
}

}  // namespace ctorch::vec

/// Defines `name_generic`, `name_avx2` and `name_avx512`, each calling the always-inline
/// template `body<I>` with `arguments` for I the instruction set's `Isa` (Baseline, Avx2,
/// Avx512), and `name_for(target)`, the one of the three for an instruction set; `parameters`
/// and `arguments` come in parentheses.
#define CT_KERNEL_SETS(name, body, parameters, arguments) \
    void name##_generic parameters { body<ctorch::vec::Baseline> arguments; } \
    CT_AVX2_FMA void name##_avx2 parameters { body<ctorch::vec::Avx2> arguments; } \
    CT_AVX512 void name##_avx512 parameters { body<ctorch::vec::Avx512> arguments; } \
    inline auto name##_for(ck_instruction_set target) { \
        return target == CK_AVX512 ? name##_avx512 : target == CK_AVX2 ? name##_avx2 : name##_generic; \
    }
