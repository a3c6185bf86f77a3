/*
 * mm_q6_K.c - Q6_K weights x Q8_K activations (module "mm_q6_K").
 *
 * Per super-block of 256 (16 sub-blocks s of 16, int8 scale sc[s]):
 *   isum = sum_s sc[s] * sum_{l in s} (q6[l] - 32) * q8[l]   (exact int)
 *   dot += (dw * d8) * isum
 * scalar (ggml_vec_dot_q6_K_q8_K_generic): isum in 8 lanes (l % 8),
 *   float sums[8] += d * lane, summed at the end.
 *
 * Whole 8-row groups are in the x8 layout (ops.h block_q6_Kx8, made at
 * load by repack_q6_K); rows after the last group stay GGUF.  The scalar
 * build reads an x8 row back into its 256 weights and runs the generic
 * code, so it stays bit-identical to llama.cpp's.  The SIMD tiles compute
 * a group's 8 rows at once, one row per 32-bit lane (16 rows, two groups,
 * in the zmm tile): per sub-block, four chunks of 4 unsigned weights per
 * lane against the activation's bytes broadcast give the lane's exact
 * int32 sub-block sum, times sc[s] by one multiply; the -32 offset is
 * taken off as 32 * bsums[s] (ggml's AVX2 scheme: the same integer).
 * With VNNI the sum is four vpdpbusd started at -32 * bsums[s]; on AVX2
 * pairs of vpmaddubsw summed in int16 (2 * 2 * 63 * 127 < 2^15), one
 * vpmaddwd by (sc, sc), and the offset once per block.  Then
 * acc = fma(isum, d * d8, acc) per block, the same in every tile, so a
 * row's result never depends on the split or on the tile.
 * GGUF rows (after the last group): dot_q6_K (AVX2, after ggml's
 * ggml_vec_dot_q6_K_q8_K) or dot16_q6_K (zmm).
 */
#define MM_PREFETCH_BYTES MM_PREFETCH_Q6_K   /* mm_common.h: per block size */
#include "half.h"
#include "mm_common.h"

/* The 256 unsigned 6-bit weights of GGUF block b in order (the bit
 * layout of ggml's dequantize_row_q6_K). */
static inline void unpack_q6_K(const struct block_q6_K *b, uint8_t q[QK_K])
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        uint8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (uint8_t)((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4);
            o[l + 32] = (uint8_t)((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4);
            o[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
        }
    }
}

/* y = d * sc[s] * (q6 - 32) (ggml dequantize_row_q6_K). */
void dequant_q6_K(const void *w, float *y, int n)
{
    const struct block_q6_K *b = w;
    for (int i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        uint8_t q[QK_K];
        unpack_q6_K(&b[i], q);
        for (int k = 0; k < QK_K; k++)
            y[k] = d * b[i].scales[k / 16] * (q[k] - 32);
    }
}

/* One group: 8 GGUF rows in tmp (row_bytes apart) -> x8 blocks at g.
 * Byte-wise, not weight by weight (a model's Q6_K matrices are repacked
 * at every load): in weight order k, GGUF's ql bytes 0..63 hold the low
 * nibbles of weights k and k + 64 and bytes 64..127 those of 128 + k and
 * 192 + k, so x8's nibble byte k < 64 is (ql[k] & 15) | ql[64 + k] << 4
 * and byte 64 + k is (ql[k] >> 4) | (ql[64 + k] & 0xf0); x8's top-bit
 * byte m < 64 gathers pairs of qh[m % 32] and qh[32 + m % 32]. */
