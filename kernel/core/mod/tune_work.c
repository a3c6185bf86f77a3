/* tune_work.c - the workloads `tune` times (see tune_work.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86/insn.h"
#include "half.h"
#include "llm/engine.h"
#include "llm/model.h"
#include "mod/loader.h"
#include "mod/optab.h"
#include "mod/tune_work.h"
#include "plat/plat.h"

#define B ENGINE_BATCH
#define N_ACT 4            /* activation formats: act_ops[] */
#define MAX_MATS 9         /* matrices of one type in a block, plus the output */

enum kind { K_MM, K_DEQUANT, K_ACT, K_F16ATT, K_RMSNORM, K_ROPE, K_SWIGLU, K_ADD, K_SCORES, K_SOFTMAX, K_WSUM };

/* The ops converting float rows into a matrix product's activation
 * format (engine_act_op), indexed as in.act / in.uses. */
static const int act_ops[N_ACT] = { OP_QUANT_Q8_0S, OP_QUANT_Q8_K, OP_CONVERT_F16, OP_COPY_F32 };

static int act_index(int aop)
{
    for (int a = 0; a < N_ACT; a++)
        if (act_ops[a] == aop)
            return a;
    return 0;
}

/* Inputs shared by every workload. */
static struct {
    uint32_t D, FF, hd, n_head, n_kv, n_pos;
    uint32_t S;            /* floats per token row of x, x2, work: >= n_ff, n_embd + n_embd_kv */
    int uses[N_ACT][2];    /* format a converts rows of n_embd [0] / n_ff [1] in this model */
    float *x;              /* [B][S] activations in [-1, 1) */
    float *x2;             /* [B][S] a second operand (swiglu's up, add's x) */
    float *cs;             /* [head_dim] rope cos/sin pairs */
    ggml_half *qh;         /* [B][n_embd] queries as F16 (engine.c's qh) */
    ggml_half *kv;         /* [n_kv][n_pos][head_dim] the F16 K (and V) cache */
    float *scores;         /* [B][n_head][n_pos] softmax inputs / attention weights */
    uint8_t *act[N_ACT][2];/* activation rows converted by the baseline: [format][D or FF] */
    float *work;           /* [B][S] scratch */
    uint64_t bytes;        /* everything above, for plat_free */
    uint8_t *mem;
    uint8_t *evict;        /* TUNE_EVICT_BYTES read before each mm run (NULL: no memory) */
} in;

static uint32_t rng = 0x9E3779B9u;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static void fill(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
}

/* The tensors of type t in block l (plus the output matrix), into m. */
static int mats_of(int t, uint32_t l, const struct llama_tensor **m)
{
    const struct llama_layer *L = &model.m.w.layers[l];
    const struct llama_tensor *all[] = { &L->attn_q, &L->attn_k, &L->attn_v, &L->attn_output,
                                         &L->ffn_gate, &L->ffn_up, &L->ffn_down };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->type == t)
            m[n++] = all[i];
    if (model.m.w.output.type == t)
        m[n++] = &model.m.w.output;
    return n;
}

/* The scalar baseline's function for op (the reference of every check). */
static void *baseline_fn(int op)
{
    for (int i = 0; i < mods.n_loaded; i++)
        if ((mods.loaded[i].flags & FLUID_MOD_F_BASELINE) && mod_op_fn(&mods.loaded[i], op))
            return mod_op_fn(&mods.loaded[i], op);
    return NULL;
}

static size_t act_bytes(int aop, uint32_t n)
{
    switch (aop) {
    case OP_QUANT_Q8_0S: return n / QK8_0 * sizeof(struct block_q8_0s);
    case OP_QUANT_Q8_K: return n / QK_K * sizeof(struct block_q8_K);
    case OP_CONVERT_F16: return (size_t)n * 2;
    default: return (size_t)n * 4;
    }
}

/* Bytes one token's converted rows take in a K_ACT output: the n_embd
 * row and the n_ff row this model converts with format aop. */
