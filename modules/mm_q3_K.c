/*
 * mm_q3_K.c - Q3_K weights x Q8_K activations (module "mm_q3_K").
 *
 * Per super-block of 256 (16 sub-blocks s of 16, signed 6-bit scale sc[s],
 * ops.h block_q3_K), with q3 = q2 - 4 * (1 - hbit) in [-4, 3]:
 *   isum = sum_s sc[s] * sum_{l in s} q3[l] * q8[l]       (exact int)
 *   dot += (dw * d8) * isum
 * scalar (ggml_vec_dot_q3_K_q8_K_generic): isum in 8 lanes (l % 8),
 *   float sums[8] += d * lane, summed at the end.
 * AVX2 (after ggml_vec_dot_q3_K_q8_K, x86): unsigned u = q2 + 4 * hbit
 *   (0..7) times q8 with maddubs, scaled with madd; the -4 offset is taken
 *   off once per block as 4 * sum_s sc[s] * bsums[s].  One float
 *   accumulator, hsum at the end.
 */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* The 16 scales of a block, 6 bits each minus 32: the low 4 bits of
 * scale s are nibble s % 8 (low for s < 8, high after) of bytes 0..7, the
 * top 2 bits are bits 2*(s/4)..+1 of byte 8 + s % 4 (ggml
 * dequantize_row_q3_K's kmask unpacking). */
static inline void unpack_scales_q3_K(const uint8_t *s, int8_t *sc)
{
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? s[j] & 0x0f : s[j - 8] >> 4;
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

#if defined(FLUID_AVX2)
/* unpack_scales_q3_K's 16 scales as int8 lanes, four bytes at a time (as
 * ggml's kmask1/kmask2 code: the low nibbles of bytes 0-3 / 4-7, then their
 * high nibbles, each with its 2 top bits from bytes 8-11). */
FLUID_INLINE __m128i scales_q3_K_vec(const uint8_t *s)
{
    const uint32_t a0 = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
    const uint32_t a1 = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 | (uint32_t)s[7] << 24;
    const uint32_t a2 = (uint32_t)s[8] | (uint32_t)s[9] << 8 | (uint32_t)s[10] << 16 | (uint32_t)s[11] << 24;
    const uint32_t lo = 0x0f0f0f0fu, hi = 0x03030303u;
    const __m128i u = _mm_setr_epi32((int)((a0 & lo) | ((a2 & hi) << 4)),
                                     (int)((a1 & lo) | (((a2 >> 2) & hi) << 4)),
                                     (int)(((a0 >> 4) & lo) | (((a2 >> 4) & hi) << 4)),
                                     (int)(((a1 >> 4) & lo) | (((a2 >> 6) & hi) << 4)));
    return _mm_sub_epi8(u, _mm_set1_epi8(32));
}
#endif

/* The 256 values q3 in [-4, 3] of one block in weight order. */
static inline void q3_values(const struct block_q3_K *b, int8_t *v)
{
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                const int q2 = (b->qs[32 * h + l] >> (2 * k)) & 3;
                const int hbit = (b->hmask[l] >> (4 * h + k)) & 1;
                v[128 * h + 32 * k + l] = (int8_t)(q2 - (hbit ? 0 : 4));
            }
}

/* y = d * sc[s] * q3 (ggml dequantize_row_q3_K). */
void dequant_q3_K(const void *w, float *y, int n)
{
    const struct block_q3_K *b = w;
    for (int i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(b[i].d);
        int8_t sc[16], v[QK_K];
        unpack_scales_q3_K(b[i].scales, sc);
        q3_values(&b[i], v);
        for (int s = 0; s < 16; s++) {
            const float dl = d * sc[s];
            for (int l = 0; l < 16; l++)
                *y++ = dl * v[16 * s + l];
        }
    }
}

/* out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_q3_K(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q3_K *w = wv;
    const int nb = n / QK_K;
#if defined(FLUID_AVX2)
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m128i sc8 = scales_q3_K_vec(w[i].scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m256i scl[8];   /* {sc[2v] x8, sc[2v+1] x8} as int16, v = 4h + k */
        for (int v = 0; v < 8; v++)
            scl[v] = scale_pair_i16(sc8, v, 1);
        const float dw = fp16_to_fp32(w[i].d);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)w[i].hmask);
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * h));
            for (int k = 0; k < 4; k++) {
                const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hbits, 4 * h + k), m1);
                const __m256i u = _mm256_or_si256(q2, _mm256_slli_epi16(hb, 2));
                for (int t = 0; t < nt; t++) {
                    const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs +
                                       128 * h + 32 * k;
                    const __m256i q8v = _mm256_loadu_si256((const __m256i *)q8);
                    isum[t] = madd_acc_i16(isum[t], scl[4 * h + k], _mm256_maddubs_epi16(u, q8v));
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 2);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * y->d),
                                     _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], off)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum_f32x8(acc[t]);
#else
    float sums[MM_NT][8] = {{0}};
    for (int i = 0; i < nb; i++) {
        int8_t v[QK_K], sc[16];
        q3_values(&w[i], v);
        unpack_scales_q3_K(w[i].scales, sc);
        const float dw = fp16_to_fp32(w[i].d);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            int32_t lane[8] = {0};
            for (int k = 0; k < QK_K; k++)
                lane[k % 8] += sc[k / 16] * (int16_t)(y->qs[k] * v[k]);
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

/* Y[t][r] = W[r] . X[t] for Q3_K W and Q8_K X (ops.h struct matmul_args). */
void mm_q3_K(const struct matmul_args *a)
{
    MM_LOOP(a, dot_q3_K);
}
