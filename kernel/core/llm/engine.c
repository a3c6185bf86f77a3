/* engine.c - the forward pass (see engine.h). */
#include <math.h>
#include <string.h>
#include <stdio.h>
#include "llm/engine.h"
#include "mod/prof.h"
#include "plat/plat.h"

static uint64_t up64(uint64_t v) { return (v + 63) & ~63ull; }

int engine_act_op(int wtype)
{
    switch (wtype) {
    case GGML_TYPE_F32: return OP_COPY_F32;
    case GGML_TYPE_F16: return OP_CONVERT_F16;
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q8_0: return OP_QUANT_Q8_0S;
    case GGML_TYPE_Q5_0: return OP_QUANT_Q8_0;
    case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: return OP_QUANT_Q8_1;
    default: return OP_QUANT_Q8_K;
    }
}

size_t engine_act_row_bytes(int wtype, uint64_t n)
{
    switch (engine_act_op(wtype)) {
    case OP_COPY_F32: return n * 4;
    case OP_CONVERT_F16: return n * 2;
    case OP_QUANT_Q8_0S: return n / QK8_0 * sizeof(struct block_q8_0s);
    case OP_QUANT_Q8_0: return n / QK8_0 * sizeof(struct block_q8_0);
    case OP_QUANT_Q8_1: return n / QK8_1 * sizeof(struct block_q8_1);
    default: return n / QK_K * sizeof(struct block_q8_K);
    }
}

uint64_t engine_kv_bytes(const struct llama_hparams *hp, int n_ctx)
{
    return 2 * up64((uint64_t)hp->n_layer * hp->n_embd_kv * n_ctx * sizeof(ggml_half));
}

uint64_t engine_mem_bytes(const struct llama_hparams *hp, int n_ctx)
{
    uint64_t B = ENGINE_BATCH, big = hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd;
    uint64_t f = 0;
    f += 4 * up64(B * hp->n_embd * 4);              /* x, xb, xb2, q */
    f += 2 * up64(B * hp->n_embd_kv * 4);           /* k, v */
    f += 2 * up64(B * hp->n_ff * 4);                /* hb, hb2 */
    f += (uint64_t)plat_cpus_online() * up64((uint64_t)n_ctx * 4);   /* att, one per CPU */
    f += up64(B * hp->n_vocab * 4);                 /* logits */
    f += up64(B * hp->head_dim * 4);                /* rope_cs */
    f += up64(B * big * 4);                         /* act (>= any format) */
    f += up64(B * hp->n_embd * 2);                  /* qh: q as F16 */
    f += engine_kv_bytes(hp, n_ctx);                /* F16 KV cache */
    return f;
}

int engine_init(struct engine *e, const struct llama_model *m, int n_ctx,
                void *mem, uint64_t mem_bytes, char *err, size_t err_size)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    e->hp = m->hp;
    e->n_ctx = n_ctx;
    uint64_t need = engine_mem_bytes(&e->hp, n_ctx);
    if (mem_bytes < need) {
        snprintf(err, err_size, "engine: needs %llu bytes, got %llu",
                 (unsigned long long)need, (unsigned long long)mem_bytes);
        return -1;
    }
    const struct llama_hparams *hp = &e->hp;
    uint64_t B = ENGINE_BATCH, big = hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd;
    uint8_t *p = mem;
#define TAKE(ptr, bytes) do { ptr = (void *)p; p += up64(bytes); } while (0)
    TAKE(e->x, B * hp->n_embd * 4);
    TAKE(e->xb, B * hp->n_embd * 4);
    TAKE(e->xb2, B * hp->n_embd * 4);
    TAKE(e->q, B * hp->n_embd * 4);
    TAKE(e->k, B * hp->n_embd_kv * 4);
    TAKE(e->v, B * hp->n_embd_kv * 4);
    TAKE(e->hb, B * hp->n_ff * 4);
    TAKE(e->hb2, B * hp->n_ff * 4);
    e->n_att = plat_cpus_online();
    e->att_stride = up64((uint64_t)n_ctx * 4) / 4;
    TAKE(e->att, (uint64_t)e->n_att * e->att_stride * 4);
    TAKE(e->logits, B * hp->n_vocab * 4);
    TAKE(e->rope_cs, B * hp->head_dim * 4);
    TAKE(e->act, B * big * 4);
    TAKE(e->qh, B * hp->n_embd * 2);
    TAKE(e->kcache, (uint64_t)hp->n_layer * hp->n_embd_kv * n_ctx * 2);
    TAKE(e->vcache, (uint64_t)hp->n_layer * hp->n_embd_kv * n_ctx * 2);