static size_t act_row(int aop)
{
    int a = act_index(aop);
    return (in.uses[a][0] ? act_bytes(aop, in.D) : 0) + (in.uses[a][1] ? act_bytes(aop, in.FF) : 0);
}

static int has_work(const struct tune_work *w, int n, int op)
{
    for (int i = 0; i < n; i++)
        if (w[i].op == op)
            return 1;
    return 0;
}

/* Matrices of type t in block l, but the output matrix (the prefill's). */
static int batch_mats(int t, uint32_t l, const struct llama_tensor **m)
{
    int k = mats_of(t, l, m);
    return k && m[k - 1] == &model.m.w.output ? k - 1 : k;
}

/* The matrices an mm workload runs in block l: block 0's when block l has
 * none of them (every variant then times the same work). */
static int work_mats(const struct tune_work *w, uint32_t l, const struct llama_tensor **m)
{
    int dec = w->phase == FLUID_CHOICE_DECODE;
    int k = dec ? mats_of(w->wtype, l, m) : batch_mats(w->wtype, l, m);
    if (k == 0 && l != 0)
        k = dec ? mats_of(w->wtype, 0, m) : batch_mats(w->wtype, 0, m);
    return k;
}

static uint8_t *take(uint8_t **p, uint64_t bytes)
{
    uint8_t *r = *p;
    *p += (bytes + 63) & ~63ull;
    return r;
}

/* The output bytes a workload writes. */
static size_t out_bytes(const struct tune_work *w)
{
    switch (w->kind) {
    case K_MM: {
        /* the most any block needs (mixed-type files differ by block) */
        size_t most = 0;
        for (uint32_t l = 0; l < model.m.hp.n_layer; l++) {
            const struct llama_tensor *m[MAX_MATS];
            int n = work_mats(w, l, m);
            size_t s = 0;
            for (int i = 0; i < n; i++)
                s += (size_t)(B + 1) * m[i]->ne1 * 4;
            most = s > most ? s : most;
        }
        return most;
    }
    case K_DEQUANT: return (size_t)B * in.D * 4;
    case K_ACT: return (size_t)B * act_row(w->op);
    case K_F16ATT: return (size_t)B * (in.D + 2 * in.n_kv * in.hd) * 2;
    case K_RMSNORM: case K_ADD: return (size_t)B * in.D * 4;
    case K_SWIGLU: return (size_t)B * in.FF * 4;
    case K_ROPE: return (size_t)B * (in.n_head + in.n_kv) * in.hd * 4;
    case K_SCORES: case K_SOFTMAX: return (size_t)B * in.n_head * in.n_pos * 4;
    case K_WSUM: return (size_t)B * in.n_head * in.hd * 4;
    }
    return 0;
}

