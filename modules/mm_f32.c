/*
 * mm_f32.c - F32 weights x F32 activations (module "mm_f32").
 *
 * dot = sum w[i] * x[i].
 * scalar (ggml_vec_dot_f32 without SIMD): each float product is added to
 *   a double accumulator (ggml_float), rounded to float at the end.
 * AVX2 / AVX-512: per token two accumulators of 8 (16) float lanes with
 *   fma over 16 (32) elements per step, then (acc0 + acc1) and a
 *   horizontal sum; the tail goes through a scalar float loop.
 */
#include "mm_common.h"

/* y[i] = w[i]. */
void dequant_f32(const void *w, float *y, int n)
{
    const float *f = w;
    for (int i = 0; i < n; i++)
        y[i] = f[i];
}

/* out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_f32(const void *wv, const uint8_t *x, size_t xs, int n,
                          int nt, float *out)
{
    const float *w = wv;
    int i = 0;
#if defined(FLUID_AVX512)
    __m512 acc0[MM_NT], acc1[MM_NT];
    for (int t = 0; t < nt; t++)
        acc0[t] = acc1[t] = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        const __m512 w0 = _mm512_loadu_ps(w + i), w1 = _mm512_loadu_ps(w + i + 16);
        for (int t = 0; t < nt; t++) {
            const float *y = (const float *)(x + t * xs) + i;
            acc0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(y), acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(y + 16), acc1[t]);
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
        const __m256 w0 = _mm256_loadu_ps(w + i), w1 = _mm256_loadu_ps(w + i + 8);
        for (int t = 0; t < nt; t++) {
            const float *y = (const float *)(x + t * xs) + i;
            acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(y + 8), acc1[t]);
        }
    }
    float s[MM_NT];
    for (int t = 0; t < nt; t++)
        s[t] = hsum_f32x8(_mm256_add_ps(acc0[t], acc1[t]));
#endif
#if defined(FLUID_AVX2)
    for (int t = 0; t < nt; t++) {
        const float *y = (const float *)(x + t * xs);
        for (int j = i; j < n; j++)
            s[t] += w[j] * y[j];
        out[t] = s[t];
    }
#else
    double sumd[MM_NT] = {0};
    for (; i < n; i++)
        for (int t = 0; t < nt; t++)
            sumd[t] += (double)(w[i] * ((const float *)(x + t * xs))[i]);
    for (int t = 0; t < nt; t++)
        out[t] = (float)sumd[t];
#endif
}

/* Y[t][r] = W[r] . X[t] for F32 W and F32 X (ops.h struct matmul_args). */
void mm_f32(const struct matmul_args *a)
{
    MM_LOOP(a, dot_f32);
}