#undef TAKE
    e->act_row = big * 4;
    e->mem_bytes = need;
    return 0;
}

void engine_reset(struct engine *e)
{
    e->n_past = 0;
}

/* Output rows are handed out in blocks of MM_ROW_GRAIN: each CPU's part of
 * Y then covers whole cache lines, and the kernels' 8-row SIMD tiles are
 * never cut (a row's result does not depend on the split anyway, see
 * modules/mm_common.h). */
#define MM_ROW_GRAIN 16

/* Up to MM_GROUP_MAX products with the same input run as one job: their
 * row blocks one after another, so q/k/v and gate/up meet once at the
 * end instead of after each (k and v have only 16 blocks each). */
#define MM_GROUP_MAX 3

struct mm_job {
    int count;
    struct matmul_args a[MM_GROUP_MAX];     /* all rows of each */
    void (*mm[MM_GROUP_MAX])(const struct matmul_args *);
    int op[MM_GROUP_MAX];
    int first[MM_GROUP_MAX + 1];            /* product m: blocks first[m]..first[m+1]-1 */
};

/* plat_parallel_for() body: row blocks [begin, end) of the job's
 * products, each block's rows computed by its own product's module. */
static void mm_rows(void *ctx, int begin, int end, int cpu)
{
    const struct mm_job *j = ctx;
    (void)cpu;
    for (int m = 0; m < j->count; m++) {
        int b0 = begin > j->first[m] ? begin : j->first[m];
        int b1 = end < j->first[m + 1] ? end : j->first[m + 1];
        if (b0 >= b1)
            continue;
        struct matmul_args a = j->a[m];
        a.row0 = j->a[m].row0 + (b0 - j->first[m]) * MM_ROW_GRAIN;
        a.row1 = j->a[m].row0 + (b1 - j->first[m]) * MM_ROW_GRAIN < j->a[m].row1
                     ? j->a[m].row0 + (b1 - j->first[m]) * MM_ROW_GRAIN : j->a[m].row1;
        uint64_t rows = (uint64_t)(a.row1 - a.row0);
        PROF_CALL(j->op[m], j->mm[m](&a), rows * a.w_row_bytes,
                  2ull * (uint64_t)a.n_in * rows * (uint64_t)a.n_tok);
    }
}

static void job_add(struct mm_job *j, int op, void (*mm)(const struct matmul_args *), const struct matmul_args *a)
{
    int m = j->count++;
    j->a[m] = *a;
    j->mm[m] = mm;
    j->op[m] = op;
    j->first[m + 1] = j->first[m] + (a->row1 - a->row0 + MM_ROW_GRAIN - 1) / MM_ROW_GRAIN;
}

void engine_matmul(int op, void (*mm)(const struct matmul_args *), const struct matmul_args *a)
{
    struct mm_job j = { 0 };
    job_add(&j, op, mm, a);
    plat_parallel_for(j.first[1], mm_rows, &j);
}

/*
 * The batch's element-wise work split over the CPUs as the matrix products
 * are: pieces of EW_PIECE elements (whole activation blocks) or rows, so the other
 * cores do not wait while CPU 0 converts, gates and adds.  Every element's
 * result is the same however the pieces fall (each op is element- or
 * block-wise), so results stay bit-identical across core counts.  Work
 * below EW_MIN_PARALLEL elements stays on this CPU (a fork-join costs more).
 * (Before, these ran on CPU 0 alone while the others spun: in `make
 * roofline`'s prefill 14 % of the wall time lay outside the modules.
 * Hosted TinyLlama-shaped Q4_0, 2 CPUs, `bench -p 128 -n 64`, 4 rounds
 * alternating with the old build, twice: pp128 medians 77.3 -> 82.8 and
 * 77.7 -> 80.5 tok/s.)
 */
#define EW_PIECE 1024          /* a multiple of every activation block (32, 256) */
#define EW_MIN_PARALLEL 16384   /* decode (one token) stays serial: measured no gain there */

/* Elements of one activation block of format op (llm/engine.h). */
static int act_block(int op)
{
    switch (op) {
    case OP_QUANT_Q8_K: return QK_K;
    case OP_COPY_F32: case OP_CONVERT_F16: return 1;
    default: return QK8_0;     /* Q8_0, Q8_0S, Q8_1 */
    }
}

struct conv_job {
    void (*conv)(const float *, void *, int);
    int op, width, pieces;     /* pieces per row */
    const float *x;
    size_t ldx, arb;           /* input row stride (floats), output row bytes */
    uint8_t *act;
};