int tune_work_init(struct tune_work *w, char *err, size_t cap)
{
    if (!model.loaded) {
        snprintf(err, cap, "no model is loaded: tune times the ops on the model's shapes");
        return -1;
    }
    const struct llama_hparams *hp = &model.m.hp;
    in.D = hp->n_embd;
    in.FF = hp->n_ff;
    in.S = hp->n_ff > hp->n_embd + hp->n_embd_kv ? hp->n_ff : hp->n_embd + hp->n_embd_kv;
    memset(in.uses, 0, sizeof in.uses);
    in.hd = hp->head_dim;
    in.n_head = hp->n_head;
    in.n_kv = hp->n_head_kv;
    in.n_pos = (uint32_t)(model.eng.n_ctx < TUNE_ATTN_POS ? model.eng.n_ctx : TUNE_ATTN_POS);
    /* Which ops the forward pass calls (engine.c), one workload each. */
    int n = 0;
    const struct llama_weights *wt = &model.m.w;
    const struct llama_layer *L = &wt->layers[0];
    const struct llama_tensor *mats[] = { &L->attn_q, &L->attn_k, &L->attn_v, &L->attn_output, &L->ffn_gate,
                                          &L->ffn_up, &L->ffn_down, &wt->output };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        int mop = op_mm_for_type(mats[i]->type), aop = engine_act_op(mats[i]->type);
        in.uses[act_index(aop)][mats[i]->ne0 != in.D] = 1;
        if (!has_work(w, n, mop)) {
            const struct llama_tensor *bm[MAX_MATS];
            if (batch_mats(mats[i]->type, 0, bm))
                w[n++] = (struct tune_work){ .op = mop, .kind = K_MM, .wtype = mats[i]->type,
                                             .cmp = TUNE_CMP_F32, .phase = FLUID_CHOICE_ALL };
            w[n++] = (struct tune_work){ .op = mop, .kind = K_MM, .wtype = mats[i]->type, .cmp = TUNE_CMP_F32,
                                         .phase = FLUID_CHOICE_DECODE };
        }
        if (!has_work(w, n, aop)) {
            enum tune_cmp c = aop == OP_QUANT_Q8_0S ? TUNE_CMP_Q8_0S : aop == OP_QUANT_Q8_K ? TUNE_CMP_Q8_K
                            : aop == OP_CONVERT_F16 ? TUNE_CMP_F16 : TUNE_CMP_F32;
            w[n++] = (struct tune_work){ .op = aop, .kind = K_ACT, .wtype = mats[i]->type, .cmp = c };
        }
    }
    int dq = op_dequant_for_type(wt->token_embd.type);
    w[n++] = (struct tune_work){ .op = dq, .kind = K_DEQUANT, .wtype = wt->token_embd.type, .cmp = TUNE_CMP_F32 };
    static const struct { int op, kind; } rest[] = {
        { OP_RMSNORM, K_RMSNORM }, { OP_ROPE, K_ROPE }, { OP_SWIGLU, K_SWIGLU }, { OP_ADD, K_ADD },
        { OP_ATTN_SCORES, K_SCORES }, { OP_SOFTMAX, K_SOFTMAX }, { OP_ATTN_WSUM, K_WSUM },
    };
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        w[n++] = (struct tune_work){ .op = rest[i].op, .kind = rest[i].kind, .cmp = TUNE_CMP_F32 };
    /* Attention's F16 K, V and queries (engine.c attention()); an F16
     * matrix's activations already time convert_f16 on its rows. */
    if (!has_work(w, n, OP_CONVERT_F16))
        w[n++] = (struct tune_work){ .op = OP_CONVERT_F16, .kind = K_F16ATT, .cmp = TUNE_CMP_F16 };

    /* Shared inputs, then each workload's output buffer, in one allocation. */
    uint64_t bytes = 0;
    uint64_t sizes[] = { (uint64_t)B * in.S * 4, (uint64_t)B * in.S * 4, (uint64_t)in.hd * 4,
                         (uint64_t)B * in.D * 2, (uint64_t)in.n_kv * in.n_pos * in.hd * 2,
                         (uint64_t)B * in.n_head * in.n_pos * 4, (uint64_t)B * in.S * 4 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        bytes += (sizes[i] + 63) & ~63ull;
    for (int a = 0; a < N_ACT; a++)
        bytes += 2 * (((uint64_t)B * act_bytes(act_ops[a], in.S) + 63) & ~63ull);
    for (int i = 0; i < n; i++) {
        w[i].out_bytes = out_bytes(&w[i]);
        bytes += (w[i].out_bytes + 63) & ~63ull;
    }
    in.bytes = (bytes + 4095) & ~4095ull;
    in.mem = plat_alloc(in.bytes, 4096);
    if (!in.mem) {
        snprintf(err, cap, "no memory for the workloads (%llu KiB)", (unsigned long long)(in.bytes / 1024));
        return -1;
    }
    /* Written once, so its reads touch real memory (not a shared zero page). */
    in.evict = plat_alloc(TUNE_EVICT_BYTES, 4096);
    if (in.evict)
        memset(in.evict, 1, TUNE_EVICT_BYTES);
    uint8_t *p = in.mem;
    in.x = (float *)take(&p, sizes[0]);
    in.x2 = (float *)take(&p, sizes[1]);
    in.cs = (float *)take(&p, sizes[2]);
    in.qh = (ggml_half *)take(&p, sizes[3]);
    in.kv = (ggml_half *)take(&p, sizes[4]);
    in.scores = (float *)take(&p, sizes[5]);
    in.work = (float *)take(&p, sizes[6]);
    rng = 0x9E3779B9u;
    fill(in.x, (size_t)B * in.S);
    fill(in.x2, (size_t)B * in.S);
    fill(in.cs, in.hd);
    for (size_t t = 0; t < B; t++)
        for (size_t i = 0; i < in.D; i++)
            in.qh[t * in.D + i] = fp32_to_fp16(in.x[t * in.S + i]);
    for (size_t i = 0; i < (size_t)in.n_kv * in.n_pos * in.hd; i++)
        in.kv[i] = fp32_to_fp16(frand());
    fill(in.scores, (size_t)B * in.n_head * in.n_pos);
    for (int a = 0; a < N_ACT; a++) {
        int aop = act_ops[a];
        void (*conv)(const float *, void *, int) = baseline_fn(aop);
        for (int d = 0; d < 2; d++) {
            uint32_t len = d ? in.FF : in.D;
            in.act[a][d] = take(&p, (uint64_t)B * act_bytes(aop, in.S));
            if (!in.uses[a][d])
                continue;   /* a format this model's matrices do not use */
            if (!conv) {
                plat_free(in.mem, in.bytes);
                snprintf(err, cap, "no baseline module for %s (the reference converter)", optab[aop].name);
                return -1;
            }
            for (int t = 0; t < B; t++)
                conv(in.x + (size_t)t * in.S, in.act[a][d] + (size_t)t * act_bytes(aop, len), (int)len);
        }
    }
    for (int i = 0; i < n; i++) {
        w[i].out = take(&p, w[i].out_bytes);
        memset(w[i].out, 0, w[i].out_bytes);
        struct tune_work *x = &w[i];
        if (x->kind == K_MM) {
            const struct llama_tensor *m[MAX_MATS];
            int k = work_mats(x, 0, m);
            char ph[24];
            if (x->phase == FLUID_CHOICE_DECODE)
                snprintf(ph, sizeof ph, "decode, 1 token");
            else
                snprintf(ph, sizeof ph, "prefill, %d tokens", B);
            snprintf(x->shapes, sizeof x->shapes, "%s: %d matri%s %llux%llu%s", ph, k, k == 1 ? "x" : "ces",
                     (unsigned long long)m[0]->ne0, (unsigned long long)m[0]->ne1, k > 1 ? ",..." : "");
        } else if (x->kind == K_ACT) {
            int a = act_index(x->op);
            snprintf(x->shapes, sizeof x->shapes, "rows of %s%s%s", in.uses[a][0] ? "n_embd" : "",
                     in.uses[a][0] && in.uses[a][1] ? " and " : "", in.uses[a][1] ? "n_ff" : "");
        } else if (x->kind == K_SCORES || x->kind == K_SOFTMAX || x->kind == K_WSUM) {
            snprintf(x->shapes, sizeof x->shapes, "%u heads x %u positions x %u", in.n_head, in.n_pos, in.hd);
        } else if (x->kind == K_F16ATT) {
            snprintf(x->shapes, sizeof x->shapes, "q of %u, k and v rows of %u", in.D, in.hd);
        } else if (x->kind == K_ROPE) {
            snprintf(x->shapes, sizeof x->shapes, "%u+%u heads of %u", in.n_head, in.n_kv, in.hd);
        } else {
            snprintf(x->shapes, sizeof x->shapes, "%u floats", x->kind == K_SWIGLU ? in.FF : in.D);
        }
    }
    return n;
}