static void put_q6_Kx8(uint8_t *g, const uint8_t *tmp, size_t row_bytes)
{
    struct block_q6_Kx8 *o = (struct block_q6_Kx8 *)g;
    for (size_t i = 0; i < row_bytes / sizeof(struct block_q6_K); i++, o++)
        for (int r = 0; r < 8; r++) {
            const struct block_q6_K *b = (const struct block_q6_K *)(tmp + r * row_bytes) + i;
            uint8_t nib[128], top[64];
            for (int k = 0; k < 64; k++) {
                nib[k] = (uint8_t)((b->ql[k] & 0x0f) | (b->ql[64 + k] << 4));
                nib[64 + k] = (uint8_t)((b->ql[k] >> 4) | (b->ql[64 + k] & 0xf0));
            }
            for (int m = 0; m < 32; m++) {
                const uint8_t x = b->qh[m], y = b->qh[32 + m];
                top[m] = (uint8_t)((x & 0x03) | ((x >> 2) & 0x0c) | ((y << 4) & 0x30) | ((y << 2) & 0xc0));
                top[32 + m] = (uint8_t)(((x >> 2) & 0x03) | ((x >> 4) & 0x0c) | ((y << 2) & 0x30) | (y & 0xc0));
            }
            o->d[r] = b->d;
            for (int s = 0; s < 16; s++)
                o->sc[s][r] = b->scales[s];
            for (int c = 0; c < 32; c++)
                __builtin_memcpy(Q6X8_QL(o, c)[r], nib + 4 * c, 4);
            for (int c = 0; c < 16; c++)
                __builtin_memcpy(Q6X8_QH(o, c)[r], top + 4 * c, 4);
        }
}

void repack_q6_K(void *w, size_t row_bytes, int g0, int g1, void *tmp)
{
    MM_X8_REPACK(w, row_bytes, g0, g1, tmp, put_q6_Kx8);
}

#if !defined(FLUID_AVX2)   /* the scalar build reads x8 rows back */
/* Block i of row r as its 256 unsigned weights, scales and d, in either
 * layout: the inverse of put_q6_Kx8 for x8 rows. */
static void row_block(const struct matmul_args *a, int r, int i, uint8_t q[QK_K], int8_t sc[16], ggml_half *d)
{
    const uint8_t *w = a->w;
    if (r >= (a->n_rows & ~7)) {
        const struct block_q6_K *b = (const struct block_q6_K *)(w + (size_t)r * a->w_row_bytes) + i;
        unpack_q6_K(b, q);
        __builtin_memcpy(sc, b->scales, 16);
        *d = b->d;
        return;
    }
    const struct block_q6_Kx8 *g = (const struct block_q6_Kx8 *)(w + (size_t)(r & ~7) * a->w_row_bytes) + i;
    const int k = r & 7;
    for (int c = 0; c < 64; c++)
        for (int j = 0; j < 4; j++)
            q[4 * c + j] = (uint8_t)(((Q6X8_QL(g, c)[k][j] >> (4 * (c / 32))) & 15) |
                                     ((Q6X8_QH(g, c)[k][j] >> (2 * (c / 16))) & 3) << 4);
    for (int s = 0; s < 16; s++)
        sc[s] = g->sc[s][k];
    *d = g->d[k];
}

/* Row r (either layout), tokens t0..t0+nt-1: ggml_vec_dot_q6_K_q8_K_generic. */
static void row_q6_K_generic(const struct matmul_args *a, int r, int t0, int nt, float *out)
{
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * a->x_row_bytes;
    float sums[MM_NT][8] = {{0}};
    for (int i = 0; i < a->n_in / QK_K; i++) {
        uint8_t q[QK_K];
        int8_t sc[16], w6[QK_K];
        ggml_half dh;
        row_block(a, r, i, q, sc, &dh);
        for (int k = 0; k < QK_K; k++)
            w6[k] = (int8_t)(q[k] - 32);
        const float dw = fp16_to_fp32(dh);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * a->x_row_bytes) + i;
            int32_t lane[8] = {0};
            for (int k = 0; k < QK_K; k++)
                lane[k % 8] += sc[k / 16] * (int16_t)(y->qs[k] * w6[k]);
            const float d = dw * y->d;
            for (int l = 0; l < 8; l++)
                sums[t][l] += d * lane[l];
        }
    }
    for (int t = 0; t < nt; t++) {
        float sumf = 0;
        for (int l = 0; l < 8; l++)
            sumf += sums[t][l];
        out[t] = sumf;
    }
}
#endif

