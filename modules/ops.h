/*
 * ops.h - the compute kernels of the Llama forward pass, as plain C.
 *
 * Every function here lives in a module under modules/ (one source file
 * per op family) and is reached by the kernel only through the module
 * table.  The same sources also build for the host, where tests compare
 * them with a numpy reference.  Nothing here may call the kernel directly:
 * what a module needs (expf, ...) comes through struct fluid_services.
 *
 * Block layouts follow ggml (ggml-common.h of llama.cpp) byte for byte; see
 * ../shared/REFERENCE.md "Block layouts".  All data is little-endian.
 * Lengths are in elements (weights / floats) unless they say bytes.
 */
#ifndef FLUID_OPS_H
#define FLUID_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ggml_types.h"   /* enum ggml_type: ids as stored in GGUF */

typedef uint16_t ggml_half; /* IEEE 754 binary16 bits */

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* Q4_0: 32 weights, w = d * (nibble - 8); byte j: weight j low, j+16 high. */
struct block_q4_0 { ggml_half d; uint8_t qs[QK4_0 / 2]; };
/* Q4_1: 32 weights, w = d * nibble + m; nibbles as Q4_0. */
struct block_q4_1 { ggml_half d, m; uint8_t qs[QK4_1 / 2]; };
/* Q5_0: 32 weights, w = d * (q5 - 16); q5 = nibble (as Q4_0) | bit j of
 * the little-endian u32 qh << 4, for weight j. */
struct block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
/* Q5_1: 32 weights, w = d * q5 + m; q5 as Q5_0. */
struct block_q5_1 { ggml_half d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
/* Q8_0: 32 weights, w = d * q. */
struct block_q8_0 { ggml_half d; int8_t qs[QK8_0]; };
/* Q8_0S: Fluid's activation block for Q4_0 and Q8_0 weights: a Q8_0
 * block (same q, same f16-rounded d) with d widened to float and
 * msum8 = -8 * sum(q) kept, so the dot products need neither conversion
 * nor the sum per weight tile (ggml's block_q8_1 carries d * sum for the
 * same reason).  -8 * sum is Q4_0's offset term (nibble - 8), ready to
 * broadcast from memory; Q8_0's unsigned tiles take 16 * msum8. */
struct block_q8_0s { float d; int32_t msum8; int8_t qs[QK8_0]; };
/* Q8_1: activation blocks for Q4_1/Q5_1 (never stored in GGUF):
 * w = d * q; s = d * sum(q), both f16. */
struct block_q8_1 { ggml_half d, s; int8_t qs[QK8_1]; };
/* Q2_K: 256 weights in 16 sub-blocks of 16; scales[j] low nibble = scale,
 * high nibble = min; w = d*scale*q2 - dmin*min.  Two halves of 128: in
 * half h, weight 128h + 32k + l (k < 4, l < 32) is bits 2k..2k+1 of
 * qs[32h + l]; its sub-block is 8h + 2k + l/16. */
struct block_q2_K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    ggml_half d, dmin;
};
/* Q3_K: 256 weights in 16 sub-blocks of 16, 6-bit signed scales (packed
 * in 12 bytes, minus 32); w = d*scale*(q2 - 4*(1 - hbit)).  q2 as Q2_K;
 * the high bit of weight 128h + 32k + l is bit 4h + k of hmask[l]. */
struct block_q3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    ggml_half d;
};
/* Q4_K: 256 weights in 8 sub-blocks of 32, 6-bit scales and mins. */
struct block_q4_K {
    ggml_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
/* Q5_K: as Q4_K plus a fifth bit per weight in qh. */
struct block_q5_K {
    ggml_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
/* Q6_K: 256 weights, 16 int8 scales, d last. */
struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    ggml_half d;
};
/* Q8_K: activation blocks for K-quant dot products (never stored in GGUF). */
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sum of each group of 16 qs */
};