/* plat_parallel_for() body: pieces [begin, end), row-major. */
static void conv_pieces(void *ctx, int begin, int end, int cpu)
{
    const struct conv_job *j = ctx;
    (void)cpu;
    const size_t block_bytes = j->arb / (size_t)(j->width / act_block(j->op));
    for (int k = begin; k < end; k++) {
        int row = k / j->pieces, e0 = k % j->pieces * EW_PIECE;
        int len = j->width - e0 < EW_PIECE ? j->width - e0 : EW_PIECE;
        PROF_CALL(j->op, j->conv(j->x + (size_t)row * j->ldx + e0,
                                 j->act + (size_t)row * j->arb + (size_t)(e0 / act_block(j->op)) * block_bytes, len),
                  (uint64_t)len * 4, (uint64_t)len);
    }
}

/* Convert n rows of width floats (stride ldx) into format op at act (rows
 * arb bytes apart). */
static void convert_rows(int op, const float *x, int n, size_t ldx, int width, uint8_t *act, size_t arb)
{
    struct conv_job j = { .conv = optab[op].fn, .op = op, .width = width, .x = x, .ldx = ldx, .arb = arb,
                          .act = act };
    j.pieces = width % act_block(op) == 0 && (long)n * width >= EW_MIN_PARALLEL ? (width + EW_PIECE - 1) / EW_PIECE : 0;
    if (j.pieces == 0) {   /* small, or a width the pieces would cut inside a block */
        for (int i = 0; i < n; i++)
            PROF_CALL(op, j.conv(x + i * ldx, act + i * arb, width), (uint64_t)width * 4, (uint64_t)width);
        return;
    }
    plat_parallel_for(n * j.pieces, conv_pieces, &j);
}

struct ew_job {
    int op, piece;             /* elements per piece */
    float *y;
    const float *a, *b;
    long total;
};

/* plat_parallel_for() body: pieces [begin, end) of y = glu(a, b) or y += a. */
static void ew_pieces(void *ctx, int begin, int end, int cpu)
{
    const struct ew_job *j = ctx;
    (void)cpu;
    long e0 = (long)begin * j->piece, e1 = (long)end * j->piece < j->total ? (long)end * j->piece : j->total;
    for (long p = e0; p < e1; p += j->piece) {
        int len = (int)(e1 - p < j->piece ? e1 - p : j->piece);
        if (j->op == OP_SWIGLU) {
            void (*glu)(float *, const float *, const float *, int) = optab[OP_SWIGLU].fn;
            PROF_CALL(OP_SWIGLU, glu(j->y + p, j->a + p, j->b + p, len), (uint64_t)len * 8, 5ull * len);
        } else {
            void (*addv)(float *, const float *, int) = optab[OP_ADD].fn;
            PROF_CALL(OP_ADD, addv(j->y + p, j->a + p, len), (uint64_t)len * 8, (uint64_t)len);
        }
    }
}

/* Over n contiguous rows of width floats: y = silu(a) * b (OP_SWIGLU; y
 * may be a), one row per piece, so a module built for the model's n_ff
 * (FLUID_SHAPE_N_FF) still sees it; or y += a (OP_ADD) in EW_PIECE pieces. */
static void elementwise(int op, float *y, const float *a, const float *b, int n, int width)
{
    struct ew_job j = { .op = op, .piece = op == OP_SWIGLU ? width : EW_PIECE, .y = y, .a = a, .b = b,
                        .total = (long)n * width };
    int pieces = (int)((j.total + j.piece - 1) / j.piece);
    if (pieces < 2 || j.total < EW_MIN_PARALLEL)
        ew_pieces(&j, 0, pieces, 0);
    else
        plat_parallel_for(pieces, ew_pieces, &j);
}

/* Y[k][i] = W[k] X[i] for n rows and the count (<= MM_GROUP_MAX)
 * matrices W[k] (X row stride ldx floats, Y[k] row stride = W[k]'s output
 * width): convert X into the activation format (once, split over the
 * cores, convert_rows), then the products as one job, their output rows
 * split over all cores.  Matrices whose format or width differs from the
 * first's run as a job of their own after it. */
