/*
 * mm_q5_1.c - Q5_1 weights x Q8_1 activations (module "mm_q5_1").
 *
 * Per block of 32: w = dw * q5 + mw with q5 = nibble | fifth bit << 4,
 * x = dx * q8, sx = dx * sum(q8) (f16).  sumi = sum q5 * q8 (exact int),
 * then sumf += (dw * dx) * sumi + mw * sx, blocks in order
 * (ggml_vec_dot_q5_1_q8_1_generic).  The AVX2 path computes 8 rows at
 * once, one row per float lane, with the same float operations in the same
 * order (no fma), so every ISA gives bit-identical results.  Its integer
 * part: unsigned q5 times q8 with maddubs (or vpdpbusd; q5 <= 31), lanes
 * reduced per row.
 */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* The 32 unsigned 5-bit values of one block in weight order. */
static inline void q5_1_values(const struct block_q5_1 *b, uint8_t *v)
{
    const uint32_t qh = (uint32_t)b->qh[0] | (uint32_t)b->qh[1] << 8 |
                        (uint32_t)b->qh[2] << 16 | (uint32_t)b->qh[3] << 24;
    for (int j = 0; j < QK5_1 / 2; j++) {
        v[j] = (uint8_t)((b->qs[j] & 0x0f) | ((qh >> j) & 1) << 4);
        v[j + QK5_1 / 2] = (uint8_t)((b->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    }
}

/* y = d * q5 + m (ggml dequantize_row_q5_1). */
void dequant_q5_1(const void *w, float *y, int n)
{
    const struct block_q5_1 *b = w;
    for (int i = 0; i < n / QK5_1; i++) {
        uint8_t v[QK5_1];
        q5_1_values(&b[i], v);
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK5_1; j++)
            y[i * QK5_1 + j] = v[j] * d + m;
    }
}

/* One row, out[t] = dot(W row w, activation row t), t < nt (MM_LOOP). */
FLUID_INLINE void dot_q5_1(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q5_1 *w = wv;
    float sumf[MM_NT] = {0};
    for (int i = 0; i < n / QK5_1; i++) {
        uint8_t v[QK5_1];
        q5_1_values(&w[i], v);
        const float dw = fp16_to_fp32(w[i].d), mw = fp16_to_fp32(w[i].m);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_1 *y = (const struct block_q8_1 *)(x + t * xs) + i;
            int sumi = 0;
            for (int j = 0; j < QK5_1; j++)
                sumi += v[j] * y->qs[j];
            sumf[t] += (dw * fp16_to_fp32(y->d)) * sumi + mw * fp16_to_fp32(y->s);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = sumf[t];
}

#if defined(FLUID_AVX2)
/* Rows r..r+7, tokens t0..t0+nt-1 (MM_TILE_LOOP). */
FLUID_INLINE void tile_q5_1(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t ws = a->w_row_bytes, xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * ws;
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK5_1; i++) {
        __m256i u[8];   /* 32 unsigned 5-bit values per row in weight order */
        for (int k = 0; k < 8; k++) {
            const struct block_q5_1 *b = (const struct block_q5_1 *)(w + k * ws) + i;
            const __m128i raw = _mm_loadu_si128((const __m128i *)b->qs);
            const __m256i lo = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
            u[k] = _mm256_or_si256(lo, _mm256_and_si256(bits32_to_bytes(b->qh), b4));
        }
        const uint8_t *b0 = w + i * sizeof(struct block_q5_1);
        const __m256 dw = load8_f16_scales(b0, ws);
        const __m256 mw = load8_f16_scales(b0 + offsetof(struct block_q5_1, m), ws);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_1 *y = (const struct block_q8_1 *)(x + t * xs) + i;
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
            __m256i p[8];
            for (int k = 0; k < 8; k++)
                p[k] = dot_u8s8_i32(u[k], qy);
            const __m256 sumi = _mm256_cvtepi32_ps(reduce8_i32(p));
            const __m256 f = _mm256_add_ps(
                _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(fp16_to_fp32(y->d))), sumi),
                _mm256_mul_ps(mw, _mm256_set1_ps(fp16_to_fp32(y->s))));
            acc[t] = _mm256_add_ps(acc[t], f);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif

/* Y[t][r] = W[r] . X[t] for Q5_1 W and Q8_1 X (ops.h struct matmul_args). */
void mm_q5_1(const struct matmul_args *a)
{
#if defined(FLUID_AVX2)
    MM_TILE_LOOP(a, tile_q5_1, dot_q5_1);
#else
    MM_LOOP(a, dot_q5_1);
#endif
}
