/*
 * mm_q6_K.c - Q6_K weights x Q8_K activations (module "mm_q6_K").
 *
 * Per super-block of 256 (16 sub-blocks s of 16, int8 scale sc[s]):
 *   isum = sum_s sc[s] * sum_{l in s} (q6[l] - 32) * q8[l]   (exact int)
 *   dot += (dw * d8) * isum
 * scalar (ggml_vec_dot_q6_K_q8_K_generic): isum in 8 lanes (l % 8),
 *   float sums[8] += d * lane, summed at the end.
 * AVX2 (after ggml_vec_dot_q6_K_q8_K, x86): unsigned q6 times q8 with
 *   maddubs, scaled with madd; the -32 offset is taken off once per block
 *   as 32 * sum_s sc[s] * bsums[s] (same integer as ggml's
 *   maddubs(32, q8) per sub-block).  One float accumulator, hsum at end.
 * AVX-512 VNNI (dot16_q6_K): the same integers by vpdpbusd + vpdpwssd,
 *   8 tokens per pass, rows in blocks of 16 so the tokens' activations
 *   stay in L1 (mmbench model q6_K -n 128 -t 2: 125 -> 190 tok/s).
 */
#include "half.h"
#include "mm_common.h"

/* y = d * sc[s] * (q6 - 32) (ggml dequantize_row_q6_K). */
void dequant_q6_K(const void *w, float *y, int n)
{
    const struct block_q6_K *b = w;
    for (int i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = (int8_t)((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int8_t)((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

#if defined(FLUID_AVX2) && !defined(FLUID_ZMM_VNNI)
/* Byte shuffles giving {sc[2k] x8, sc[2k+1] x8} from the 16 scales. */
static const uint8_t k_scale_pairs[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};
#endif

#if !defined(FLUID_ZMM_VNNI)   /* the zmm build has dot16_q6_K */
/* out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_q6_K(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q6_K *w = wv;
    const int nb = n / QK_K;
#if defined(FLUID_AVX2)
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        MM_PREFETCH_BLOCK(&w[i], sizeof w[i]);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const float dw = fp16_to_fp32(w[i].d);
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            for (int k = 0; k < 4; k++) {
                /* weights 128h + 32k + l: low bits from l0/l1, low/high
                 * nibble; top bits from hb bits 2k, 2k+1. */
                const __m256i lo = k & 1 ? l1 : l0;
                const __m256i nib = _mm256_and_si256(k & 2 ? _mm256_srli_epi16(lo, 4) : lo, m4);
                const __m256i top = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * k), m3);
                const __m256i q6 = _mm256_or_si256(nib, _mm256_slli_epi16(top, 4));
                const __m256i scl = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
                    sc8, _mm_loadu_si128((const __m128i *)k_scale_pairs[4 * h + k])));
                for (int t = 0; t < nt; t++) {
                    const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs +
                                       128 * h + 32 * k;
                    const __m256i q8v = _mm256_loadu_si256((const __m256i *)q8);
                    isum[t] = madd_acc_i16(isum[t], scl, _mm256_maddubs_epi16(q6, q8v));
                }
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * dw),
                                     _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], off)),
                                     acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum_f32x8(acc[t]);