static void linear_n(struct engine *e, const struct llama_tensor *const *W, float *const *Y, int count,
                     const float *X, int n, size_t ldx)
{
    int aop = engine_act_op(W[0]->type);
    size_t arb = engine_act_row_bytes(W[0]->type, W[0]->ne0);
    convert_rows(aop, X, n, ldx, (int)W[0]->ne0, e->act, arb);
    struct mm_job j = { 0 };
    int rest = 0;
    const struct llama_tensor *later[MM_GROUP_MAX];
    float *later_y[MM_GROUP_MAX];
    for (int k = 0; k < count; k++) {
        if (engine_act_op(W[k]->type) != aop || W[k]->ne0 != W[0]->ne0) {
            later[rest] = W[k], later_y[rest++] = Y[k];
            continue;
        }
        int mop = op_mm_for_type(W[k]->type);
        struct matmul_args a = { .w = W[k]->data, .w_row_bytes = W[k]->row_bytes, .x = e->act, .x_row_bytes = arb,
                                 .y = Y[k], .ldy = W[k]->ne1, .n_in = (int)W[k]->ne0, .row0 = 0,
                                 .row1 = (int)W[k]->ne1, .n_tok = n, .n_rows = (int)W[k]->ne1 };
        /* one token: a decode step (or a prefill's logits), which may run a
         * variant tuned for it (mod/optab.h dec) */
        job_add(&j, mop, n == 1 ? optab[mop].dec.fn : optab[mop].fn, &a);
    }
    plat_parallel_for(j.first[j.count], mm_rows, &j);
    if (rest)
        linear_n(e, later, later_y, rest, X, n, ldx);
}

/* One product: linear_n of one matrix. */
static void linear(struct engine *e, const struct llama_tensor *W, const float *X, int n, size_t ldx, float *Y)
{
    linear_n(e, &W, &Y, 1, X, n, ldx);
}

/* cos/sin table of position pos, as ggml's rope (mode 0): theta_i =
 * pos * base^(-2i/d), computed by repeated multiplication in float. */
static void rope_table(const struct llama_hparams *hp, int pos, float *cs)
{
    float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->rope_dim);
    float theta = (float)pos;
    for (uint32_t i = 0; i < hp->head_dim / 2; i++) {
        cs[2 * i] = cosf(theta);
        cs[2 * i + 1] = sinf(theta);
        theta *= theta_scale;
    }
}

struct attn_job {
    struct engine *e;
    const ggml_half *kl, *vl; /* this layer's K and V cache */
    size_t head_stride;     /* halves between KV heads in the cache */
    int n, hd, group;
    float scale;
};

/* plat_parallel_for() body: query heads [h0, h1) of every token of the
 * batch, with this CPU's own score row. */
static void attn_heads(void *ctx, int h0, int h1, int cpu)
{
    const struct attn_job *j = ctx;
    struct engine *e = j->e;
    const struct llama_hparams *hp = &e->hp;
    int hd = j->hd;
    float *att = e->att + (size_t)cpu * e->att_stride;
    void (*scores)(const ggml_half *, const ggml_half *, size_t, int, int, float, float *) =
        optab[OP_ATTN_SCORES].fn;
    void (*smax)(float *, int) = optab[OP_SOFTMAX].fn;
    void (*wsum)(const float *, const ggml_half *, size_t, int, int, float *) = optab[OP_ATTN_WSUM].fn;
    for (int i = 0; i < j->n; i++) {
        int n_pos = e->n_past + i + 1;   /* causal: positions 0..pos */
        for (int h = h0; h < h1; h++) {
            const ggml_half *q = e->qh + (size_t)i * hp->n_embd + (size_t)h * hd;
            const ggml_half *kh = j->kl + (size_t)(h / j->group) * j->head_stride;
            const ggml_half *vh = j->vl + (size_t)(h / j->group) * j->head_stride;
            float *out = e->xb2 + (size_t)i * hp->n_embd + (size_t)h * hd;
            PROF_CALL(OP_ATTN_SCORES, scores(q, kh, hd, n_pos, hd, j->scale, att),
                      (uint64_t)n_pos * hd * 2, 2ull * n_pos * hd);
            PROF_CALL(OP_SOFTMAX, smax(att, n_pos), (uint64_t)n_pos * 4, 4ull * n_pos);
            PROF_CALL(OP_ATTN_WSUM, wsum(att, vh, hd, n_pos, hd, out),
                      (uint64_t)n_pos * hd * 2, 2ull * n_pos * hd);
        }
    }
}