#if defined(FLUID_AVX2) && !defined(FLUID_ZMM_VNNI)   /* dot_q6_K */
/* Byte shuffles giving {sc[2k] x8, sc[2k+1] x8} from the 16 scales. */
static const uint8_t k_scale_pairs[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

/* GGUF rows (the zmm build has dot16_q6_K):
 * out[t] = dot(W row w, activation row t), t < nt (see MM_LOOP). */
FLUID_INLINE void dot_q6_K(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q6_K *w = wv;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        MM_PREFETCH_BLOCK(&w[i], sizeof w[i]);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const float dw = fp16_to_fp32(w[i].d);
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            for (int k = 0; k < 4; k++) {
                /* weights 128h + 32k + l: low bits from l0/l1, low/high
                 * nibble; top bits from hb bits 2k, 2k+1. */
                const __m256i lo = k & 1 ? l1 : l0;
                const __m256i nib = _mm256_and_si256(k & 2 ? _mm256_srli_epi16(lo, 4) : lo, m4);
                const __m256i top = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * k), m3);
                const __m256i q6 = _mm256_or_si256(nib, _mm256_slli_epi16(top, 4));
                const __m256i scl = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
                    sc8, _mm_loadu_si128((const __m128i *)k_scale_pairs[4 * h + k])));
                for (int t = 0; t < nt; t++) {
                    const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs +
                                       128 * h + 32 * k;
                    const __m256i q8v = _mm256_loadu_si256((const __m256i *)q8);
                    isum[t] = madd_acc_i16(isum[t], scl, _mm256_maddubs_epi16(q6, q8v));
                }
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * dw),
                                     _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], off)),
                                     acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum_f32x8(acc[t]);
}
#endif

#if defined(FLUID_AVX2)
/* Chunk c of an x8 group (ql at l, qh at h: 32 bytes each), or of two
 * groups side by side: 4 unsigned 6-bit weights per 32-bit lane.  hi:
 * c >= 32 (the high nibbles); j = c / 16 (the top bits' pair).  Both
 * constants after inlining, so a chunk costs a shift or two, an and and
 * a ternary logic op.  In a 16-bit lane the shifts move bits across the
 * byte boundary only into the bits the masks drop. */
#define Q6X8_CHUNK(W, l, h, hi, j)                                             \
    _mm##W##_or_si##W(                                                         \
        _mm##W##_and_si##W((hi) ? _mm##W##_srli_epi16(l, 4) : (l), _mm##W##_set1_epi8(0x0f)), \
        _mm##W##_and_si##W((j) == 0 ? _mm##W##_slli_epi16(h, 4) : (j) == 1 ? _mm##W##_slli_epi16(h, 2) \
                           : (j) == 2 ? (h) : _mm##W##_srli_epi16(h, 2), _mm##W##_set1_epi8(0x30)))

/* acc + (4-byte dot of unsigned u and signed s per 32-bit lane). */
#if defined(FLUID_VNNI)
FLUID_INLINE __m256i dpbusd_acc(__m256i acc, __m256i u, __m256i s)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#endif
}
#endif

FLUID_INLINE int32_t load_i32(const void *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* Sub-block s (quarter j = s / 4, a constant) of x8 block g for tokens
 * y[0..nt): isum[t] += sc[s] * sum (q6 * q8) per row lane; on VNNI the
 * sum starts at -32 * bsums[s] (off[t][s]), on AVX2 the caller takes the
 * offset off once per block. */
FLUID_INLINE void sub_q6x8(const struct block_q6_Kx8 *g, int s, const int j, const struct block_q8_K *const *y,
                           const int32_t (*off)[16], int nt, __m256i *isum)
{
    __m256i w[4];
    MM_UNROLL
    for (int k = 0; k < 4; k++) {
        const int c = 4 * s + k;
        const __m256i l = _mm256_loadu_si256((const __m256i *)Q6X8_QL(g, c));
        const __m256i h = _mm256_loadu_si256((const __m256i *)Q6X8_QH(g, c));
        w[k] = Q6X8_CHUNK(256, l, h, j >= 2, j);
    }
    const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)g->sc[s]));
