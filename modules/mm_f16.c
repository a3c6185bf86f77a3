/*
 * mm_f16.c - F16 weights x F16 activations (module "mm_f16").
 *
 * dot = sum w[i] * x[i] with both operands widened exactly to float.
 * scalar (ggml_vec_dot_f16 without SIMD): each float product is added to
 *   a double accumulator (ggml_float), rounded to float at the end.
 * AVX2+F16C / AVX-512: per token two accumulators of 8 (16) float lanes
 *   with fma over 16 (32) elements per step, then (acc0 + acc1) and a
 *   horizontal sum; a tail of fewer than 8 elements goes through the
 *   scalar loop into a float.  (ggml uses 4 accumulators.)
 */
#include "half.h"
#include "mm_common.h"

/* y[i] = (float)w[i] (ggml_fp16_to_fp32_row). */
void dequant_f16(const void *w, float *y, int n)
{
    const ggml_half *h = w;
    for (int i = 0; i < n; i++)
        y[i] = fp16_to_fp32(h[i]);
}

/* out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_f16(const void *wv, const uint8_t *x, size_t xs, int n,
                          int nt, float *out)
{
    const ggml_half *w = wv;
    int i = 0;
#if defined(FLUID_AVX512)
    __m512 acc0[MM_NT], acc1[MM_NT];
    for (int t = 0; t < nt; t++)
        acc0[t] = acc1[t] = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        const __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i)));
        const __m512 w1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 16)));
        for (int t = 0; t < nt; t++) {
            const ggml_half *y = (const ggml_half *)(x + t * xs) + i;
            acc0[t] = _mm512_fmadd_ps(w0, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)y)), acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + 16))), acc1[t]);
        }
    }
    float s[MM_NT];
    for (int t = 0; t < nt; t++)
        s[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
#elif defined(FLUID_AVX2)
    __m256 acc0[MM_NT], acc1[MM_NT];
    for (int t = 0; t < nt; t++)
        acc0[t] = acc1[t] = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        for (int t = 0; t < nt; t++) {
            const ggml_half *y = (const ggml_half *)(x + t * xs) + i;
            acc0[t] = _mm256_fmadd_ps(w0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)y)), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(w1, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + 8))), acc1[t]);
        }
    }
    float s[MM_NT];
    for (int t = 0; t < nt; t++)
        s[t] = hsum_f32x8(_mm256_add_ps(acc0[t], acc1[t]));
#endif
#if defined(FLUID_AVX2)
    for (int t = 0; t < nt; t++) {
        const ggml_half *y = (const ggml_half *)(x + t * xs);
        for (int j = i; j < n; j++)
            s[t] += fp16_to_fp32(w[j]) * fp16_to_fp32(y[j]);
        out[t] = s[t];
    }
#else
    double sumd[MM_NT] = {0};
    for (; i < n; i++) {
        const float wi = fp16_to_fp32(w[i]);
        for (int t = 0; t < nt; t++)
            sumd[t] += (double)(wi * fp16_to_fp32(((const ggml_half *)(x + t * xs))[i]));
    }
    for (int t = 0; t < nt; t++)
        out[t] = (float)sumd[t];
#endif
}

/* Y[t][r] = W[r] . X[t] for F16 W and F16 X (ops.h struct matmul_args). */
void mm_f16(const struct matmul_args *a)
{
    MM_LOOP(a, dot_f16);
}
