/*
 * half.h - IEEE 754 binary16 <-> binary32 conversion for the modules.
 *
 * ggml's GGML_FP16_TO_FP32 / GGML_FP32_TO_FP16: exact widening, and
 * narrowing with round-to-nearest-even (overflow -> inf, NaN stays NaN).
 * With F16C the hardware instructions are used (same results); otherwise
 * plain integer code, so it builds for -march=x86-64 and freestanding.
 */
#ifndef FLUID_HALF_H
#define FLUID_HALF_H

#include <stdint.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

static inline uint32_t fluid_f32_bits(float f)
{
    union { float f; uint32_t u; } v = { .f = f };
    return v.u;
}

static inline float fluid_f32_from_bits(uint32_t u)
{
    union { uint32_t u; float f; } v = { .u = u };
    return v.f;
}

/* binary16 bits -> float (exact). */
static inline float fp16_to_fp32(uint16_t h)
{
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t m = h & 0x3ffu;
    if (e == 0x1f)                       /* inf / NaN (payload kept) */
        return fluid_f32_from_bits(sign | 0x7f800000u | (m << 13));
    if (e == 0) {                        /* zero / subnormal: m * 2^-24 */
        const float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return fluid_f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
#endif
}

/* float -> binary16 bits, round to nearest, ties to even. */
static inline uint16_t fp32_to_fp16(float f)
{
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    const uint32_t x = fluid_f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)                /* NaN: quiet, keep top payload */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x47800000u)               /* >= 65536 (or inf) -> inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {              /* below 2^-14: half subnormal */
        if (ax <= 0x33000000u)           /* <= 2^-25 rounds to zero */
            return (uint16_t)sign;
        const uint32_t e = ax >> 23;     /* 102..112 */
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t s = 126u - e;     /* value = m * 2^-24 >> s */
        uint32_t q = m >> s;
        const uint32_t rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
        if (rem > half || (rem == half && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);     /* q == 0x400 is the smallest normal */
    }
    uint32_t h = (ax - 0x38000000u) >> 13;   /* rebias exponent 127 -> 15 */
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;                             /* may carry into exponent / inf */
    return (uint16_t)(sign | h);
#endif
}

#endif
