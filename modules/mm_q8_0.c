/*
 * mm_q8_0.c - Q8_0 weights x Q8_0S activations (module "mm_q8_0").
 *
 * Weights are in the 8-row interleaved layout (ops.h block_q8_0x8, made
 * once at load by repack_q8_0), rows after the last whole group in GGUF's.
 * Per block of 32: sumi = sum w.qs[j] * x.qs[j] (exact int), then
 * sumf += sumi * (dw * dx), blocks in order (ggml_vec_dot_q8_0_q8_0_generic).
 * The AVX2 tile computes a group's 8 rows at once, one row per float lane,
 * with the same float operations in the same order (no fma), so every ISA
 * gives bit-identical results.  Its integer part is ggml's sign trick
 * (|w| times x with w's sign, maddubs or vpdpbusd) on half blocks of rows
 * j and j+4 side by side, then three horizontal adds; weights may be -128,
 * activations must lie in [-127, 127] (quantize_q8_0 guarantees it).
 */
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
        for (int k = 0; k < 8; k++) {
            const struct block_q8_0 *b = (const struct block_q8_0 *)(tmp + k * row_bytes) + i;
            o->d[k] = b->d;
            for (int h = 0; h < 2; h++)
                __builtin_memcpy(o->qs[X8_J(k)][h][X8_S(k)], b->qs + h * QK8_0 / 2, QK8_0 / 2);
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
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < QK8_0 / 2; j++)
                    q[h * QK8_0 / 2 + j] = g->qs[X8_J(r)][h][X8_S(r)][j];
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
/* Group rows r..r+7, tokens t0..t0+nt-1 (MM_X8_LOOP). */
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
        __m256i aw[4][2];  /* |w|, half h of rows j | j+4; -128 reads as 128 */
        for (int j = 0; j < 4; j++)
            for (int h = 0; h < 2; h++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)g->qs[j][h]);
                aw[j][h] = _mm256_sign_epi8(v, v);
            }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0s *y = (const struct block_q8_0s *)(x + t * xs) + i;
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y->qs);
            const __m256i yh[2] = { _mm256_permute2x128_si256(qy, qy, 0x00),
                                    _mm256_permute2x128_si256(qy, qy, 0x11) };
            __m256i p[4];
            for (int j = 0; j < 4; j++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)g->qs[j][0]);
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)g->qs[j][1]);
                p[j] = dot2_u8s8_i32(aw[j][0], _mm256_sign_epi8(yh[0], w0),
                                     aw[j][1], _mm256_sign_epi8(yh[1], w1));
            }
            const __m256i sumi = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]),
                                                   _mm256_hadd_epi32(p[2], p[3]));
            const __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(&y->d));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), d));
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#else
#define tile_q8_0(A, R, T0, NT) MM_TILE_BY_ROWS(A, row_q8_0, R, T0, NT)
#endif

/* Y[t][r] = W[r] . X[t] for Q8_0 W (x8 layout) and Q8_0S X (ops.h struct
 * matmul_args). */
void mm_q8_0(const struct matmul_args *a)
{
    MM_X8_LOOP(a, tile_q8_0, row_q8_0);
}
