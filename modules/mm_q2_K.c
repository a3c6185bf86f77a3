/*
 * mm_q2_K.c - Q2_K weights x Q8_K activations (module "mm_q2_K").
 *
 * Per super-block of 256 (16 sub-blocks j of 16, 4-bit scale sc[j] and
 * min mn[j], ops.h block_q2_K):
 *   isum  = sum_j sc[j] * sum_{l in j} q2[l] * q8[l]     (exact int)
 *   summs = sum_j mn[j] * bsums[j]                        (exact int)
 *   dot  += (d8 * dw) * isum - (d8 * dminw) * summs
 * scalar: ggml_vec_dot_q2_K_q8_K_generic (one float sum, block by block).
 * AVX2 (after ggml_vec_dot_q2_K_q8_K, x86): isum in 8 int32 lanes, summs
 *   in 8 lanes, both fma'd into one float accumulator, hsum at the end, so
 *   results differ from the scalar path in the last bits.
 */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* The 256 2-bit values of one block in weight order (REFERENCE: half h,
 * shift k: weight 128h + 32k + l is bits 2k..2k+1 of qs[32h + l]). */
static inline void q2_values(const struct block_q2_K *b, uint8_t *v)
{
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++)
                v[128 * h + 32 * k + l] = (b->qs[32 * h + l] >> (2 * k)) & 3;
}

/* y = d*sc[j]*q2 - dmin*mn[j] (ggml dequantize_row_q2_K). */
void dequant_q2_K(const void *w, float *y, int n)
{
    const struct block_q2_K *b = w;
    for (int i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        uint8_t v[QK_K];
        q2_values(&b[i], v);
        for (int j = 0; j < QK_K / 16; j++) {
            const float dl = d * (b[i].scales[j] & 0x0f), ml = dmin * (b[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                *y++ = dl * v[16 * j + l] - ml;
        }
    }
}

/* out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_q2_K(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q2_K *w = wv;
    const int nb = n / QK_K;
#if defined(FLUID_AVX2)
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4),
                                                                _mm256_castsi256_si128(m4)));
        const __m128i sc4 = _mm_and_si128(sc8, _mm256_castsi256_si128(m4));
        __m256i scl[8];   /* {sc[2v] x8, sc[2v+1] x8} as int16, v = 4h + k */
        for (int v = 0; v < 8; v++)
            scl[v] = scale_pair_i16(sc4, v, 0);
        const float dw = fp16_to_fp32(w[i].d), dmw = fp16_to_fp32(w[i].dmin);
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * h));
            for (int k = 0; k < 4; k++) {
                const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                for (int t = 0; t < nt; t++) {
                    const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs +
                                       128 * h + 32 * k;
                    const __m256i q8v = _mm256_loadu_si256((const __m256i *)q8);
                    isum[t] = madd_acc_i16(isum[t], scl[4 * h + k], _mm256_maddubs_epi16(q2, q8v));
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m256i summs = _mm256_madd_epi16(mins, bs);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * dw), _mm256_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-(y->d * dmw)), _mm256_cvtepi32_ps(summs), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum_f32x8(acc[t]);
#else
    float sumf[MM_NT] = {0};
    for (int i = 0; i < nb; i++) {
        uint8_t v[QK_K];
        q2_values(&w[i], v);
        const uint8_t *sc = w[i].scales;
        const float dw = fp16_to_fp32(w[i].d), dmw = fp16_to_fp32(w[i].dmin);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            int summs = 0, isum = 0;
            for (int j = 0; j < QK_K / 16; j++) {
                summs += y->bsums[j] * (sc[j] >> 4);
                int isuml = 0;
                for (int l = 16 * j; l < 16 * j + 16; l++)
                    isuml += y->qs[l] * v[l];
                isum += (sc[j] & 0x0f) * isuml;
            }
            const float dall = y->d * dw, dmin = y->d * dmw;
            sumf[t] += dall * isum - dmin * summs;
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = sumf[t];
#endif
}

/* Y[t][r] = W[r] . X[t] for Q2_K W and Q8_K X (ops.h struct matmul_args). */
void mm_q2_K(const struct matmul_args *a)
{
    MM_LOOP(a, dot_q2_K);
}
