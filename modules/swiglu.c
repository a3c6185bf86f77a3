/*
 * swiglu.c - SwiGLU gate of the feed-forward block (module "swiglu";
 * Shazeer 2020, "GLU Variants Improve Transformer").
 */
#include "ops.h"

/* out[i] = silu(g[i]) * u[i], silu(v) = v / (1 + expf(-v)) as ggml_silu_f32
 * (expf from the services table), then ggml_mul by u.  n floats; out may
 * equal g or u. */
static inline __attribute__((always_inline)) void swiglu_n(float *out, const float *g, const float *u, int n)
{
    float (*const expf_)(float) = fluid_svc->expf;
    for (int i = 0; i < n; i++) {
        const float v = g[i];
        out[i] = (v / (1.0f + expf_(-v))) * u[i];
    }
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
