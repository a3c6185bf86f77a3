/* sort_u64.h - ascending sort of n uint64_t (timings, for minima and
 * medians): llvm-libc's qsort with the one comparator both callers need
 * (mod/tune.c, shell/cmd_mod.c's `prof bench`). */
#ifndef FLUID_SORT_U64_H
#define FLUID_SORT_U64_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static inline int sort_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static inline void sort_u64(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, sort_u64_cmp);
}

#endif
