/*
 * mm_q8_0.c - Q8_0 weights x Q8_0 activations (module "mm_q8_0").
 *
 * Per block of 32: sumi = sum w.qs[j] * x.qs[j] (exact int), then
 * sumf += sumi * (dw * dx), blocks in order (ggml_vec_dot_q8_0_q8_0_generic).
 * The AVX2 path computes 8 rows at once, one row per float lane, with the
 * same float operations in the same order (no fma), so every ISA gives
 * bit-identical results.  Its integer part is ggml's sign trick
 * (|w| times x with w's sign, maddubs or vpdpbusd); weights may be -128,
 * activations must lie in [-127, 127] (quantize_q8_0 guarantees it).
 */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* y[0..n) = d * q per block (ggml dequantize_row_q8_0). */
void dequant_q8_0(const void *w, float *y, int n)
{
    const struct block_q8_0 *b = w;
    for (int i = 0; i < n / QK8_0; i++) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[i * QK8_0 + j] = b[i].qs[j] * d;
    }
}

/* One row, out[t] = dot(W row w, activation row t), t < nt (MM_LOOP). */
FLUID_INLINE void dot_q8_0(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q8_0 *w = wv;
    float sumf[MM_NT] = {0};
    for (int i = 0; i < n / QK8_0; i++) {
        const float dw = fp16_to_fp32(w[i].d);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0 *y = (const struct block_q8_0 *)(x + t * xs) + i;
            int sumi = 0;
            for (int j = 0; j < QK8_0; j++)
                sumi += w[i].qs[j] * y->qs[j];
            sumf[t] += sumi * (dw * fp16_to_fp32(y->d));
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = sumf[t];
}

#if defined(FLUID_AVX2)
/* Rows r..r+7, tokens t0..t0+nt-1 (MM_TILE_LOOP). */
FLUID_INLINE void tile_q8_0(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t ws = a->w_row_bytes, xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * ws;
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK8_0; i++) {
        const int8_t *qw[8];
        __m256i aw[8];  /* |w| per row; -128 reads as unsigned 128 */
        for (int k = 0; k < 8; k++) {
            qw[k] = ((const struct block_q8_0 *)(w + k * ws) + i)->qs;
            const __m256i v = _mm256_loadu_si256((const __m256i *)qw[k]);
            aw[k] = _mm256_sign_epi8(v, v);
        }
        const __m256 dw = load8_f16_scales(w + i * sizeof(struct block_q8_0), ws);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0 *y = (const struct block_q8_0 *)(x + t * xs) + i;
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
            __m256i p[8];
            for (int k = 0; k < 8; k++)
                p[k] = dot_u8s8_i32(aw[k], _mm256_sign_epi8(
                    qy, _mm256_loadu_si256((const __m256i *)qw[k])));
            const __m256i sumi = reduce8_i32(p);
            const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(fp16_to_fp32(y->d)));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), d));
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif

/* Y[t][r] = W[r] . X[t] for Q8_0 W and Q8_0 X (ops.h struct matmul_args). */
void mm_q8_0(const struct matmul_args *a)
{
#if defined(FLUID_AVX2)
    MM_TILE_LOOP(a, tile_q8_0, dot_q8_0);
#else
    MM_LOOP(a, dot_q8_0);
#endif
}
