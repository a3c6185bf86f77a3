/*
 * tune_work.h - the workloads `tune` (mod/tune.h) times: for each op the
 * loaded model's forward pass calls, its calls on the model's real shapes
 * and weights, run by any variant's function.
 *
 *   mm_<type>        two workloads, chosen for apart (engine.c runs
 *                    optab's dec.fn for one-token calls): "decode", every
 *                    weight matrix of that type in one block plus the
 *                    output matrix when it has that type, 1 token each;
 *                    "prefill", those matrices but the output one (which
 *                    a prefill computes for its last token only: a
 *                    one-token call) as a batch of ENGINE_BATCH tokens
 *                    (none when the type has no such matrix); both split
 *                    over every online CPU as engine.c splits them
 *                    (engine_matmul).  A block without a matrix of the
 *                    type (mixed-type files) is replaced by block 0
 *   dequant_<type>   a row of token_embd per token (the token lookup)
 *   quantize_* / convert_f16 / copy_f32
 *                    the activation rows one token converts: one of n_embd
 *                    and, when ffn_down has this format, one of n_ff
 *   convert_f16      (no F16 matrix) what attention converts per token:
 *                    the query (n_embd) and each KV head's k and v
 *                    (head_dim each), as engine.c fills its F16 KV cache
 *   rmsnorm, add     n_embd floats; swiglu: n_ff; rope: n_head and
 *                    n_head_kv heads of head_dim
 *   attn_scores, softmax, attn_wsum
 *                    n_head heads over TUNE_ATTN_POS cached positions of
 *                    the F16 KV cache (F16 queries)
 * each for ENGINE_BATCH tokens on CPU 0 (the non-mm ops run there in
 * engine.c too, but attention, which engine.c splits by head).
 *
 * Inputs are fixed pseudo-random activations (a seeded generator); the
 * weights are block `layer`'s (Q4_0/Q8_0 in the x8 layout the model load
 * put them in), so successive repetitions read different memory, as a
 * forward pass does.  repack_* runs once per model load, not per token,
 * and is not timed.  An in-place op's input is restored,
 * untimed, before each run.  Costs are TSC cycles per token: the decode
 * step's cycles, or the batch's cycles / ENGINE_BATCH.
 */
#ifndef FLUID_TUNE_WORK_H
#define FLUID_TUNE_WORK_H

#include <stddef.h>
#include <stdint.h>

#define TUNE_ATTN_POS 256          /* cached positions attention ops scan (capped at n_ctx) */
#define TUNE_MAX_WORKS 24          /* ops one model's forward pass calls, at most */
/* Bytes read (untimed) before each matrix-product run to evict its
 * weights from the caches: twice the 32 MiB L3 of the largest cache
 * measured here.  Without the memory tune runs with warm caches and says so. */
#define TUNE_EVICT_BYTES (64ull << 20)

/* How a variant's output is compared with the reference (the scalar
 * baseline's output on the same input). */
enum tune_cmp {
    TUNE_CMP_F32,    /* floats: max |y - ref| / max |ref| <= TUNE_TOLERANCE */
    TUNE_CMP_F16,    /* halves, compared as floats likewise */
    TUNE_CMP_Q8_0S,  /* blocks: scales within TUNE_TOLERANCE, quants within 1,
                        the sum the sum of its own quants */
    TUNE_CMP_Q8_K,   /* likewise, each bsum the sum of its own 16 quants */
};

#define TUNE_TOLERANCE 1e-3

struct tune_work {
    int op;                    /* enum fluid_op */
    int kind;                  /* internal: which calls */
    int wtype;                 /* mm, dequant, activation: the ggml type involved */
    int phase;                 /* the calls timed, as choices name them: FLUID_CHOICE_DECODE
                                  (mm ops' one-token calls) or FLUID_CHOICE_ALL */
    enum tune_cmp cmp;
    char shapes[96];           /* "7 matrices 2048x256..5632x2048", for the table */
    uint8_t *out;              /* output of the last run */
    size_t out_bytes;
};

/*
 * Set up the workloads of every op the loaded model's forward pass calls
 * (w: room for TUNE_MAX_WORKS).  The activation inputs of the mm ops are
 * converted by the scalar baseline's converters, so every mm variant gets
 * the same bytes.  Returns the number of workloads, or -1 with the reason
 * in err (no model, no memory, no baseline converter).
 */
int tune_work_init(struct tune_work *w, char *err, size_t cap);

/* Run w with fn (a function of w->op's type) on block `layer`'s weights;
 * the output lands in w->out.  Returns the cost in TSC cycles per token;
 * *dec and *pre get the raw interval (cycles of the decode step or the
 * batch; the other 0 for a decode or prefill mm workload). */
uint64_t tune_work_run(struct tune_work *w, void *fn, uint32_t layer, uint64_t *dec, uint64_t *pre);

/* Compare w->out with ref (w->out_bytes from a reference run of the same
 * layer): the largest deviation relative to the reference's magnitude
 * (NaN or Inf where the reference is finite: infinity), and *ok by the
 * rule of w->cmp. */
double tune_work_compare(const struct tune_work *w, const uint8_t *ref, int *ok);

/* 1 when tune_work_init got the eviction buffer (TUNE_EVICT_BYTES). */
int tune_work_evicts(void);

/* Give back everything tune_work_init took. */
void tune_work_free(struct tune_work *w, int n);
#endif