#if defined(FLUID_VNNI)
    for (int t = 0; t < nt; t++) {
        const int8_t *q8 = y[t]->qs + 16 * s;
        __m256i d = _mm256_set1_epi32(off[t][s]);
        MM_UNROLL
        for (int k = 0; k < 4; k++)
            d = dpbusd_acc(d, w[k], _mm256_set1_epi32(load_i32(q8 + 4 * k)));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(d, sc));
    }
#else
    (void)off;
    const __m256i scp = _mm256_or_si256(_mm256_and_si256(sc, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(sc, 16));
    for (int t = 0; t < nt; t++) {
        const int8_t *q8 = y[t]->qs + 16 * s;
        __m256i p[2];
        for (int k = 0; k < 2; k++)
            p[k] = _mm256_add_epi16(_mm256_maddubs_epi16(w[2 * k], _mm256_set1_epi32(load_i32(q8 + 8 * k))),
                                    _mm256_maddubs_epi16(w[2 * k + 1], _mm256_set1_epi32(load_i32(q8 + 8 * k + 4))));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(p[0], scp), _mm256_madd_epi16(p[1], scp)));
    }
#endif
}

#if defined(FLUID_VNNI)
/* off[s] = -32 * bsums[s] of activation block y. */
FLUID_INLINE void q8_K_offsets(const struct block_q8_K *y, int32_t off[16])
{
    for (int h = 0; h < 2; h++)
        _mm256_storeu_si256((__m256i *)(off + 8 * h),
                            _mm256_sub_epi32(_mm256_setzero_si256(),
                                             _mm256_slli_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128(
                                                                   (const __m128i *)(y->bsums + 8 * h))), 5)));
}
#endif

/* Group rows r..r+7 (r a multiple of 8, inside the x8 part), tokens
 * t0..t0+nt-1: yo[t * ldy + k] = row r+k . token t0+t. */
FLUID_INLINE void tile_q6_K_to(const struct matmul_args *a, int r, int t0, int nt, float *yo, size_t ldy)
{
    const size_t xs = a->x_row_bytes;
    const struct block_q6_Kx8 *g =
        (const struct block_q6_Kx8 *)((const uint8_t *)a->w + (size_t)r * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK_K; i++, g++) {
        MM_PREFETCH_BLOCK(g, sizeof *g);
        const struct block_q8_K *y[MM_NT];
        _Alignas(32) int32_t off[MM_NT][16];
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            y[t] = (const struct block_q8_K *)(x + t * xs) + i;
#if defined(FLUID_VNNI)
        for (int t = 0; t < nt; t++) {
            q8_K_offsets(y[t], off[t]);
            isum[t] = _mm256_setzero_si256();
        }
#else
        {   /* isum = -32 * sum_s sc[s] * bsums[s]: int16 pairs (sc[2p], sc[2p+1]) by (bsums[2p], bsums[2p+1]) */
            __m256i scp[8];
            for (int p = 0; p < 8; p++)
                scp[p] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)g->sc[2 * p])),
                                     _mm256_set1_epi32(0xffff)),
                    _mm256_slli_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)g->sc[2 * p + 1])), 16));
            for (int t = 0; t < nt; t++) {
                __m256i m = _mm256_setzero_si256();
                for (int p = 0; p < 8; p++)
                    m = _mm256_add_epi32(m, _mm256_madd_epi16(scp[p], _mm256_set1_epi32(load_i32(y[t]->bsums + 2 * p))));
                isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(m, 5));
            }
        }
