/*
 * add.c - residual connection (module "add").
 */
#include "ops.h"

/* y[i] += x[i], n floats (ggml_add, in place). */
static inline __attribute__((always_inline)) void add_n(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += x[i];
}

void add(float *y, const float *x, int n)
{
#if defined(FLUID_SHAPE_N_EMBD)
    /* Shape-specialised build: constant trip count when the model matches. */
    if (n == FLUID_SHAPE_N_EMBD) {
        add_n(y, x, FLUID_SHAPE_N_EMBD);
        return;
    }
#endif
    add_n(y, x, n);
}