void tune_work_free(struct tune_work *w, int n)
{
    (void)w, (void)n;
    if (in.mem)
        plat_free(in.mem, in.bytes);
    if (in.evict)
        plat_free(in.evict, TUNE_EVICT_BYTES);
    in.mem = NULL;
    in.evict = NULL;
}

int tune_work_evicts(void)
{
    return in.evict != NULL;
}

/* ---- running ---- */

/* Attention over heads [h0, h1) of every token, split like engine.c's. */
struct attn_ctx { const struct tune_work *w; void *fn; };

static void attn_part(void *ctx, int h0, int h1, int cpu)
{
    (void)cpu;
    const struct attn_ctx *a = ctx;
    const struct tune_work *w = a->w;
    uint32_t hd = in.hd, np = in.n_pos, group = in.n_head / in.n_kv;
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < B; t++)
        for (int h = h0; h < h1; h++) {
            const ggml_half *kv = in.kv + (size_t)((uint32_t)h / group) * np * hd;
            float *s = (float *)w->out + ((size_t)t * in.n_head + (size_t)h) * np;
            if (w->kind == K_SCORES) {
                const ggml_half *q = in.qh + (size_t)t * in.D + (size_t)h * hd;
                ((void (*)(const ggml_half *, const ggml_half *, size_t, int, int, float, float *))a->fn)(
                    q, kv, hd, (int)np, (int)hd, scale, s);
            } else if (w->kind == K_SOFTMAX) {
                ((void (*)(float *, int))a->fn)(s, (int)np);
            } else {
                const float *pr = in.scores + ((size_t)t * in.n_head + (size_t)h) * np;
                float *o = (float *)w->out + ((size_t)t * in.n_head + (size_t)h) * hd;
                ((void (*)(const float *, const ggml_half *, size_t, int, int, float *))a->fn)(
                    pr, kv, hd, (int)np, (int)hd, o);
            }
        }
}

