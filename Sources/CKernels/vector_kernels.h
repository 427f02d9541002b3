// Helpers of the shim's vectorised kernels (dilated_conv.cpp, conv_transpose2x2.cpp): 8-float
// vectors through the compiler's vector extension, and the AVX2 + FMA variants of their loops.
// Not part of the C interface.
#pragma once

#include <cstdint>

// Every helper here and every kernel body that takes or returns a Vec is always inlined, so
// no Vec crosses a call whose ABI would differ between the baseline and the AVX2 code; the
// compiler's warning about that ABI does not apply.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif

namespace ctorch::vec {

typedef float Vec __attribute__((vector_size(32)));
constexpr int64_t kLanes = 8;

/// 8 floats from p, any alignment.
__attribute__((always_inline)) inline Vec load(const float *p) {
    Vec v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/// v's 8 floats to p, any alignment.
__attribute__((always_inline)) inline void store(float *p, Vec v) { __builtin_memcpy(p, &v, sizeof v); }

/// A vector of 8 copies of t.
__attribute__((always_inline)) inline Vec splat(float t) { return Vec{t, t, t, t, t, t, t, t}; }

/// The sum of v's 8 lanes, added pairwise.
__attribute__((always_inline)) inline float lane_sum(Vec v) {
    const Vec half = v + __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
    const Vec quarter = half + __builtin_shufflevector(half, half, 2, 3, 0, 1, 2, 3, 0, 1);
    return quarter[0] + quarter[1];
}

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

}  // namespace ctorch::vec

/// A kernel's loop compiled for AVX2 + FMA: call it only where `has_avx2_fma()` holds; its
/// baseline twin is the same always-inline body in a plain function (`CT_KERNEL_TWINS`). Off
/// x86 both are the baseline.
#if defined(__x86_64__) || defined(__i386__)
#define CT_AVX2_FMA __attribute__((target("avx2,fma")))
namespace ctorch::vec {
inline bool has_avx2_fma() {
    static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return supported;
}
}  // namespace ctorch::vec
#else
#define CT_AVX2_FMA
namespace ctorch::vec {
inline bool has_avx2_fma() { return false; }
}  // namespace ctorch::vec
#endif

/// Defines `name_avx2` (compiled for AVX2 + FMA) and `name_generic` (for the baseline), both
/// calling the always-inline `body` with `arguments`; `parameters` and `arguments` come in
/// parentheses.
#define CT_KERNEL_TWINS(name, body, parameters, arguments) \
    CT_AVX2_FMA void name##_avx2 parameters { body arguments; } \
    void name##_generic parameters { body arguments; }