static void attention(struct engine *e, int layer, int n)
{
    const struct llama_hparams *hp = &e->hp;
    int hd = (int)hp->head_dim;
    size_t head_stride = (size_t)e->n_ctx * hd;
    ggml_half *kl = e->kcache + (size_t)layer * hp->n_embd_kv * e->n_ctx;
    ggml_half *vl = e->vcache + (size_t)layer * hp->n_embd_kv * e->n_ctx;
    void (*to_f16)(const float *, void *, int) = optab[OP_CONVERT_F16].fn;
    /* Append this batch's K and V as F16: cache[kv_head][pos][head_dim];
     * the queries as F16 too (what llama.cpp's F16 KV path multiplies). */
    for (int i = 0; i < n; i++) {
        for (uint32_t h = 0; h < hp->n_head_kv; h++) {
            size_t at = h * head_stride + (size_t)(e->n_past + i) * hd;
            to_f16(e->k + (size_t)i * hp->n_embd_kv + h * hd, kl + at, hd);
            to_f16(e->v + (size_t)i * hp->n_embd_kv + h * hd, vl + at, hd);
        }
        to_f16(e->q + (size_t)i * hp->n_embd, e->qh + (size_t)i * hp->n_embd, (int)hp->n_embd);
    }
    /* Then every query head over all cores (GQA: head h reads KV head
     * h / group). */
    struct attn_job j = {
        .e = e, .kl = kl, .vl = vl, .head_stride = head_stride, .n = n, .hd = hd,
        .group = (int)(hp->n_head / hp->n_head_kv), .scale = 1.0f / sqrtf((float)hd),
    };
    plat_parallel_for((int)hp->n_head, attn_heads, &j);
}

int engine_forward(struct engine *e, const int32_t *tokens, int n, int all_logits)
{
    const struct llama_hparams *hp = &e->hp;
    const struct llama_weights *w = &e->m->w;
    if (n < 1 || n > ENGINE_BATCH)
        return -1;
    if (e->n_past + n > e->n_ctx)
        return -2;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= hp->n_vocab)
            return -3;
    size_t D = hp->n_embd, DKV = hp->n_embd_kv, FF = hp->n_ff;
    void (*norm)(float *, const float *, const float *, int, float) = optab[OP_RMSNORM].fn;
    void (*rope)(float *, int, int, const float *) = optab[OP_ROPE].fn;
    int dq = op_dequant_for_type(w->token_embd.type);
    void (*dequant)(const void *, float *, int) = optab[dq].fn;

    for (int i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)w->token_embd.data + (size_t)tokens[i] * w->token_embd.row_bytes;
        PROF_CALL(dq, dequant(row, e->x + i * D, (int)D), w->token_embd.row_bytes, D);
        rope_table(hp, e->n_past + i, e->rope_cs + (size_t)i * hp->head_dim);
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const struct llama_layer *L = &w->layers[l];
        for (int i = 0; i < n; i++)
            PROF_CALL(OP_RMSNORM, norm(e->xb + i * D, e->x + i * D, L->attn_norm.data, (int)D, hp->rms_eps),
                      D * 8, 4 * D);
        linear_n(e, (const struct llama_tensor *[]){ &L->attn_q, &L->attn_k, &L->attn_v },
                 (float *[]){ e->q, e->k, e->v }, 3, e->xb, n, D);
        for (int i = 0; i < n; i++) {
            const float *cs = e->rope_cs + (size_t)i * hp->head_dim;
            PROF_CALL(OP_ROPE, rope(e->q + i * D, (int)hp->n_head, (int)hp->head_dim, cs), D * 4, 6 * D);
            PROF_CALL(OP_ROPE, rope(e->k + i * DKV, (int)hp->n_head_kv, (int)hp->head_dim, cs), DKV * 4, 6 * DKV);
        }
        attention(e, (int)l, n);
        linear(e, &L->attn_output, e->xb2, n, D, e->xb);
        elementwise(OP_ADD, e->x, e->xb, NULL, n, (int)D);
        for (int i = 0; i < n; i++)
            PROF_CALL(OP_RMSNORM, norm(e->xb + i * D, e->x + i * D, L->ffn_norm.data, (int)D, hp->rms_eps),
                      D * 8, 4 * D);
        linear_n(e, (const struct llama_tensor *[]){ &L->ffn_gate, &L->ffn_up },
                 (float *[]){ e->hb, e->hb2 }, 2, e->xb, n, D);
        elementwise(OP_SWIGLU, e->hb, e->hb, e->hb2, n, (int)FF);
        linear(e, &L->ffn_down, e->hb, n, FF, e->xb);
        elementwise(OP_ADD, e->x, e->xb, NULL, n, (int)D);
    }
    int first = all_logits ? 0 : n - 1;
    for (int i = first; i < n; i++)
        PROF_CALL(OP_RMSNORM, norm(e->xb + i * D, e->x + i * D, w->output_norm.data, (int)D, hp->rms_eps),
                  D * 8, 4 * D);
    /* Logits of rows first..n-1 land in logits rows first..n-1. */
    linear(e, &w->output, e->xb + first * D, n - first, D, e->logits + (size_t)first * hp->n_vocab);
    e->n_past += n;
    return 0;
}