/*
 * Fluid's 8-row interleaved layouts for Q4_0 and Q8_0 matrices, made at
 * model load by repack_q4_0 / repack_q8_0 (in place).  Rows [8g, 8g+8),
 * for every whole group g < n_rows / 8, become one run of n_in / 32 "x8"
 * blocks, block i holding block i of the 8 rows: the same bytes as the 8
 * GGUF rows, so group g still starts at row 8g's offset and spans
 * 8 * w_row_bytes.  Rows after the last whole group keep the GGUF layout.
 * Why: a tile of 8 rows then reads one sequential stream (8 short row
 * streams stall on DRAM latency) and the 8 scales are one 16-byte load.
 *   Q4_0: qs[k] holds bytes 4k..4k+3 of each row, row r in bytes 4r..4r+3
 *     (32-bit lane r): against the 4-byte chunk k of an activation block
 *     broadcast to every lane, one maddubs per chunk gives the 8 rows'
 *     partial sums in lane order, with no horizontal add.
 *   Q8_0: likewise qs[k] holds weights 4k..4k+3 of each row (8 chunks of
 *     the 32), so a tile needs no permutes or horizontal adds either.
 * (The idea is llama.cpp's block_q4_0x8 repacking, ggml-cpu/repack.cpp;
 * these layouts are Fluid's own.)
 */
struct block_q4_0x8 {
    ggml_half d[8];                  /* d[r]: scale of row r */
    uint8_t qs[4][8][4];             /* qs[k][r]: bytes 4k..4k+3 of row r's 16 */
};
struct block_q8_0x8 {
    ggml_half d[8];
    int8_t qs[8][8][4];              /* qs[k][r]: weights 4k..4k+3 of row r */
};
/*
 * Q4_K x8 (repack_q4_K): block i of 8 rows, 1152 bytes as the 8 GGUF
 * blocks.  The 6-bit scale sc[r][j] and min mn[r][j] of sub-block j are
 * split into planes a tile unpacks with a few whole-vector operations:
 * sm_lo[j][r] = (sc & 15) | (mn & 15) << 4; entry e = 8j + r's top two
 * bits sit in sm_hi[e % 32], in its low nibble for e < 32 and its high
 * nibble otherwise, as (sc >> 4) | (mn >> 4) << 2.  Quants: qs[g][c][r]
 * holds bytes 32g + 4c .. 32g + 4c + 3 of row r's qs (low nibbles: weights
 * 64g + 4c.., sub-block 2g; high: 64g + 32 + 4c.., sub-block 2g + 1), so
 * one vector is chunk (g, c) of the 8 rows, each against the activation's
 * matching 4 bytes broadcast, as Q4_0 x8.
 */
struct block_q4_Kx8 {
    ggml_half d[8], dmin[8];         /* row r's d and dmin */
    uint8_t sm_lo[8][8];             /* [j][r] */
    uint8_t sm_hi[32];
    uint8_t qs[4][8][8][4];          /* [g][c][r][4] */
};
/*
 * Q6_K x8 (repack_q6_K): block i of 8 rows, 1680 bytes as the 8 GGUF
 * blocks.  Chunk c < 64 of a row is its weights 4c..4c+3 (sub-block
 * s = c / 4 of 16 weights), each as its unsigned 6-bit q (weight =
 * d * sc[s] * (q - 32)).  Chunk c of the 8 rows keeps its low nibbles in
 * the 32 bytes Q6X8_QL(g, c) (row r's 4 at [r]: the bytes' low nibbles
 * for c < 32, high ones above) and its top two bits in Q6X8_QH(g, c), at
 * bits 2 * (c / 16) of each byte.  One vector load thus gives chunk c of
 * the 8 rows, 4 weights per 32-bit lane, for vpdpbusd against the
 * activation's 4 bytes broadcast, and a tile unpacks it with a shift or
 * two, a mask and a ternary logic op.  A tile walks the sub-blocks in
 * quads {m, m + 4, m + 8, m + 12} (m < 4), which share their qh bytes and
 * their ql bytes in pairs; quad m's bytes are q[m], so the tile reads the
 * block front to back.  sc[s][r]: row r's scale of sub-block s, so a tile
 * scales a lane's exact int32 sub-block sum with one multiply (GGUF Q6_K
 * keeps 4 sub-blocks in a vector and pays a vpdpwssd per 64 products).
 */
struct block_q6_Kx8 {
    ggml_half d[8];                  /* row r's d */
    int8_t sc[16][8];                /* [s][r] */
    struct {
        uint8_t ql[2][4][8][4];      /* [(c / 16) % 2][c % 4][r][4] */
        uint8_t qh[4][8][4];         /* [c % 4][r][4] */
    } q[4];                          /* [(c / 4) % 4] */
};
#define Q6X8_QL(g, c) ((g)->q[((c) / 4) % 4].ql[((c) / 16) % 2][(c) % 4])
#define Q6X8_QH(g, c) ((g)->q[((c) / 4) % 4].qh[(c) % 4])

