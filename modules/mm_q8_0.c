/*
 * mm_q8_0.c - Q8_0 weights x Q8_0S activations (module "mm_q8_0").
 *
 * Weights are in the 8-row interleaved layout (ops.h block_q8_0x8, made
 * once at load by repack_q8_0), rows after the last whole group in GGUF's.
 * Per block of 32: sumi = sum w.qs[j] * x.qs[j] (exact int), then
 * sumf += sumi * (dw * dx), blocks in order (ggml_vec_dot_q8_0_q8_0_generic).
 * The AVX2 tile computes a group's 8 rows at once, one row per 32-bit
 * lane, with the same float operations in the same order (no fma), so
 * every ISA gives bit-identical results.  Its integer part is ggml's sign
 * trick (|w| times x with w's sign, maddubs + maddwd or vpdpbusd) on the
 * group's 4-byte row chunks against the activation's matching 4 bytes
 * broadcast: no permutes, no horizontal adds.  Weights may be -128,
 * activations must lie in [-127, 127] (quantize_q8_0 guarantees it): each
 * maddubs pair sum is then at most 2 * 128 * 127 < 2^15.  On AVX-512 VNNI
 * prefill runs 16 rows at once in zmm (tile16_q8_0), w + 128 unsigned.
 */
#define MM_PREFETCH_BYTES MM_PREFETCH_Q8_0   /* mm_common.h: per block size */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* y[0..n) = d * q per block (ggml dequantize_row_q8_0).  w: one
 * GGUF-layout row (token_embd). */
void dequant_q8_0(const void *w, float *y, int n)
{
    const struct block_q8_0 *b = w;
    for (int i = 0; i < n / QK8_0; i++) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[i * QK8_0 + j] = b[i].qs[j] * d;
    }
}

/* One group: 8 GGUF rows in tmp (row_bytes apart) -> x8 blocks at g. */
static void put_q8_0x8(uint8_t *g, const uint8_t *tmp, size_t row_bytes)
{
    struct block_q8_0x8 *o = (struct block_q8_0x8 *)g;
    for (size_t i = 0; i < row_bytes / sizeof(struct block_q8_0); i++, o++)
        for (int r = 0; r < 8; r++) {
            const struct block_q8_0 *b = (const struct block_q8_0 *)(tmp + r * row_bytes) + i;
            o->d[r] = b->d;
            for (int c = 0; c < 8; c++)
                __builtin_memcpy(o->qs[c][r], b->qs + 4 * c, 4);
        }
}

void repack_q8_0(void *w, size_t row_bytes, int g0, int g1, void *tmp)
{
    MM_X8_REPACK(w, row_bytes, g0, g1, tmp, put_q8_0x8);
}

/* Row r, out[t] = dot(W row r, activation row t0 + t), t < nt. */
FLUID_INLINE void row_q8_0(const struct matmul_args *a, int r, int t0, int nt, float *out)
{
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * a->x_row_bytes;
    const uint8_t *w = a->w;
    const int grouped = r < (a->n_rows & ~7);
    float sumf[MM_NT] = {0};
    for (int i = 0; i < a->n_in / QK8_0; i++) {
        int8_t q[QK8_0];
        uint16_t dh;
        if (grouped) {
            const struct block_q8_0x8 *g =
                (const struct block_q8_0x8 *)(w + (size_t)(r & ~7) * a->w_row_bytes) + i;
            dh = g->d[r & 7];
            for (int c = 0; c < 8; c++)
                __builtin_memcpy(q + 4 * c, g->qs[c][r & 7], 4);
        } else {
            const struct block_q8_0 *b = (const struct block_q8_0 *)(w + (size_t)r * a->w_row_bytes) + i;
            dh = b->d;
            for (int j = 0; j < QK8_0; j++)
                q[j] = b->qs[j];
        }
        const float dw = fp16_to_fp32(dh);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0s *y = (const struct block_q8_0s *)(x + t * a->x_row_bytes) + i;
            int sumi = 0;
            for (int j = 0; j < QK8_0; j++)
                sumi += q[j] * y->qs[j];
            sumf[t] += sumi * (dw * y->d);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = sumf[t];
}

#if defined(FLUID_AVX2)
/* s + lane r: sum over k < 4 of w[4r+k] * x[4r+k], |w| given as aw; the
 * sign trick of dot_s8s8_i32 with an accumulator (one vpdpbusd on VNNI). */
FLUID_INLINE __m256i acc_s8s8_i32(__m256i s, __m256i aw, __m256i w, __m256i x)
{
#if defined(FLUID_VNNI) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(s, aw, _mm256_sign_epi8(x, w));
#elif defined(FLUID_VNNI)
    return _mm256_dpbusd_avx_epi32(s, aw, _mm256_sign_epi8(x, w));
#else
    return _mm256_add_epi32(s, dot_u8s8_i32(aw, _mm256_sign_epi8(x, w)));
#endif
}

/* Group rows r..r+7, tokens t0..t0+nt-1 (MM_X8_LOOP).  Chunk-major: each
 * weight chunk and its absolute value are made once and used for all nt
 * tokens. */
FLUID_INLINE void tile_q8_0(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t xs = a->x_row_bytes;
    const struct block_q8_0x8 *g =
        (const struct block_q8_0x8 *)((const uint8_t *)a->w + (size_t)r * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK8_0; i++, g++) {
        MM_PREFETCH_BLOCK(g, sizeof *g);
        const struct block_q8_0s *y[MM_NT];
        __m256i s[MM_NT];
        for (int t = 0; t < nt; t++) {
            y[t] = (const struct block_q8_0s *)(x + t * xs) + i;
            s[t] = _mm256_setzero_si256();
        }
        for (int c = 0; c < 8; c++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)g->qs[c]);
            const __m256i aw = _mm256_sign_epi8(w, w);   /* -128 reads as 128 */
            for (int t = 0; t < nt; t++) {
                int32_t c4;
                __builtin_memcpy(&c4, y[t]->qs + 4 * c, 4);
                s[t] = acc_s8s8_i32(s[t], aw, w, _mm256_set1_epi32(c4));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
        for (int t = 0; t < nt; t++) {
            const __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(&y[t]->d));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(s[t]), d));
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}