/* The softmax inputs are positive-ish weights for attn_wsum, raw scores
 * for softmax: both come from in.scores. */
static void restore(const struct tune_work *w)
{
    size_t rowD = (size_t)in.D * 4, rowF = (size_t)in.FF * 4, rowR = (size_t)(in.n_head + in.n_kv) * in.hd * 4;
    switch (w->kind) {
    case K_ADD:
        for (int t = 0; t < B; t++)
            memcpy(w->out + (size_t)t * rowD, in.x + (size_t)t * in.S, rowD);
        break;
    case K_SWIGLU:
        for (int t = 0; t < B; t++)
            memcpy(w->out + (size_t)t * rowF, in.x + (size_t)t * in.S, rowF);
        break;
    case K_ROPE:
        for (int t = 0; t < B; t++)
            memcpy(w->out + (size_t)t * rowR, in.x + (size_t)t * in.S, rowR);
        break;
    case K_SOFTMAX:
        memcpy(w->out, in.scores, w->out_bytes);
        break;
    default:
        break;
    }
}

static void nothing(void *ctx, int begin, int end, int cpu)
{
    (void)ctx, (void)begin, (void)end, (void)cpu;
}

/* Read pieces [begin, end) of the eviction buffer, one cache line each
 * 64 bytes (the sum keeps the loads). */
#define EVICT_PIECE (1u << 20)
static void evict_part(void *ctx, int begin, int end, int cpu)
{
    (void)ctx, (void)cpu;
    uint64_t s = 0;
    for (size_t i = (size_t)begin * EVICT_PIECE; i < (size_t)end * EVICT_PIECE; i += 64)
        s += *(volatile const uint8_t *)(in.evict + i);
    __asm__ volatile("" : : "r"(s));
}

