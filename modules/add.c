/*
 * add.c - residual connection (module "add").
 */
#include "ops.h"

/* y[i] += x[i], n floats (ggml_add, in place). */
void add(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += x[i];
}
