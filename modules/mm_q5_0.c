/*
 * mm_q5_0.c - Q5_0 weights x Q8_0 activations (module "mm_q5_0").
 *
 * Per block of 32: v = q5 - 16 with q5 = nibble | fifth bit << 4; sumi =
 * sum v * x.qs (exact int), then sumf += (dw * dx) * sumi, blocks in order
 * (ggml_vec_dot_q5_0_q8_0_generic).  The AVX2 path computes 8 rows at
 * once, one row per float lane, with the same float operations in the same
 * order (no fma), so every ISA gives bit-identical results.  Its integer
 * part: unsigned q5 times q8 with maddubs (or vpdpbusd; q5 <= 31, so no
 * int16 pair saturates), lanes reduced per row, minus 16 * sum(q8).
 */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* The 32 unsigned 5-bit values of one block in weight order. */
static inline void q5_0_values(const struct block_q5_0 *b, uint8_t *v)
{
    const uint32_t qh = (uint32_t)b->qh[0] | (uint32_t)b->qh[1] << 8 |
                        (uint32_t)b->qh[2] << 16 | (uint32_t)b->qh[3] << 24;
    for (int j = 0; j < QK5_0 / 2; j++) {
        v[j] = (uint8_t)((b->qs[j] & 0x0f) | ((qh >> j) & 1) << 4);
        v[j + QK5_0 / 2] = (uint8_t)((b->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    }
}

/* y = d * (q5 - 16) (ggml dequantize_row_q5_0). */
void dequant_q5_0(const void *w, float *y, int n)
{
    const struct block_q5_0 *b = w;
    for (int i = 0; i < n / QK5_0; i++) {
        uint8_t v[QK5_0];
        q5_0_values(&b[i], v);
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK5_0; j++)
            y[i * QK5_0 + j] = (v[j] - 16) * d;
    }
}

/* One row, out[t] = dot(W row w, activation row t), t < nt (MM_LOOP). */
FLUID_INLINE void dot_q5_0(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q5_0 *w = wv;
    float sumf[MM_NT] = {0};
    for (int i = 0; i < n / QK5_0; i++) {
        uint8_t v[QK5_0];
        q5_0_values(&w[i], v);
        const float dw = fp16_to_fp32(w[i].d);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0 *y = (const struct block_q8_0 *)(x + t * xs) + i;
            int sumi = 0;
            for (int j = 0; j < QK5_0; j++)
                sumi += (v[j] - 16) * y->qs[j];
            sumf[t] += (dw * fp16_to_fp32(y->d)) * sumi;
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = sumf[t];
}

#if defined(FLUID_AVX2)
/* sum of the 32 signed bytes of q, in every int32 lane. */
FLUID_INLINE __m256i sum_i8_all_lanes(__m256i q)
{
    __m256i s = dot_u8s8_i32(_mm256_set1_epi8(1), q);
    s = _mm256_add_epi32(s, _mm256_permute2x128_si256(s, s, 1));
    s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0x4e));
    return _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0xb1));
}

/* Rows r..r+7, tokens t0..t0+nt-1 (MM_TILE_LOOP). */
FLUID_INLINE void tile_q5_0(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t ws = a->w_row_bytes, xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * ws;
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK5_0; i++) {
        __m256i u[8];   /* 32 unsigned 5-bit values per row in weight order */
        for (int k = 0; k < 8; k++) {
            const struct block_q5_0 *b = (const struct block_q5_0 *)(w + k * ws) + i;
            const __m128i raw = _mm_loadu_si128((const __m128i *)b->qs);
            const __m256i lo = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
            u[k] = _mm256_or_si256(lo, _mm256_and_si256(bits32_to_bytes(b->qh), b4));
        }
        const __m256 dw = load8_f16_scales(w + i * sizeof(struct block_q5_0), ws);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0 *y = (const struct block_q8_0 *)(x + t * xs) + i;
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
            __m256i p[8];
            for (int k = 0; k < 8; k++)
                p[k] = dot_u8s8_i32(u[k], qy);
            const __m256i sumi = _mm256_sub_epi32(reduce8_i32(p),
                                                  _mm256_slli_epi32(sum_i8_all_lanes(qy), 4));
            const __m256 f = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(fp16_to_fp32(y->d))),
                                           _mm256_cvtepi32_ps(sumi));
            acc[t] = _mm256_add_ps(acc[t], f);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif

/* Y[t][r] = W[r] . X[t] for Q5_0 W and Q8_0 X (ops.h struct matmul_args). */
void mm_q5_0(const struct matmul_args *a)
{
#if defined(FLUID_AVX2)
    MM_TILE_LOOP(a, tile_q5_0, dot_q5_0);
#else
    MM_LOOP(a, dot_q5_0);
#endif
}