uint64_t tune_work_run(struct tune_work *w, void *fn, uint32_t layer, uint64_t *dec, uint64_t *pre)
{
    uint32_t l = layer % model.m.hp.n_layer;
    restore(w);
    /* Untimed: a matrix product's weights leave every cache first, as in
     * a forward pass (which reads all other blocks' weights in between);
     * else a variant timed right after another on the same block would
     * read them from the last-level cache (25 MB of a TinyLlama Q4_0
     * block fit a 32 MiB L3).  Then wake the workers, which sleep after a
     * while without work (a wake-up is tens of microseconds: not the
     * variant's cost). */
    if (w->kind == K_MM && in.evict)
        plat_parallel_for((int)(TUNE_EVICT_BYTES / EVICT_PIECE), evict_part, NULL);
    plat_parallel_for(plat_cpus_online(), nothing, NULL);
    uint64_t t0 = tsc_begin(), t2;
    switch (w->kind) {
    case K_MM: {
        const struct llama_tensor *m[MAX_MATS];
        int k = work_mats(w, l, m), a = act_index(engine_act_op(w->wtype));
        /* Per matrix: its decode output row, then room for the batch's. */
        int batch = w->phase != FLUID_CHOICE_DECODE, n_tok = batch ? B : 1;
        float *y = (float *)w->out;
        for (int i = 0; i < k; i++) {
            int d = m[i]->ne0 != in.D;
            struct matmul_args args = {
                .w = m[i]->data, .w_row_bytes = m[i]->row_bytes, .x = in.act[a][d],
                .x_row_bytes = engine_act_row_bytes(w->wtype, m[i]->ne0), .y = batch ? y + m[i]->ne1 : y,
                .ldy = m[i]->ne1, .n_in = (int)m[i]->ne0, .row0 = 0, .row1 = (int)m[i]->ne1, .n_tok = n_tok,
                .n_rows = (int)m[i]->ne1,
            };
            engine_matmul(w->op, (void (*)(const struct matmul_args *))fn, &args);
            y += (size_t)(B + 1) * m[i]->ne1;
        }
        break;
    }
    case K_DEQUANT: {
        /* B token lookups; rows spread over the table, different per block */
        const struct llama_tensor *e = &model.m.w.token_embd;
        for (int t = 0; t < B; t++) {
            uint64_t row = ((uint64_t)l * 7919u + (uint64_t)t * 997u + 1u) % e->ne1;
            ((void (*)(const void *, float *, int))fn)((const uint8_t *)e->data + row * e->row_bytes,
                                                       (float *)w->out + (size_t)t * in.D, (int)in.D);
        }
        break;
    }
    case K_F16ATT: {
        /* per token: q (n_embd), then each KV head's k and v row */
        void (*conv)(const float *, void *, int) = fn;
        size_t row = in.D + 2 * (size_t)in.n_kv * in.hd;
        for (int t = 0; t < B; t++) {
            ggml_half *o = (ggml_half *)w->out + (size_t)t * row;
            const float *x = in.x + (size_t)t * in.S;
            conv(x, o, (int)in.D);
            for (uint32_t h = 0; h < 2 * in.n_kv; h++)
                conv(in.x2 + (size_t)t * in.S + h * in.hd % in.D, o + in.D + (size_t)h * in.hd, (int)in.hd);
        }
        break;
    }
    case K_ACT: {
        void (*conv)(const float *, void *, int) = fn;
        int a = act_index(w->op);
        size_t row = act_row(w->op), bd = in.uses[a][0] ? act_bytes(w->op, in.D) : 0;
        for (int t = 0; t < B; t++) {
            if (in.uses[a][0])
                conv(in.x + (size_t)t * in.S, w->out + (size_t)t * row, (int)in.D);
            if (in.uses[a][1])
                conv(in.x2 + (size_t)t * in.S, w->out + (size_t)t * row + bd, (int)in.FF);
        }
        break;
    }
    case K_RMSNORM: {
        const float *g = model.m.w.layers[l].attn_norm.data;
        for (int t = 0; t < B; t++)
            ((void (*)(float *, const float *, const float *, int, float))fn)(
                (float *)w->out + (size_t)t * in.D, in.x + (size_t)t * in.S, g, (int)in.D, model.m.hp.rms_eps);
        break;
    }
    case K_ROPE: {
        float *q = (float *)w->out;
        for (int t = 0; t < B; t++) {
            float *row = q + (size_t)t * (in.n_head + in.n_kv) * in.hd;
            ((void (*)(float *, int, int, const float *))fn)(row, (int)in.n_head, (int)in.hd, in.cs);
            ((void (*)(float *, int, int, const float *))fn)(row + (size_t)in.n_head * in.hd, (int)in.n_kv,
                                                             (int)in.hd, in.cs);
        }
        break;
    }
    case K_SWIGLU:
        for (int t = 0; t < B; t++) {
            float *g = (float *)w->out + (size_t)t * in.FF;
            ((void (*)(float *, const float *, const float *, int))fn)(g, g, in.x2 + (size_t)t * in.S, (int)in.FF);
        }
        break;
    case K_ADD:
        for (int t = 0; t < B; t++)
            ((void (*)(float *, const float *, int))fn)((float *)w->out + (size_t)t * in.D,
                                                       in.x2 + (size_t)t * in.S, (int)in.D);
        break;
    case K_SCORES: case K_SOFTMAX: case K_WSUM: {
        struct attn_ctx a = { w, fn };
        plat_parallel_for((int)in.n_head, attn_part, &a);
        break;
    }
    }
    t2 = tsc_end();
    if (w->kind == K_MM && w->phase == FLUID_CHOICE_DECODE) {
        *dec = t2 - t0;
        *pre = 0;
        return *dec;
    }
    if (w->kind == K_MM) {
        *dec = 0;
        *pre = t2 - t0;
        return *pre / B;
    }
    *dec = *pre = t2 - t0;
    return (t2 - t0) / B;
}

