/* repack.c - the model's matrices into the x8 layout (see repack.h). */
#include <stdio.h>
#include <string.h>
#include "llm/repack.h"
#include "mod/optab.h"
#include "plat/plat.h"

/* Groups of 8 rows per parallel-for item: big enough to amortise the
 * hand-out, small enough to balance 2..64 CPUs on a 256-row matrix. */
#define GROUPS_PER_ITEM 8

struct repack_job {
    void (*fn)(void *w, size_t row_bytes, int g0, int g1, void *tmp);
    uint8_t *w;
    size_t row_bytes;
    int groups;
    uint8_t *scratch;        /* plat_cpu_ids() slices of 8 rows each */
};

/* plat_parallel_for() body: items [begin, end), on this CPU's scratch. */
static void repack_items(void *ctx, int begin, int end, int cpu)
{
    const struct repack_job *j = ctx;
    int g1 = end * GROUPS_PER_ITEM < j->groups ? end * GROUPS_PER_ITEM : j->groups;
    j->fn(j->w, j->row_bytes, begin * GROUPS_PER_ITEM, g1, j->scratch + (size_t)cpu * 8 * j->row_bytes);
}

static int repack_one(struct llama_tensor *t, uint8_t *scratch, char *err, size_t errlen)
{
    int op = op_repack_for_type(t->type);
    if (op < 0 || t->ne1 < 8)
        return 0;
    if (!optab[op].fn) {
        snprintf(err, errlen, "no module provides %s (the image's module region lacks it)", optab[op].name);
        return -1;
    }
    struct repack_job j = {
        .fn = optab[op].fn, .w = (uint8_t *)(uintptr_t)t->data, .row_bytes = t->row_bytes,
        .groups = (int)(t->ne1 / 8), .scratch = scratch,
    };
    plat_parallel_for((j.groups + GROUPS_PER_ITEM - 1) / GROUPS_PER_ITEM, repack_items, &j);
    return 0;
}

/* Matrix i of the n_layer * 7 + 1 that go through a matrix product. */
static struct llama_tensor *matrix(struct llama_weights *w, uint32_t i)
{
    if (i == w->n_layer * 7)
        return &w->output;
    struct llama_layer *ly = &w->layers[i / 7];
    struct llama_tensor *all[7] = { &ly->attn_q, &ly->attn_k, &ly->attn_v, &ly->attn_output,
                                    &ly->ffn_gate, &ly->ffn_up, &ly->ffn_down };
    return all[i % 7];
}

int weights_repack(struct llama_weights *w, uint64_t *extra_bytes, char *err, size_t errlen)
{
    const uint32_t n = w->n_layer * 7 + 1;
    size_t widest = 0;
    *extra_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct llama_tensor *t = matrix(w, i);
        if (op_repack_for_type(t->type) >= 0 && t->row_bytes > widest)
            widest = t->row_bytes;
    }
    if (widest == 0)
        return 0;
    /* Repacking a range twice would scramble it: a file whose matrices
     * share bytes is refused (GGUF allows it; no real model does it). */
    for (uint32_t i = 0; i < n; i++) {
        const struct llama_tensor *a = matrix(w, i);
        if (op_repack_for_type(a->type) < 0 || (i == n - 1 && w->output_tied))
            continue;
        const uint8_t *a0 = a->data, *a1 = a0 + llama_tensor_bytes(a);
        for (uint32_t k = i + 1; k < n; k++) {
            const struct llama_tensor *b = matrix(w, k);
            if (op_repack_for_type(b->type) < 0 || (k == n - 1 && w->output_tied))
                continue;
            const uint8_t *b0 = b->data, *b1 = b0 + llama_tensor_bytes(b);
            if (a0 < b1 && b0 < a1) {
                snprintf(err, errlen, "weight matrices %u and %u share bytes in the file", i, k);
                return -1;
            }
        }
    }
    if (w->output_tied && op_repack_for_type(w->output.type) >= 0) {
        uint64_t bytes = llama_tensor_bytes(&w->output);
        void *copy = plat_alloc(bytes, 64);
        if (!copy) {
            snprintf(err, errlen, "no memory for a repacked copy of the tied output matrix (%llu MiB)",
                     (unsigned long long)(bytes >> 20));
            return -1;
        }
        memcpy(copy, w->output.data, bytes);
        w->output.data = copy;
        *extra_bytes = bytes;
    }
    uint64_t sbytes = (uint64_t)plat_cpu_ids() * 8 * widest;
    uint8_t *scratch = plat_alloc(sbytes, 64);
    if (!scratch) {
        snprintf(err, errlen, "no memory for the repacking scratch rows (%llu KiB)",
                 (unsigned long long)(sbytes >> 10));
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = repack_one(matrix(w, i), scratch, err, errlen);
    plat_free(scratch, sbytes);
    return rc;
}
