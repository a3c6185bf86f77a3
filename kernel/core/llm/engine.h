/*
 * engine.h - the Llama forward pass (llama2.c-style, one readable file):
 * token embedding, per block RMSNorm -> Q/K/V -> RoPE -> causal GQA
 * attention over the KV cache -> output projection -> residual, RMSNorm ->
 * SwiGLU feed-forward -> residual; final RMSNorm and output projection.
 * Formulas as llama.cpp computes them (REFERENCE.md "Llama forward pass").
 *
 * Prompt tokens go through in batches of up to n_batch (matrix-matrix
 * products); decode is a batch of one.  Every compute kernel is reached
 * through the module table (mod/optab.h).
 *
 * Matrix products are split by output rows and attention by heads over
 * every online core (plat_parallel_for()); each output element is computed
 * by exactly one core with the same code, so results do not depend on
 * the number of cores.
 */
#ifndef FLUID_ENGINE_H
#define FLUID_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "llm/llama_model.h"
#include "ops.h"   /* ggml_half, struct matmul_args */

#define ENGINE_BATCH 32   /* tokens per forward call, at most */

struct engine {
    const struct llama_model *m;
    struct llama_hparams hp;
    int n_ctx;            /* positions the KV cache holds */
    int n_past;           /* positions already in the KV cache */
    /* Activations, [ENGINE_BATCH][width] floats each. */
    float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2;
    float *att;           /* [n_att][att_stride]: each CPU's attention scores */
    int n_att;            /* rows of att: plat_cpus_online() at engine_init() */
    size_t att_stride;    /* floats between rows of att (>= n_ctx) */
    float *logits;        /* [ENGINE_BATCH][n_vocab] */
    float *rope_cs;       /* [ENGINE_BATCH][head_dim]: cos, sin pairs */
    uint8_t *act;         /* activation rows converted for the dot products */
    size_t act_row;       /* bytes of one converted row, at most */
    ggml_half *qh;        /* [ENGINE_BATCH][n_embd]: q as F16 for attention */
    ggml_half *kcache, *vcache; /* F16 [n_layer][n_head_kv][n_ctx][head_dim] */
    uint64_t mem_bytes;   /* memory this engine took */
};

/* The activation format each weight type's dot product wants (ggml's
 * vec_dot_type, modules/ops.h: F32 -> F32, F16 -> F16, Q4_0/Q8_0 ->
 * Q8_0S, K-quants -> Q8_K) as the op converting a float row into it
 * (OP_COPY_F32, ...), and the bytes of one converted row of n floats. */
int engine_act_op(int wtype);
size_t engine_act_row_bytes(int wtype, uint64_t n);

/* The product a describes (rows a->row0..a->row1 of a->n_rows) computed
 * by mm, its output rows split in blocks over every online core as the
 * forward pass splits them; profiled as op.  Returns when all are done. */
void engine_matmul(int op, void (*mm)(const struct matmul_args *), const struct matmul_args *a);

/* Bytes of the KV cache for n_ctx positions (F16 keys and values: 2 x
 * n_layer x n_embd_kv x n_ctx halves), part of engine_mem_bytes(). */
uint64_t engine_kv_bytes(const struct llama_hparams *hp, int n_ctx);

/* Bytes engine_init() needs for this model and context length (with one
 * attention scratch row per online CPU: call after the platform started its workers). */
uint64_t engine_mem_bytes(const struct llama_hparams *hp, int n_ctx);

/* Set up buffers in `mem` (mem_bytes long, 64-byte aligned).  Returns 0,
 * or -1 when mem is too small (err says so). */
int engine_init(struct engine *e, const struct llama_model *m, int n_ctx,
                void *mem, uint64_t mem_bytes, char *err, size_t err_size);

/* Forget the context (KV cache positions). */
void engine_reset(struct engine *e);

/* Run n (1..ENGINE_BATCH) tokens at positions n_past..n_past+n-1 and
 * append them to the KV cache.  Logits of every token of the batch when
 * all_logits, else of the last one only, land in e->logits (row i for
 * token i; the last token's row is n-1 either way).
 * Returns 0; -1 if n is out of range; -2 if the context would overflow
 * (nothing is changed then); -3 if a token id is out of range. */
int engine_forward(struct engine *e, const int32_t *tokens, int n, int all_logits);
#endif