/* ---- comparing ---- */

static double dev(double y, double r, double *maxref)
{
    double a = __builtin_fabs(r);
    if (a > *maxref)
        *maxref = a;
    if (isnan(y) || isinf(y))
        return isfinite(r) ? INFINITY : 0.0;
    return __builtin_fabs(y - r);
}

double tune_work_compare(const struct tune_work *w, const uint8_t *ref, int *ok)
{
    double worst = 0.0, maxref = 0.0;
    *ok = 1;
    if (w->cmp == TUNE_CMP_F32 || w->cmp == TUNE_CMP_F16) {
        size_t n = w->out_bytes / (w->cmp == TUNE_CMP_F32 ? 4 : 2);
        for (size_t i = 0; i < n; i++) {
            double y, r;
            if (w->cmp == TUNE_CMP_F32) {
                y = ((const float *)w->out)[i];
                r = ((const float *)ref)[i];
            } else {
                y = fp16_to_fp32(((const uint16_t *)w->out)[i]);
                r = fp16_to_fp32(((const uint16_t *)ref)[i]);
            }
            double d = dev(y, r, &maxref);
            if (d > worst)
                worst = d;
        }
        double rel = maxref > 0 ? worst / maxref : worst;
        *ok = rel <= TUNE_TOLERANCE;
        return rel;
    }
    /* Quantised activation blocks: dequantise both; a quant may differ by
     * one step (a rounding tie broken the other way), a scale by the
     * tolerance; Q8_K's bsums and Q8_0S's sum must match its own quants. */
    int k = w->cmp == TUNE_CMP_Q8_K;
    size_t bb = k ? sizeof(struct block_q8_K) : sizeof(struct block_q8_0s), nq = k ? QK_K : QK8_0;
    for (size_t off = 0; off + bb <= w->out_bytes; off += bb) {
        float dy, dr;
        const int8_t *qy, *qr;
        if (k) {
            const struct block_q8_K *y = (const void *)(w->out + off), *r = (const void *)(ref + off);
            dy = y->d, dr = r->d, qy = y->qs, qr = r->qs;
            for (int g = 0; g < QK_K / 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++)
                    s += y->qs[g * 16 + j];
                if (s != y->bsums[g])
                    *ok = 0;
            }
        } else {
            const struct block_q8_0s *y = (const void *)(w->out + off), *r = (const void *)(ref + off);
            dy = y->d, dr = r->d, qy = y->qs, qr = r->qs;
            int sum = 0;
            for (int j = 0; j < QK8_0; j++)
                sum += y->qs[j];
            if (-8 * sum != y->msum8)
                *ok = 0;
        }
        if (!(__builtin_fabs((double)dy - dr) <= TUNE_TOLERANCE * __builtin_fabs((double)dr)))
            *ok = 0;
        for (size_t j = 0; j < nq; j++) {
            if (abs(qy[j] - qr[j]) > 1)
                *ok = 0;
            double d = dev((double)dy * qy[j], (double)dr * qr[j], &maxref);
            if (d > worst)
                worst = d;
        }
    }
    return maxref > 0 ? worst / maxref : worst;
}
