/*
 * swiglu.c - SwiGLU gate of the feed-forward block (module "swiglu";
 * Shazeer 2020, "GLU Variants Improve Transformer").
 */
#include "vexpf.h"

/* out[i] = silu(g[i]) * u[i], silu(v) = v / (1 + expf(-v)) as ggml_silu_f32,
 * then ggml_mul by u.  n floats; out may equal g or u.  expf: vexpf8 in
 * the AVX2 build (every element, the last partial vector through a padded
 * copy, so an element's result does not depend on where it sits), the
 * services table's otherwise. */
#if defined(FLUID_AVX2)
/* out[0..8) from g[0..8), u[0..8): the formula below, 8 at a time. */
FLUID_INLINE void swiglu8(float *out, const float *g, const float *u)
{
    const __m256 v = _mm256_loadu_ps(g);
    const __m256 e = vexpf8(_mm256_sub_ps(_mm256_setzero_ps(), v));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)),
                                        _mm256_loadu_ps(u)));
}
#endif

FLUID_INLINE void swiglu_n(float *out, const float *g, const float *u, int n)
{
#if defined(FLUID_AVX2)
    int i = 0;
    for (; i + 8 <= n; i += 8)
        swiglu8(out + i, g + i, u + i);
    if (i < n) {
        float gv[8] = {0}, uv[8] = {0}, ov[8];
        __builtin_memcpy(gv, g + i, (size_t)(n - i) * sizeof *g);
        __builtin_memcpy(uv, u + i, (size_t)(n - i) * sizeof *u);
        swiglu8(ov, gv, uv);
        __builtin_memcpy(out + i, ov, (size_t)(n - i) * sizeof *out);
    }
#else
    float (*const expf_)(float) = fluid_svc->expf;
    for (int i = 0; i < n; i++) {
        const float v = g[i];
        out[i] = (v / (1.0f + expf_(-v))) * u[i];
    }
#endif
}

void swiglu(float *out, const float *g, const float *u, int n)
{
#if defined(FLUID_SHAPE_N_FF)
    /* Shape-specialised build: constant trip count when the model matches. */
    if (n == FLUID_SHAPE_N_FF) {
        swiglu_n(out, g, u, FLUID_SHAPE_N_FF);
        return;
    }
#endif
    swiglu_n(out, g, u, n);
}
