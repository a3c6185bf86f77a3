/*
 * attention.c - scaled dot-product attention for one query head over the
 * KV cache (module "attention"; Vaswani et al. 2017): scores, softmax,
 * weighted sum of values.
 *
 * The cache holds K and V as F16, and the query arrives as F16, as in
 * llama.cpp's default (F16 KV cache; ggml_mul_mat converts the F32 side to
 * the F16 vec_dot type); the probabilities are rounded to F16 before the V
 * product for the same reason.  Products and sums are F32.  The score
 * reduction keeps eight partial sums (lane l takes d = l mod 8) and adds
 * them in one fixed order; the SIMD paths do the same operations (no fma),
 * so every ISA build gives the same results.
 */
#include "half.h"
#include "mm_common.h"
#include "vexpf.h"

#pragma STDC FP_CONTRACT OFF

/* Head sizes up to this take the blocked SIMD paths (Llama: 64, 128). */
#define ATTN_MAX_HEAD_DIM 256

/* s[j] = scale * (q . k_j) for j < n_pos; k_j = k + j*stride halves
 * (llama.cpp: kq = mul_mat(k, q), then soft_max_ext's scale). */
FLUID_INLINE void attn_scores_n(const ggml_half *q, const ggml_half *k, size_t stride,
                                int n_pos, int head_dim, float scale, float *s)
{
    int j = 0;
#if defined(FLUID_AVX2)
    /* Eight positions at a time, q widened once: each position's eight
     * lane sums are the loop's below, then an 8x8 transpose puts lane l
     * of the eight positions in one vector, so the fixed-order sum of the
     * lanes runs for eight positions in seven vector adds. */
    float qf[ATTN_MAX_HEAD_DIM];
    if (head_dim % 8 == 0 && head_dim <= ATTN_MAX_HEAD_DIM) {
        for (int d = 0; d < head_dim; d += 8)
            _mm256_storeu_ps(qf + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(q + d))));
        for (; j + 8 <= n_pos; j += 8, k += 8 * stride) {
            __m256 va[8];
            for (int r = 0; r < 8; r++)
                va[r] = _mm256_setzero_ps();
            for (int d = 0; d < head_dim; d += 8) {
                const __m256 vq = _mm256_loadu_ps(qf + d);
                for (int r = 0; r < 8; r++)
                    va[r] = _mm256_add_ps(va[r], _mm256_mul_ps(vq, _mm256_cvtph_ps(_mm_loadu_si128(
                                                                   (const __m128i *)(k + r * stride + d)))));
            }
            __m256 t[8], a[8];   /* a[l]: lane l of va[0..7] */
            for (int r = 0; r < 8; r += 2) {
                t[r] = _mm256_unpacklo_ps(va[r], va[r + 1]);
                t[r + 1] = _mm256_unpackhi_ps(va[r], va[r + 1]);
            }
            for (int h = 0; h < 2; h++)
                for (int g = 0; g < 2; g++) {
                    const __m256 x = t[4 * g + h], y = t[4 * g + 2 + h];
                    t[4 * g + h] = _mm256_shuffle_ps(x, y, 0x44);       /* rows 2q, 2q+1 lanes 2h, .. */
                    t[4 * g + 2 + h] = _mm256_shuffle_ps(x, y, 0xee);
                }
            /* t[4g + 2c + h] now holds lane 2h + c of rows 4g..4g+3 (low
             * half: lanes 0-3, high half: lanes 4-7) */
            for (int l = 0; l < 4; l++) {
                const int c = l & 1, h = l >> 1;
                a[l] = _mm256_permute2f128_ps(t[2 * c + h], t[4 + 2 * c + h], 0x20);
                a[l + 4] = _mm256_permute2f128_ps(t[2 * c + h], t[4 + 2 * c + h], 0x31);
            }
            const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6])),
                                             _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7])));
            _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_set1_ps(scale), sum));
        }
    }
#endif
    for (; j < n_pos; j++, k += stride) {
        float acc[8] = {0};
        int d = 0;
#if defined(FLUID_AVX2)
        __m256 va = _mm256_setzero_ps();
        for (; d + 8 <= head_dim; d += 8)
            va = _mm256_add_ps(va, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(q + d))),
                                                 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + d)))));
        _mm256_storeu_ps(acc, va);
#endif
        for (; d + 8 <= head_dim; d += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += fp16_to_fp32(q[d + l]) * fp16_to_fp32(k[d + l]);
        for (; d < head_dim; d++)
            acc[d & 7] += fp16_to_fp32(q[d]) * fp16_to_fp32(k[d]);
        const float sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
                          ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        s[j] = scale * sum;
    }
}

