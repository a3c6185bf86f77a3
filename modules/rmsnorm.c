/*
 * rmsnorm.c - RMSNorm (module "rmsnorm"; Zhang & Sennrich 2019).
 */
#include "ops.h"

/* out[i] = (x[i] * scale) * w[i], scale = 1/sqrtf(mean(x^2) + eps), n floats.
 * As ggml_compute_forward_rms_norm_f32 followed by ggml_mul: the squares
 * are float products summed in double, mean rounded to float.  out may
 * equal x. */
static inline __attribute__((always_inline)) void rmsnorm_n(float *out, const float *x, const float *w,
                                                            int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / __builtin_elementwise_sqrt(mean + eps);
    for (int i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
#if defined(FLUID_SHAPE_N_EMBD)
    /* Shape-specialised build (tools/pgo.py, module_abi.h): a constant trip
     * count when the model matches, the generic loop otherwise. */
    if (n == FLUID_SHAPE_N_EMBD) {
        rmsnorm_n(out, x, w, FLUID_SHAPE_N_EMBD, eps);
        return;
    }
#endif
    rmsnorm_n(out, x, w, n, eps);
}
