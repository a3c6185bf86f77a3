/*
 * vexpf.h - expf on 8 floats at once (AVX2 + FMA), for swiglu and softmax.
 *
 * Why: those two call expf once per element; through the services table
 * (llvm-libc's correctly rounded expf, one call each) that was 3-4 % of
 * prefill and 1 % of decode.  llama.cpp's CPU backend uses a vector
 * exponential there too (ggml_v_expf), so agreement does not suffer.
 *
 * Method (Cody and Waite, "Software Manual for the Elementary Functions",
 * 1980): x = n ln2 + r with n = round(x log2 e) and ln2 split in two parts
 * so n ln2 is subtracted without rounding error, |r| <= ln2 / 2; e^r by
 * its Taylor series to r^7 / 7! (truncation below 6e-9 relative, under a
 * twentieth of an ulp, on that interval), Horner with fma; then times 2^n
 * built in the exponent field.  Measured against float64 exp rounded to
 * float: within 1 ulp on every 97th float of [-87.33, 88.72]
 * (tests/host/test_ops.py checks swiglu over that whole range and softmax).
 * Outside: x > 88.72 gives +inf, x < -87.33 gives +0 (e^x would be
 * subnormal there: flushed), NaN gives NaN.
 */
#ifndef FLUID_VEXPF_H
#define FLUID_VEXPF_H

#include "mm_common.h"

#if defined(FLUID_AVX2)
FLUID_INLINE __m256 vexpf8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.7228317f), lo = _mm256_set1_ps(-87.3365479f);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* ln2 = 0.693359375 (9 significant bits: n * it is exact) - 2.12194440e-4 */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    /* 1 + r + r^2/2! + ... + r^7/7! */
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* n in [-126, 128]: 2^n as (n + 127) << 23, n = 128 split as 2 * 2^127 */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i big = _mm256_cmpgt_epi32(ni, _mm256_set1_epi32(127));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, _mm256_and_si256(big, _mm256_set1_epi32(1))),
                                                         _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_add_ps(y, y), _mm256_castsi256_ps(big));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));   /* NaN stays NaN */
}
#endif

#endif