#endif
        for (int m = 0; m < 4; m++) {   /* quad m, front to back (ops.h) */
            sub_q6x8(g, m, 0, y, off, nt, isum);
            sub_q6x8(g, m + 4, 1, y, off, nt, isum);
            sub_q6x8(g, m + 8, 2, y, off, nt, isum);
            sub_q6x8(g, m + 12, 3, y, off, nt, isum);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_broadcast_ss(&y[t]->d)),
                                     acc[t]);
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(yo + (size_t)t * ldy, acc[t]);
}
#endif

#if defined(FLUID_ZMM_VNNI)

/* dot_q6_K on 512-bit VNNI, nt <= MM_NT16 tokens per pass over the row.
 * Weights 64m..64m+63 of a block (m < 4) sit in one zmm of unsigned q6;
 * vpdpbusd against the activation bytes gives per 32-bit lane L the sum
 * of 4 products, all in sub-block 4m + L/4, |sum| <= 4 * 63 * 128 < 2^15,
 * so vpdpwssd with (sc, 0) int16 pairs scales it exactly.  The -32 offset
 * and the float accumulation are dot_q6_K's (ggml's AVX2 scheme). */
FLUID_INLINE void dot16_q6_K(const void *wv, const uint8_t *x, size_t xs, int n, float *out, int nt)
{
    const struct block_q6_K *w = wv;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
    const __m512i lo16 = _mm512_set1_epi32(0xffff);
    __m512 acc[MM_NT16];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        MM_PREFETCH_BLOCK(&w[i], sizeof w[i]);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        __m512i q6[4], scp[4];
        for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512(w[i].ql + 64 * h);
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            /* bytes 0-31: qh (weights l < 32), 32-63: qh >> 2 (weights 32 + l) */
            const __m512i top = _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
            q6[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                        _mm512_slli_epi16(_mm512_and_si512(top, m3), 4));
            q6[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(top, 4), m3), 4));
        }
        for (int m = 0; m < 4; m++) {   /* lane L: sc[4m + L/4] */
            const __m128i pick = _mm_setr_epi8(4 * m, 4 * m, 4 * m, 4 * m, 4 * m + 1, 4 * m + 1, 4 * m + 1, 4 * m + 1,
                                               4 * m + 2, 4 * m + 2, 4 * m + 2, 4 * m + 2, 4 * m + 3, 4 * m + 3,
                                               4 * m + 3, 4 * m + 3);
            scp[m] = _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, pick)), lo16);
        }
        const float dw = fp16_to_fp32(w[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m512i isum[MM_NT16];
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            isum[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_zextsi256_si512(_mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5)));
        }
        for (int m = 0; m < 4; m++)
            for (int t = 0; t < nt; t++) {
                const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs + 64 * m;
                const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q6[m], _mm512_loadu_si512(q8));
                isum[t] = _mm512_dpwssd_epi32(isum[t], p, scp[m]);
            }
        for (int t = 0; t < nt; t++) {
            const float d8 = ((const struct block_q8_K *)(x + t * xs) + i)->d;
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d8 * dw), _mm512_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]);
}
#endif

#if defined(FLUID_ZMM_VNNI)
/* sub_q6x8 for two groups side by side (rows 0-7 of g0, 8-15 of g1). */
FLUID_INLINE void sub16_q6x8(const struct block_q6_Kx8 *g0, const struct block_q6_Kx8 *g1, int s, const int j,
                             const struct block_q8_K *const *y, const int32_t (*off)[16], int nt, __m512i *isum)
{
    __m512i wq[4];
    MM_UNROLL
    for (int k = 0; k < 4; k++) {
        const int c = 4 * s + k;
        const __m512i l = load_2x256(Q6X8_QL(g0, c), Q6X8_QL(g1, c));
        const __m512i h = load_2x256(Q6X8_QH(g0, c), Q6X8_QH(g1, c));
        wq[k] = Q6X8_CHUNK(512, l, h, j >= 2, j);
    }
    const __m512i sc = _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)g0->sc[s]),
                                                               _mm_loadl_epi64((const __m128i *)g1->sc[s])));
    for (int t = 0; t < nt; t++) {
        const int8_t *q8 = y[t]->qs + 16 * s;
        __m512i d = _mm512_set1_epi32(off[t][s]);
        MM_UNROLL
        for (int k = 0; k < 4; k++)
            d = _mm512_dpbusd_epi32(d, wq[k], _mm512_set1_epi32(load_i32(q8 + 4 * k)));
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(d, sc));
    }
}