#if defined(FLUID_ZMM_VNNI)
/* Rows r..r+15 (two x8 groups side by side, one row per 32-bit lane of a
 * zmm), tokens t0..t0+nt-1 (MM_X16_LOOP).  AVX-512 has no vpsignb, so
 * instead of the sign trick the weights are made unsigned, w ^ 0x80 =
 * w + 128 in [0, 255], once per chunk for all tokens: vpdpbusd then sums
 * (w + 128) * x, and the sum starts at -128 * sum(x) (16 * block_q8_0s.msum8).
 * The same exact integer, then tile_q8_0's float operations in its order:
 * bit-identical results. */
FLUID_INLINE void tile16_q8_0(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * a->w_row_bytes;
    const struct block_q8_0x8 *g0 = (const struct block_q8_0x8 *)w;
    const struct block_q8_0x8 *g1 = (const struct block_q8_0x8 *)(w + 8 * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[MM_NT16];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < a->n_in / QK8_0; i++, g0++, g1++) {
        MM_PREFETCH_BLOCK(g0, sizeof *g0);
        MM_PREFETCH_BLOCK(g1, sizeof *g1);
        const struct block_q8_0s *y[MM_NT16];
        __m512i s[MM_NT16];
        for (int t = 0; t < nt; t++) {
            y[t] = (const struct block_q8_0s *)(x + t * xs) + i;
            s[t] = _mm512_set1_epi32(16 * y[t]->msum8);
        }
        for (int c = 0; c < 8; c++) {
            const __m512i wu = _mm512_xor_si512(flip, load_2x256(g0->qs[c], g1->qs[c]));
            for (int t = 0; t < nt; t++) {
                int32_t c4;
                __builtin_memcpy(&c4, y[t]->qs + 4 * c, 4);
                s[t] = _mm512_dpbusd_epi32(s[t], wu, _mm512_set1_epi32(c4));
            }
        }
        const __m512 dw = cvtph_2x8(g0->d, g1->d);
        for (int t = 0; t < nt; t++) {
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(y[t]->d));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_cvtepi32_ps(s[t]), d));
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif
#else
#define tile_q8_0(A, R, T0, NT) MM_TILE_BY_ROWS(A, row_q8_0, R, T0, NT)
#endif

/* Y[t][r] = W[r] . X[t] for Q8_0 W (x8 layout) and Q8_0S X (ops.h struct
 * matmul_args). */
void mm_q8_0(const struct matmul_args *a)
{
#if defined(FLUID_ZMM_VNNI)
    MM_X16_LOOP(a, tile16_q8_0, tile_q8_0, row_q8_0);
#else
    MM_X8_LOOP(a, tile_q8_0, row_q8_0);
#endif
}