#else
    float sums[MM_NT][8] = {{0}};
    for (int i = 0; i < nb; i++) {
        int8_t a[QK_K];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
            int8_t *ah = a + 128 * h;
            for (int l = 0; l < 32; l++) {
                ah[l] = (int8_t)(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
                ah[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
                ah[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                ah[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        const float dw = fp16_to_fp32(w[i].d);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            int32_t lane[8] = {0};
            for (int k = 0; k < QK_K; k++)
                lane[k % 8] += w[i].scales[k / 16] * (int16_t)(y->qs[k] * a[k]);
            const float d = dw * y->d;
            for (int l = 0; l < 8; l++)
                sums[t][l] += d * lane[l];
        }
    }
    for (int t = 0; t < nt; t++) {
        float sumf = 0;
        for (int l = 0; l < 8; l++)
            sumf += sums[t][l];
        out[t] = sumf;
    }
#endif
}
#endif /* !FLUID_ZMM_VNNI */

#if defined(FLUID_ZMM_VNNI)
#ifndef Q6K_ROW_BLOCK
#define Q6K_ROW_BLOCK 16
#endif

/* dot_q6_K on 512-bit VNNI, nt <= MM_NT16 tokens per pass over the row.
 * Weights 64m..64m+63 of a block (m < 4) sit in one zmm of unsigned q6;
 * vpdpbusd against the activation bytes gives per 32-bit lane L the sum
 * of 4 products, all in sub-block 4m + L/4, |sum| <= 4 * 63 * 128 < 2^15,
 * so vpdpwssd with (sc, 0) int16 pairs scales it exactly.  The -32 offset
 * and the float accumulation are dot_q6_K's (ggml's AVX2 scheme). */
FLUID_INLINE void dot16_q6_K(const void *wv, const uint8_t *x, size_t xs, int n, float *out, int nt)
{
    const struct block_q6_K *w = wv;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
    const __m512i lo16 = _mm512_set1_epi32(0xffff);
    __m512 acc[MM_NT16];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        MM_PREFETCH_BLOCK(&w[i], sizeof w[i]);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        __m512i q6[4], scp[4];
        for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512(w[i].ql + 64 * h);
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            /* bytes 0-31: qh (weights l < 32), 32-63: qh >> 2 (weights 32 + l) */
            const __m512i top = _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
            q6[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                        _mm512_slli_epi16(_mm512_and_si512(top, m3), 4));
            q6[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(top, 4), m3), 4));
        }
        for (int m = 0; m < 4; m++) {   /* lane L: sc[4m + L/4] */
            const __m128i pick = _mm_setr_epi8(4 * m, 4 * m, 4 * m, 4 * m, 4 * m + 1, 4 * m + 1, 4 * m + 1, 4 * m + 1,
                                               4 * m + 2, 4 * m + 2, 4 * m + 2, 4 * m + 2, 4 * m + 3, 4 * m + 3,
                                               4 * m + 3, 4 * m + 3);
            scp[m] = _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, pick)), lo16);
        }
        const float dw = fp16_to_fp32(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m512i isum[MM_NT16];
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            isum[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_zextsi256_si512(_mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5)));
        }
        for (int m = 0; m < 4; m++)
            for (int t = 0; t < nt; t++) {
                const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs + 64 * m;
                const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q6[m], _mm512_loadu_si512(q8));
                isum[t] = _mm512_dpwssd_epi32(isum[t], p, scp[m]);
            }
        for (int t = 0; t < nt; t++) {
            const float d8 = ((const struct block_q8_K *)(x + t * xs) + i)->d;
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d8 * dw), _mm512_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]);
}
#endif

/* Y[t][r] = W[r] . X[t] for Q6_K W and Q8_K X (ops.h struct matmul_args). */
void mm_q6_K(const struct matmul_args *a)
{
#if defined(FLUID_ZMM_VNNI)
    /* Rows in blocks of Q6K_ROW_BLOCK, so that a group of MM_NT16
     * activation rows stays in L1 while the block's rows pass over it:
     * row by row, every row re-read all n_tok activations from L2. */
    const uint8_t *x = (const uint8_t *)a->x;
    for (int r0 = a->row0; r0 < a->row1; r0 += Q6K_ROW_BLOCK) {
        const int r1 = a->row1 - r0 < Q6K_ROW_BLOCK ? a->row1 : r0 + Q6K_ROW_BLOCK;
        for (int t = 0; t < a->n_tok; t += MM_NT16) {
            const int nt = a->n_tok - t < MM_NT16 ? a->n_tok - t : MM_NT16;
            for (int r = r0; r < r1; r++) {
                const void *w = (const uint8_t *)a->w + (size_t)r * a->w_row_bytes;
                float o[MM_NT16];
                MM_NT16_CALL(dot16_q6_K, nt, w, x + (size_t)t * a->x_row_bytes, a->x_row_bytes, a->n_in, o);
                for (int k = 0; k < nt; k++)
                    a->y[(size_t)(t + k) * a->ldy + r] = o[k];
            }
        }
    }
#else
    MM_LOOP(a, dot_q6_K);
#endif
}
