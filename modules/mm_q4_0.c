/*
 * mm_q4_0.c - Q4_0 weights x Q8_0S activations (module "mm_q4_0").
 *
 * Weights are in the 8-row interleaved layout (ops.h block_q4_0x8, made
 * once at load by repack_q4_0), rows after the last whole group in GGUF's.
 * Per block of 32: v = nibble - 8; sumi = sum v * x.qs (exact int), then
 * the scalar path sumf += (sumi * dw) * dx, blocks in order
 * (ggml_vec_dot_q4_0_q8_0_generic); the SIMD tiles acc = fma(sumi, dw * dx,
 * acc), as ggml's AVX2 kernel does: one rounding fewer and one vector
 * operation fewer per block and token (the tiles' pipes are the limit),
 * so they agree with the scalar path to float rounding, not bit for bit
 * (issue 9 dropped bit-identity across ISA levels).  The AVX2 and zmm
 * tiles compute the same lane operations, so prefill (16-row tiles) and
 * decode (8-row tiles) give bit-identical rows.  The tiles compute a
 * group's 8 rows at once, one row per 32-bit lane.  Integer part: the
 * unsigned nibbles of 4-byte chunk k of all 8 rows (one vector, ops.h)
 * times the activation's matching 4 bytes broadcast to every lane, with
 * maddubs (or vpdpbusd): 8 products per block and token land in row order,
 * with no horizontal adds; plus msum8 = -8 * sum(q8) (kept in the Q8_0S
 * block).
 */
#define MM_PREFETCH_BYTES MM_PREFETCH_Q4_0   /* mm_common.h: per block size */
#include "half.h"
#include "mm_common.h"

#pragma STDC FP_CONTRACT OFF

/* y = d * (nibble - 8); byte j: weight j low, j+16 high
 * (ggml dequantize_row_q4_0).  w: one GGUF-layout row (token_embd). */
void dequant_q4_0(const void *w, float *y, int n)
{
    const struct block_q4_0 *b = w;
    for (int i = 0; i < n / QK4_0; i++) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[i * QK4_0 + j] = ((b[i].qs[j] & 0x0f) - 8) * d;
            y[i * QK4_0 + j + QK4_0 / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* One group: 8 GGUF rows in tmp (row_bytes apart) -> x8 blocks at g. */
static void put_q4_0x8(uint8_t *g, const uint8_t *tmp, size_t row_bytes)
{
    struct block_q4_0x8 *o = (struct block_q4_0x8 *)g;
    for (size_t i = 0; i < row_bytes / sizeof(struct block_q4_0); i++, o++)
        for (int k = 0; k < 8; k++) {
            const struct block_q4_0 *b = (const struct block_q4_0 *)(tmp + k * row_bytes) + i;
            o->d[k] = b->d;
            for (int c = 0; c < 4; c++)
                __builtin_memcpy(o->qs[c][k], b->qs + 4 * c, 4);
        }
}

void repack_q4_0(void *w, size_t row_bytes, int g0, int g1, void *tmp)
{
    MM_X8_REPACK(w, row_bytes, g0, g1, tmp, put_q4_0x8);
}

/* Block i of row r: its scale and 16 quant bytes (into qs), in either
 * layout. */
FLUID_INLINE void row_block(const struct matmul_args *a, int r, int i, uint16_t *d, uint8_t qs[QK4_0 / 2])
{
    const uint8_t *w = a->w;
    if (r < (a->n_rows & ~7)) {
        const struct block_q4_0x8 *g =
            (const struct block_q4_0x8 *)(w + (size_t)(r & ~7) * a->w_row_bytes) + i;
        *d = g->d[r & 7];
        for (int c = 0; c < 4; c++)
            __builtin_memcpy(qs + 4 * c, g->qs[c][r & 7], 4);
        return;
    }
    const struct block_q4_0 *b = (const struct block_q4_0 *)(w + (size_t)r * a->w_row_bytes) + i;
    *d = b->d;
    __builtin_memcpy(qs, b->qs, QK4_0 / 2);
}

/* Row r, out[t] = dot(W row r, activation row t0 + t), t < nt. */
FLUID_INLINE void row_q4_0(const struct matmul_args *a, int r, int t0, int nt, float *out)
{
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * a->x_row_bytes;
    float sumf[MM_NT] = {0};
    for (int i = 0; i < a->n_in / QK4_0; i++) {
        uint16_t dh;
        uint8_t qs[QK4_0 / 2];
        row_block(a, r, i, &dh, qs);
        int8_t v[QK4_0];
        for (int j = 0; j < QK4_0 / 2; j++) {
            v[j] = (int8_t)((qs[j] & 0x0f) - 8);
            v[j + QK4_0 / 2] = (int8_t)((qs[j] >> 4) - 8);
        }
        const float dw = fp16_to_fp32(dh);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0s *y = (const struct block_q8_0s *)(x + t * a->x_row_bytes) + i;
            int sumi = 0;
            for (int j = 0; j < QK4_0; j++)
                sumi += v[j] * y->qs[j];
#if defined(FLUID_AVX2)   /* the tiles' fused step, so every row agrees bit for bit */
            sumf[t] = __builtin_fmaf((float)sumi, dw * y->d, sumf[t]);
#else
            sumf[t] += sumi * dw * y->d;
#endif
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = sumf[t];
}

#if defined(FLUID_AVX2)
/* Lane r: sum over the 8 chunks of nibbles(row r) * q8 bytes of one
 * block, lo[c] / hi[c] the low / high nibbles of chunk c (weights 4c..4c+3
 * / 16+4c..), q the activation's 32 bytes.  Without VNNI the 8 maddubs
 * int16 results are summed before one vpmaddwd: each is at most
 * 2 * 15 * 128, eight of them 30720 < 2^15, so nothing saturates. */
FLUID_INLINE __m256i dot8_u4s8_i32(const __m256i lo[4], const __m256i hi[4], const int8_t *q)
{
    int32_t c4[8];
    __builtin_memcpy(c4, q, 32);
#if defined(FLUID_VNNI) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
    __m256i s = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        s = _mm256_dpbusd_epi32(s, lo[c], _mm256_set1_epi32(c4[c]));
        s = _mm256_dpbusd_epi32(s, hi[c], _mm256_set1_epi32(c4[4 + c]));
    }
    return s;
#elif defined(FLUID_VNNI)
    __m256i s = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        s = _mm256_dpbusd_avx_epi32(s, lo[c], _mm256_set1_epi32(c4[c]));
        s = _mm256_dpbusd_avx_epi32(s, hi[c], _mm256_set1_epi32(c4[4 + c]));
    }
    return s;
#else
    __m256i s = _mm256_maddubs_epi16(lo[0], _mm256_set1_epi32(c4[0]));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[0], _mm256_set1_epi32(c4[4])));
    for (int c = 1; c < 4; c++) {
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[c], _mm256_set1_epi32(c4[c])));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[c], _mm256_set1_epi32(c4[4 + c])));
    }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