_Static_assert(sizeof(struct block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(struct block_q4_0x8) == 8 * 18, "q4_0x8");
_Static_assert(sizeof(struct block_q8_0x8) == 8 * 34, "q8_0x8");
_Static_assert(sizeof(struct block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(struct block_q8_0s) == 40, "q8_0s");
_Static_assert(sizeof(struct block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(struct block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(struct block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(struct block_q8_1) == 36, "q8_1");
_Static_assert(sizeof(struct block_q2_K) == 84, "q2_K");
_Static_assert(sizeof(struct block_q3_K) == 110, "q3_K");
_Static_assert(sizeof(struct block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(struct block_q4_Kx8) == 8 * 144, "q4_Kx8");
_Static_assert(sizeof(struct block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(struct block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(struct block_q6_Kx8) == 8 * 210, "q6_Kx8");
_Static_assert(sizeof(struct block_q8_K) == 292, "q8_K");

/* What modules may call in the kernel (or in the host test harness). */
struct fluid_services {
    uint32_t version;             /* FLUID_SERVICES_VERSION */
    float (*expf)(float);         /* llvm-libc, correctly rounded */
    float (*sqrtf)(float);
};
#define FLUID_SERVICES_VERSION 1u

/*
 * Activation formats.  For each weight type, llama.cpp converts the
 * activation row to a "vec_dot type" before the dot product:
 *   F32 -> F32, F16 -> F16, Q4_0/Q5_0/Q8_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1,
 *   Q2_K/Q3_K/Q4_K/Q5_K/Q6_K -> Q8_K
 * (ggml-cpu.c type_traits_cpu[].vec_dot_type); Fluid feeds Q4_0/Q8_0
 * weights Q8_0S (the same Q8_0 values, see above).  kernel/core/llm/engine.c
 * engine_act_op() picks the conversion op.
 */

/*
 * Matrix product, shared signature for every weight type:
 *   Y[t * ldy + r] = dot(W row r, X row t)   for r in [row0, row1), t < n_tok
 * W: n_rows rows of n_in weights, each row w_row_bytes long (the GGUF
 *    layout: ne = [n_in, n_rows]); Q4_0 and Q8_0 matrices in the 8-row
 *    interleaved layout above (repack_<t> first).
 * X: n_tok activation rows already converted to the vec_dot type, each
 *    x_row_bytes long.
 * n_in must be a multiple of the weight type's block size.
 * Kernels may reuse a loaded weight block across tokens (prefill).
 */
struct matmul_args {
    const void *w;
    size_t w_row_bytes;
    const void *x;
    size_t x_row_bytes;
    float *y;
    size_t ldy;       /* floats between rows of Y (usually n_out) */
    int n_in;
    int row0, row1;   /* output rows to compute */
    int n_tok;
    int n_rows;       /* rows of W in all (where its 8-row groups end) */
};

/* The services table the module was initialised with (modules/modrt.c).
 * Hidden, so module code reaches it RIP-relative (no GOT entry). */
#if defined(__ELF__)
__attribute__((visibility("hidden")))
#endif
extern const struct fluid_services *fluid_svc;
/* Module entry (modules/modrt.c): store s in fluid_svc; call first. */
void fluid_module_init(const struct fluid_services *s);

/* ---- Matrix products and row dequantisation, one module per weight type.
 * dequant_<t>(w, y, n): y[0..n) = the n weights of one row starting at w.
 * Formulas: ggml's dequantize_row_* (llama.cpp ggml-quants.c). */
void mm_f32(const struct matmul_args *a);
void mm_f16(const struct matmul_args *a);
void mm_q8_0(const struct matmul_args *a);
void mm_q4_0(const struct matmul_args *a);
void mm_q4_K(const struct matmul_args *a);
void mm_q5_K(const struct matmul_args *a);
void mm_q6_K(const struct matmul_args *a);
void mm_q2_K(const struct matmul_args *a);   /* X: Q8_K */
void mm_q3_K(const struct matmul_args *a);   /* X: Q8_K */
void mm_q5_0(const struct matmul_args *a);   /* X: Q8_0 */
void mm_q4_1(const struct matmul_args *a);   /* X: Q8_1 */
void mm_q5_1(const struct matmul_args *a);   /* X: Q8_1 */
/* Rewrite 8-row groups [g0, g1) of a GGUF-layout Q4_0 / Q8_0 / Q4_K / Q6_K
 * matrix (rows of row_bytes) in place into the x8 layout; tmp holds
 * 8 * row_bytes bytes.  Every group exactly once, before any mm_<t>. */
void repack_q4_0(void *w, size_t row_bytes, int g0, int g1, void *tmp);
void repack_q8_0(void *w, size_t row_bytes, int g0, int g1, void *tmp);
void repack_q4_K(void *w, size_t row_bytes, int g0, int g1, void *tmp);
void repack_q6_K(void *w, size_t row_bytes, int g0, int g1, void *tmp);
void dequant_f32(const void *w, float *y, int n);
void dequant_f16(const void *w, float *y, int n);
void dequant_q8_0(const void *w, float *y, int n);
void dequant_q4_0(const void *w, float *y, int n);
void dequant_q4_K(const void *w, float *y, int n);
void dequant_q5_K(const void *w, float *y, int n);
void dequant_q6_K(const void *w, float *y, int n);
void dequant_q2_K(const void *w, float *y, int n);
void dequant_q3_K(const void *w, float *y, int n);
void dequant_q5_0(const void *w, float *y, int n);
void dequant_q4_1(const void *w, float *y, int n);
void dequant_q5_1(const void *w, float *y, int n);

/* ---- Activation conversion (module "quantize"), n a multiple of the
 * block size.  Formulas: ggml's quantize_row_q8_0_ref / quantize_row_q8_K_ref. */
void quantize_q8_0(const float *x, void *y, int n);  /* y: n/32 block_q8_0 */
/* Q8_0 with the rounding of ggml's x86 SIMD quantize_row_q8_0 (id =
 * 127/amax, round half to even): what llama.cpp on AVX2 feeds its Q4_0
 * kernels (see tools/quants.py act_q8_0_avx). */
void quantize_q8_0_x86(const float *x, void *y, int n);
void quantize_q8_0s(const float *x, void *y, int n); /* y: n/32 block_q8_0s */
void quantize_q8_K(const float *x, void *y, int n);  /* y: n/256 block_q8_K */
/* Q8_1 as ggml's x86 SIMD quantize_row_q8_1 (what llama.cpp on AVX/AVX2
 * feeds its Q4_1/Q5_1 kernels): per 32, d = amax/127, id = 127/amax,
 * q = x*id rounded half to even, s = d * sum(q); d, s stored as f16. */
void quantize_q8_1(const float *x, void *y, int n);  /* y: n/32 block_q8_1 */
void convert_f16(const float *x, void *y, int n);    /* y: n ggml_half */
void copy_f32(const float *x, void *y, int n);       /* y: n float */

/* ---- Element-wise and normalisation ops (n floats each). */
/* out = x / sqrt(mean(x^2) + eps) * w   (RMSNorm, Zhang & Sennrich 2019;
 * llama.cpp accumulates the sum of squares in double). out may equal x. */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* RoPE on n_heads heads of head_dim floats laid out back to back; rotates
 * adjacent pairs (x[2i], x[2i+1]) by the angle whose cos and sin are
 * cs[2i], cs[2i+1] (i < head_dim/2), as ggml's rope "normal" mode. */
void rope(float *x, int n_heads, int head_dim, const float *cs);
/* out[i] = silu(g[i]) * u[i], silu(v) = v / (1 + exp(-v)). out may equal g. */
void swiglu(float *out, const float *g, const float *u, int n);
/* y[i] += x[i] (residual connection). */
void add(float *y, const float *x, int n);

/* ---- Attention for one query head over n_pos cached positions.
 * q: head_dim halves; k, v: n_pos rows of head_dim halves (the F16 KV
 * cache), row j at k + j * stride halves.  p: n_pos floats, rounded to F16
 * before use (llama.cpp's F16 KV path). */
void attn_scores(const ggml_half *q, const ggml_half *k, size_t stride, int n_pos,
                 int head_dim, float scale, float *s);  /* s[j] = scale*q.k_j */
void softmax(float *s, int n);                           /* in place */
void attn_wsum(const float *p, const ggml_half *v, size_t stride, int n_pos,
               int head_dim, float *out);                /* out = sum p_j v_j */

#endif