/* Rows r..r+15 (two x8 groups side by side, one row per 32-bit lane of a
 * zmm), tokens t0..t0+nt-1 (MM_X16_LOOP): tile_q6_K_to's integers and
 * float operations, so a row's result equals the 8-row tile's. */
FLUID_INLINE void tile16_q6_K(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * a->w_row_bytes;
    const struct block_q6_Kx8 *g0 = (const struct block_q6_Kx8 *)w;
    const struct block_q6_Kx8 *g1 = (const struct block_q6_Kx8 *)(w + 8 * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    __m512 acc[MM_NT16];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < a->n_in / QK_K; i++, g0++, g1++) {
        MM_PREFETCH_BLOCK(g0, sizeof *g0);
        MM_PREFETCH_BLOCK(g1, sizeof *g1);
        const struct block_q8_K *y[MM_NT16];
        _Alignas(32) int32_t off[MM_NT16][16];
        __m512i isum[MM_NT16];
        for (int t = 0; t < nt; t++) {
            y[t] = (const struct block_q8_K *)(x + t * xs) + i;
            q8_K_offsets(y[t], off[t]);
            isum[t] = _mm512_setzero_si512();
        }
        for (int m = 0; m < 4; m++) {   /* quad m, front to back (ops.h) */
            sub16_q6x8(g0, g1, m, 0, y, off, nt, isum);
            sub16_q6x8(g0, g1, m + 4, 1, y, off, nt, isum);
            sub16_q6x8(g0, g1, m + 8, 2, y, off, nt, isum);
            sub16_q6x8(g0, g1, m + 12, 3, y, off, nt, isum);
        }
        const __m512 dw = cvtph_2x8(g0->d, g1->d);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, _mm512_set1_ps(y[t]->d)), acc[t]);
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif

#if defined(FLUID_AVX2)
/* MM_X8_LOOP's TILE and ROW: a row of a group cut by [row0, row1) runs
 * its group's tile (the same result as in the whole group); a GGUF row
 * after the last group runs dot_q6_K (dot16_q6_K in the zmm build). */
FLUID_INLINE void tile_q6_K(const struct matmul_args *a, int r, int t0, int nt)
{
    tile_q6_K_to(a, r, t0, nt, a->y + (size_t)t0 * a->ldy + r, a->ldy);
}

FLUID_INLINE void row_q6_K(const struct matmul_args *a, int r, int t0, int nt, float *out)
{
    if (r < (a->n_rows & ~7)) {
        float tmp[MM_NT * 8];
        tile_q6_K_to(a, r & ~7, t0, nt, tmp, 8);
        for (int t = 0; t < nt; t++)
            out[t] = tmp[t * 8 + (r & 7)];
        return;
    }
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * a->w_row_bytes;
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * a->x_row_bytes;
#if defined(FLUID_ZMM_VNNI)
    dot16_q6_K(w, x, a->x_row_bytes, a->n_in, out, nt);
#else
    dot_q6_K(w, x, a->x_row_bytes, a->n_in, nt, out);
#endif
}
#else
#define row_q6_K row_q6_K_generic
#define tile_q6_K(A, R, T0, NT) MM_TILE_BY_ROWS(A, row_q6_K_generic, R, T0, NT)
#endif

/* Y[t][r] = W[r] . X[t] for Q6_K W (x8 groups, then GGUF rows) and Q8_K X
 * (ops.h struct matmul_args). */
void mm_q6_K(const struct matmul_args *a)
{
#if defined(FLUID_ZMM_VNNI)
    MM_X16_LOOP(a, tile16_q6_K, tile_q6_K, row_q6_K);
#else
    MM_X8_LOOP(a, tile_q6_K, row_q6_K);
#endif
}
