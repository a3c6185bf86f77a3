/*
 * rope.c - rotary position embedding (module "rope"; Su et al. 2021,
 * RoFormer), ggml rope "normal" mode as used for the llama architecture.
 */
#include "ops.h"

/* For each of n_heads heads of head_dim floats in x, and i < head_dim/2:
 *   (x0, x1) = (x[2i], x[2i+1]), c = cs[2i], s = cs[2i+1],
 *   x[2i] = x0*c - x1*s,  x[2i+1] = x0*s + x1*c   (ggml rope_yarn with
 * ext_factor 0: c, s = cos, sin of pos * base^(-2i/head_dim)). */
void rope(float *x, int n_heads, int head_dim, const float *cs)
{
    for (int h = 0; h < n_heads; h++, x += head_dim) {
        for (int i = 0; i < head_dim / 2; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = x0 * c - x1 * s;
            x[2 * i + 1] = x0 * s + x1 * c;
        }
    }
}