#endif
}

/* Group rows r..r+7, tokens t0..t0+nt-1 (MM_X8_LOOP). */
FLUID_INLINE void tile_q4_0(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t xs = a->x_row_bytes;
    const struct block_q4_0x8 *g =
        (const struct block_q4_0x8 *)((const uint8_t *)a->w + (size_t)r * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK4_0; i++, g++) {
        MM_PREFETCH_BLOCK(g, sizeof *g);
        __m256i lo[4], hi[4];   /* chunk c of the 8 rows: weights 4c.. / 16+4c.. */
        for (int c = 0; c < 4; c++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)g->qs[c]);
            lo[c] = _mm256_and_si256(raw, m4);
            hi[c] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0s *y = (const struct block_q8_0s *)(x + t * xs) + i;
            const __m256i sumi = _mm256_add_epi32(dot8_u4s8_i32(lo, hi, y->qs), _mm256_set1_epi32(y->msum8));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dw, _mm256_broadcast_ss(&y->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#else
#define tile_q4_0(A, R, T0, NT) MM_TILE_BY_ROWS(A, row_q4_0, R, T0, NT)
#endif

#if defined(FLUID_ZMM_VNNI)
/* Rows r..r+15 (groups r/8 and r/8 + 1 side by side: row r+k in lane k),
 * tokens t0..t0+nt-1 (MM_X16_LOOP): tile_q4_0's arithmetic on 512-bit
 * vectors, so each vpdpbusd does 64 byte products.  The int32 sum starts
 * at -8 * sum(q8) rather than subtracting it after: the same exact
 * integer.  Float operations per row as tile_q4_0's, in the same order. */
FLUID_INLINE void tile16_q4_0(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * a->w_row_bytes;
    const struct block_q4_0x8 *g0 = (const struct block_q4_0x8 *)w;
    const struct block_q4_0x8 *g1 = (const struct block_q4_0x8 *)(w + 8 * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[MM_NT16];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < a->n_in / QK4_0; i++, g0++, g1++) {
        MM_PREFETCH_BLOCK(g0, sizeof *g0);
        MM_PREFETCH_BLOCK(g1, sizeof *g1);
        __m512i lo[4], hi[4];
        for (int c = 0; c < 4; c++) {
            const __m512i raw = load_2x256(g0->qs[c], g1->qs[c]);
            lo[c] = _mm512_and_si512(raw, m4);
            hi[c] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
        }
        const __m512 dw = cvtph_2x8(g0->d, g1->d);
        MM_UNROLL
        for (int t = 0; t < nt; t++) {
            const struct block_q8_0s *y = (const struct block_q8_0s *)(x + t * xs) + i;
            int32_t c4[8];
            __builtin_memcpy(c4, y->qs, 32);
            __m512i sumi = _mm512_set1_epi32(y->msum8);
            for (int c = 0; c < 4; c++) {
                sumi = _mm512_dpbusd_epi32(sumi, lo[c], _mm512_set1_epi32(c4[c]));
                sumi = _mm512_dpbusd_epi32(sumi, hi[c], _mm512_set1_epi32(c4[4 + c]));
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(dw, _mm512_set1_ps(y->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif

/* Y[t][r] = W[r] . X[t] for Q4_0 W (x8 layout) and Q8_0S X (ops.h struct
 * matmul_args). */
void mm_q4_0(const struct matmul_args *a)
{
#if defined(FLUID_ZMM_VNNI)
    MM_X16_LOOP(a, tile16_q4_0, tile_q4_0, row_q4_0);
#else
    MM_X8_LOOP(a, tile_q4_0, row_q4_0);
#endif
}