void attn_scores(const ggml_half *q, const ggml_half *k, size_t stride, int n_pos,
                 int head_dim, float scale, float *s)
{
#if defined(FLUID_SHAPE_HEAD_DIM)
    /* Shape-specialised build: constant head size when the model matches. */
    if (head_dim == FLUID_SHAPE_HEAD_DIM) {
        attn_scores_n(q, k, stride, n_pos, FLUID_SHAPE_HEAD_DIM, scale, s);
        return;
    }
#endif
    attn_scores_n(q, k, stride, n_pos, head_dim, scale, s);
}

/* In place over n floats: s[i] = exp(s[i] - max) / sum_j exp(s[j] - max)
 * (ggml_vec_soft_max_f32; expf: vexpf8 in the AVX2 build, the services
 * table's otherwise; sum in double, in order, then scaled by
 * (float)(1/sum)). */
void softmax(float *s, int n)
{
    if (n <= 0)
        return;
    float max = s[0];
    for (int i = 1; i < n; i++)
        max = s[i] > max ? s[i] : max;
#if defined(FLUID_AVX2)
    /* e^(s - max) 8 at a time (vexpf.h); the sum below stays in order. */
    const __m256 vm = _mm256_set1_ps(max);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(s + i, vexpf8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm)));
    if (i < n) {
        float t[8] = {0};
        __builtin_memcpy(t, s + i, (size_t)(n - i) * sizeof *s);
        _mm256_storeu_ps(t, vexpf8(_mm256_sub_ps(_mm256_loadu_ps(t), vm)));
        __builtin_memcpy(s + i, t, (size_t)(n - i) * sizeof *s);
    }
#else
    float (*const expf_)(float) = fluid_svc->expf;
    for (int i = 0; i < n; i++)
        s[i] = expf_(s[i] - max);
#endif
    double sum = 0.0;
    for (int j = 0; j < n; j++)
        sum += (double)s[j];
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++)
        s[j] *= inv;
}

/* out[d] = sum_j f16(p[j]) * v_j[d] for d < head_dim, v_j = v + j*stride
 * halves, summed in order of j (llama.cpp: kqv = mul_mat(v, kq)). */
FLUID_INLINE void attn_wsum_n(const float *p, const ggml_half *v, size_t stride,
                              int n_pos, int head_dim, float *out)
{
    int d0 = 0;
#if defined(FLUID_AVX2)
    /* 64 outputs at a time in registers (the loop below keeps out[] in
     * memory): the same products, summed in the same order of j. */
    for (; d0 + 64 <= head_dim; d0 += 64) {
        __m256 acc[8];
        for (int c = 0; c < 8; c++)
            acc[c] = _mm256_setzero_ps();
        const ggml_half *vj = v + d0;
        for (int j = 0; j < n_pos; j++, vj += stride) {
            const __m256 vp = _mm256_set1_ps(fp16_to_fp32(fp32_to_fp16(p[j])));
            for (int c = 0; c < 8; c++)
                acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(vp, _mm256_cvtph_ps(_mm_loadu_si128(
                                                                   (const __m128i *)(vj + 8 * c)))));
        }
        for (int c = 0; c < 8; c++)
            _mm256_storeu_ps(out + d0 + 8 * c, acc[c]);
    }
#endif
    if (d0 == head_dim)
        return;
    for (int d = d0; d < head_dim; d++)
        out[d] = 0.0f;
    for (int j = 0; j < n_pos; j++, v += stride) {
        const float pj = fp16_to_fp32(fp32_to_fp16(p[j]));
        int d = d0;
#if defined(FLUID_AVX2)
        const __m256 vp = _mm256_set1_ps(pj);
        for (; d + 8 <= head_dim; d += 8)
            _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_loadu_ps(out + d),
                _mm256_mul_ps(vp, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + d))))));
#endif
        for (; d < head_dim; d++)
            out[d] += pj * fp16_to_fp32(v[d]);
    }
}

void attn_wsum(const float *p, const ggml_half *v, size_t stride, int n_pos,
               int head_dim, float *out)
{
#if defined(FLUID_SHAPE_HEAD_DIM)
    if (head_dim == FLUID_SHAPE_HEAD_DIM) {
        attn_wsum_n(p, v, stride, n_pos, FLUID_SHAPE_HEAD_DIM, out);
        return;
    }
#endif
    attn_wsum_n(p, v, stride, n_pos, head_dim, out);
}
