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

/* s[j] = scale * (q . k_j) for j < n_pos; k_j = k + j*stride halves
 * (llama.cpp: kq = mul_mat(k, q), then soft_max_ext's scale). */
FLUID_INLINE void attn_scores_n(const ggml_half *q, const ggml_half *k, size_t stride,
                                int n_pos, int head_dim, float scale, float *s)
{
    for (int j = 0; j < n_pos; j++, k += stride) {
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
    for (int d = 0; d < head_dim; d++)
        out[d] = 0.0f;
    for (int j = 0; j < n_pos; j++, v += stride) {
        const float pj = fp16_to_fp32(fp32_to_fp16(p[j]));
        int d = 0;
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
