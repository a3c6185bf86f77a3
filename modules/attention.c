/*
 * attention.c - scaled dot-product attention for one query head over the
 * KV cache (module "attention"; Vaswani et al. 2017): scores, softmax,
 * weighted sum of values.  The float reductions use eight partial sums in
 * a fixed order, so the compiler can vectorise them without changing the
 * result between ISA builds.
 */
#include "ops.h"

/* s[j] = scale * (q . k_j) for j < n_pos; k_j = k + j*stride, head_dim
 * floats (llama.cpp: kq = mul_mat(k, q), then soft_max_ext's scale). */
static inline __attribute__((always_inline)) void attn_scores_n(const float *q, const float *k, size_t stride,
                                                                int n_pos, int head_dim, float scale, float *s)
{
    for (int j = 0; j < n_pos; j++, k += stride) {
        float acc[8] = {0};
        int d = 0;
        for (; d + 8 <= head_dim; d += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += q[d + l] * k[d + l];
        for (; d < head_dim; d++)
            acc[d & 7] += q[d] * k[d];
        const float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                          ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        s[j] = scale * sum;
    }
}

void attn_scores(const float *q, const float *k, size_t stride, int n_pos,
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
 * (ggml_vec_soft_max_f32: expf from the services table, sum in double,
 * then scaled by (float)(1/sum)). */
void softmax(float *s, int n)
{
    if (n <= 0)
        return;
    float (*const expf_)(float) = fluid_svc->expf;
    float max = s[0];
    for (int i = 1; i < n; i++)
        max = s[i] > max ? s[i] : max;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        const float e = expf_(s[i] - max);
        s[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        s[i] *= inv;
}

/* out[d] = sum_j p[j] * v_j[d] for d < head_dim, v_j = v + j*stride,
 * summed in order of j (llama.cpp: kqv = mul_mat(v, kq)). */
static inline __attribute__((always_inline)) void attn_wsum_n(const float *p, const float *v, size_t stride,
                                                              int n_pos, int head_dim, float *out)
{
    for (int d = 0; d < head_dim; d++)
        out[d] = 0.0f;
    for (int j = 0; j < n_pos; j++, v += stride) {
        const float pj = p[j];
        for (int d = 0; d < head_dim; d++)
            out[d] += pj * v[d];
    }
}

void attn_wsum(const float *p, const float *v, size_t stride, int n_pos,
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
