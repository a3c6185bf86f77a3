/*
 * mm_q5_K.c - Q5_K weights x Q8_K activations (module "mm_q5_K").
 *
 * As mm_q4_K.c with 5-bit weights q5 = nibble + 16 * (bit of qh):
 *   isum = sum_j sc[j] * sum_{l in j} q5[l] * q8[l],
 *   msum = sum_j mn[j] * (bsums[2j] + bsums[2j+1]),
 *   dot += (dw * d8) * isum - (dminw * d8) * msum.
 * scalar: ggml_vec_dot_q5_K_q8_K_generic (8 int lanes, float sums[8]);
 * AVX2: ggml_vec_dot_q5_K_q8_K (x86) structure, one float accumulator.
 */
#include "half.h"
#include "mm_common.h"

/* y = d*sc[j]*q5 - dmin*mn[j] (ggml dequantize_row_q5_K). */
void dequant_q5_K(const void *w, float *y, int n)
{
    const struct block_q5_K *b = w;
    for (int i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        uint8_t sc[8], mn[8];
        unpack_scales_k4(b[i].scales, sc, mn);
        for (int g = 0; g < 4; g++) {
            const uint8_t *ql = b[i].qs + 32 * g, *qh = b[i].qh;
            const uint8_t u1 = (uint8_t)(1u << (2 * g)), u2 = (uint8_t)(2u << (2 * g));
            const float d1 = d * sc[2 * g], m1 = dmin * mn[2 * g];
            const float d2 = d * sc[2 * g + 1], m2 = dmin * mn[2 * g + 1];
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_q5_K(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q5_K *w = wv;
    const int nb = n / QK_K;
#if defined(FLUID_AVX2)
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        MM_PREFETCH_BLOCK(&w[i], sizeof w[i]);
        const __m256i sm = unpack_scales_k4_i16(w[i].scales);
        const __m128i mins = _mm256_extracti128_si256(sm, 1);
        const float dw = fp16_to_fp32(w[i].d), dmw = fp16_to_fp32(w[i].dmin);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)w[i].qh);
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * g));
            const __m256i hl = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * g), m1);
            const __m256i hh = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * g + 1), m1);
            const __m256i q5l = _mm256_or_si256(_mm256_and_si256(bits, m4),
                                                _mm256_slli_epi16(hl, 4));
            const __m256i q5h = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), _mm256_slli_epi16(hh, 4));
            const __m256i scl = BCAST_I16(sm, 2 * g);
            const __m256i sch = BCAST_I16(sm, 2 * g + 1);
            for (int t = 0; t < nt; t++) {
                const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs + 64 * g;
                const __m256i q8l = _mm256_loadu_si256((const __m256i *)q8);
                const __m256i q8h = _mm256_loadu_si256((const __m256i *)(q8 + 32));
                isum[t] = madd_acc_i16(isum[t], scl, _mm256_maddubs_epi16(q5l, q8l));
                isum[t] = madd_acc_i16(isum[t], sch, _mm256_maddubs_epi16(q5h, q8h));
            }
        }
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m128i s32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs),
                                               _mm256_extracti128_si256(bs, 1));
            const __m256i msum = _mm256_zextsi128_si256(_mm_madd_epi16(mins, s32));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * dw),
                                     _mm256_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-y->d * dmw),
                                     _mm256_cvtepi32_ps(msum), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum_f32x8(acc[t]);
#else
    float sums[MM_NT][8] = {{0}}, sumf[MM_NT] = {0};
    for (int i = 0; i < nb; i++) {
        int8_t a[QK_K];
        uint8_t sc[8], mn[8];
        for (int g = 0; g < 4; g++) {
            const uint8_t u1 = (uint8_t)(1u << (2 * g)), u2 = (uint8_t)(2u << (2 * g));
            for (int l = 0; l < 32; l++) {
                const uint8_t q = w[i].qs[32 * g + l], h = w[i].qh[l];
                a[64 * g + l] = (int8_t)((q & 0x0f) + (h & u1 ? 16 : 0));
                a[64 * g + 32 + l] = (int8_t)((q >> 4) + (h & u2 ? 16 : 0));
            }
        }
        unpack_scales_k4(w[i].scales, sc, mn);
        kquant_sc_mn_block(a, sc, mn, fp16_to_fp32(w[i].d), fp16_to_fp32(w[i].dmin), x, xs, i, nt, sums, sumf);
    }
    for (int t = 0; t < nt; t++) {
        for (int l = 0; l < 8; l++)
            sumf[t] += sums[t][l];
        out[t] = sumf[t];
    }
#endif
}

/* Y[t][r] = W[r] . X[t] for Q5_K W and Q8_K X (ops.h struct matmul_args). */
void mm_q5_K(const struct matmul_args *a)
{
    MM_LOOP(a, dot_q5_K);
}
