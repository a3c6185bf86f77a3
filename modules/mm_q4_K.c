/*
 * mm_q4_K.c - Q4_K weights x Q8_K activations (module "mm_q4_K").
 *
 * Per super-block of 256 (8 sub-blocks j of 32, 6-bit scale sc[j], min mn[j]):
 *   isum = sum_j sc[j] * sum_{l in j} q4[l] * q8[l]      (exact int)
 *   msum = sum_j mn[j] * (bsums[2j] + bsums[2j+1])       (exact int)
 *   dot += (dw * d8) * isum - (dminw * d8) * msum
 * scalar (ggml_vec_dot_q4_K_q8_K_generic): isum kept in 8 lanes (l % 8),
 *   float sums[8] += d * lane; sumf -= dmin * msum; sumf += sums[] at end.
 * AVX2 on a GGUF row (ggml_vec_dot_q4_K_q8_K, x86): isum in 8 int32 lanes
 *   of 4 consecutive products, msum in 4 lanes; both fma'd into one float
 *   accumulator (ggml keeps a second one for the mins), hsum at the end.
 *
 * Whole 8-row groups are in the x8 layout (ops.h block_q4_Kx8, made at
 * load by repack_q4_K); rows after the last group stay GGUF.  The scalar
 * build reads an x8 row back into GGUF blocks and runs the generic code,
 * so it stays bit-identical to llama.cpp's.  The AVX2 tile computes the 8
 * rows of a group at once, one row per 32-bit lane: per sub-block, eight
 * maddubs of nibble chunks against broadcast activation bytes summed in
 * int16 (8 * 2 * 15 * 128 < 2^15), one vpmaddwd by the row's scale; the
 * mins by vpmaddwd of (mn, mn') pairs against bsums pairs; then
 * acc = fma(isum, d*d8, acc) - msum * dmin*d8 per block.  A group cut by
 * [row0, row1) runs the same tile, so a row's result never depends on
 * the split.
 */
#define MM_PREFETCH_BYTES MM_PREFETCH_Q4_K   /* mm_common.h: per block size */
#include "half.h"
#include "mm_common.h"

/* y = d*sc[j]*nibble - dmin*mn[j] (ggml dequantize_row_q4_K). */
void dequant_q4_K(const void *w, float *y, int n)
{
    const struct block_q4_K *b = w;
    for (int i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        uint8_t sc[8], mn[8];
        unpack_scales_k4(b[i].scales, sc, mn);
        for (int g = 0; g < 4; g++) {
            const uint8_t *q = b[i].qs + 32 * g;
            const float d1 = d * sc[2 * g], m1 = dmin * mn[2 * g];
            const float d2 = d * sc[2 * g + 1], m2 = dmin * mn[2 * g + 1];
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (q[l] & 0x0f) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (q[l] >> 4) - m2;
            }
        }
    }
}

/* GGUF block b's sub-block scales and mins into x8 block o, row k. */
static void put_scales(struct block_q4_Kx8 *o, int k, const struct block_q4_K *b)
{
    uint8_t sc[8], mn[8];
    unpack_scales_k4(b->scales, sc, mn);
    for (int j = 0; j < 8; j++) {
        const int e = 8 * j + k;
        o->sm_lo[j][k] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
        const uint8_t top = (uint8_t)((sc[j] >> 4) | (mn[j] >> 4) << 2);
        o->sm_hi[e % 32] = (uint8_t)(e < 32 ? (o->sm_hi[e % 32] & 0xf0) | top : (o->sm_hi[e % 32] & 0x0f) | top << 4);
    }
}

/* One group: 8 GGUF rows in tmp (row_bytes apart) -> x8 blocks at g. */
static void put_q4_Kx8(uint8_t *g, const uint8_t *tmp, size_t row_bytes)
{
    struct block_q4_Kx8 *o = (struct block_q4_Kx8 *)g;
    for (size_t i = 0; i < row_bytes / sizeof(struct block_q4_K); i++, o++)
        for (int k = 0; k < 8; k++) {
            const struct block_q4_K *b = (const struct block_q4_K *)(tmp + k * row_bytes) + i;
            o->d[k] = b->d;
            o->dmin[k] = b->dmin;
            put_scales(o, k, b);
            for (int q = 0; q < 4; q++)
                for (int c = 0; c < 8; c++)
                    __builtin_memcpy(o->qs[q][c][k], b->qs + 32 * q + 4 * c, 4);
        }
}

void repack_q4_K(void *w, size_t row_bytes, int g0, int g1, void *tmp)
{
    MM_X8_REPACK(w, row_bytes, g0, g1, tmp, put_q4_Kx8);
}

#if !defined(FLUID_AVX2)   /* the scalar build reads x8 rows back as GGUF blocks */
/* Block i of row r as its GGUF block (a copy), in either layout: the
 * exact inverse of put_q4_Kx8. */
FLUID_INLINE void row_block(const struct matmul_args *a, int r, int i, struct block_q4_K *b)
{
    const uint8_t *w = a->w;
    if (r >= (a->n_rows & ~7)) {
        *b = ((const struct block_q4_K *)(w + (size_t)r * a->w_row_bytes))[i];
        return;
    }
    const struct block_q4_Kx8 *g = (const struct block_q4_Kx8 *)(w + (size_t)(r & ~7) * a->w_row_bytes) + i;
    const int k = r & 7;
    b->d = g->d[k];
    b->dmin = g->dmin[k];
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        const int e = 8 * j + k;
        const uint8_t top = (uint8_t)(e < 32 ? g->sm_hi[e % 32] & 15 : g->sm_hi[e % 32] >> 4);
        sc[j] = (uint8_t)((g->sm_lo[j][k] & 15) | (top & 3) << 4);
        mn[j] = (uint8_t)((g->sm_lo[j][k] >> 4) | (top >> 2) << 4);
    }
    for (int j = 0; j < 4; j++) {   /* ggml's 12-byte packing (unpack_scales_k4 inverted) */
        b->scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        b->scales[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        b->scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    for (int q = 0; q < 4; q++)
        for (int c = 0; c < 8; c++)
            __builtin_memcpy(b->qs + 32 * q + 4 * c, g->qs[q][c][k], 4);
}

/* One block of ggml_vec_dot_q4_K_q8_K_generic for nt tokens: block b
 * against block i of each activation row; sums / sumf as it keeps them. */
FLUID_INLINE void block_generic(const struct block_q4_K *b, const uint8_t *x, size_t xs, int i, int nt,
                                float sums[MM_NT][8], float sumf[MM_NT])
{
    int8_t q[QK_K];
    uint8_t sc[8], mn[8];
    for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 32; l++) {
            q[64 * g + l] = (int8_t)(b->qs[32 * g + l] & 0x0f);
            q[64 * g + 32 + l] = (int8_t)(b->qs[32 * g + l] >> 4);
        }
    }
    unpack_scales_k4(b->scales, sc, mn);
    kquant_sc_mn_block(q, sc, mn, fp16_to_fp32(b->d), fp16_to_fp32(b->dmin), x, xs, i, nt, sums, sumf);
}
#endif

#if defined(FLUID_AVX2)
/* GGUF row w: out[t] = dot(w, activation row t), t < nt. */
FLUID_INLINE void dot_q4_K(const void *wv, const uint8_t *x, size_t xs, int n,
                           int nt, float *out)
{
    const struct block_q4_K *w = wv;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        MM_PREFETCH_BLOCK(&w[i], sizeof w[i]);
        const __m256i sm = unpack_scales_k4_i16(w[i].scales);
        const __m128i mins = _mm256_extracti128_si256(sm, 1);
        const float dw = fp16_to_fp32(w[i].d), dmw = fp16_to_fp32(w[i].dmin);
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * g));
            const __m256i q4l = _mm256_and_si256(bits, m4);
            const __m256i q4h = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i scl = BCAST_I16(sm, 2 * g);
            const __m256i sch = BCAST_I16(sm, 2 * g + 1);
            for (int t = 0; t < nt; t++) {
                const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs + 64 * g;
                const __m256i q8l = _mm256_loadu_si256((const __m256i *)q8);
                const __m256i q8h = _mm256_loadu_si256((const __m256i *)(q8 + 32));
                isum[t] = madd_acc_i16(isum[t], scl, _mm256_maddubs_epi16(q4l, q8l));
                isum[t] = madd_acc_i16(isum[t], sch, _mm256_maddubs_epi16(q4h, q8h));
            }
        }
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m128i s32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs),
                                               _mm256_extracti128_si256(bs, 1));
            const __m256i msum = _mm256_zextsi128_si256(_mm_madd_epi16(mins, s32));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * dw),
                                     _mm256_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-y->d * dmw),
                                     _mm256_cvtepi32_ps(msum), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum_f32x8(acc[t]);
}
#endif

#if defined(FLUID_AVX2)
/* The 64 6-bit scales and mins of x8 block g as bytes [j][k] (sub-block
 * j, row k): the inverse of put_scales. */
FLUID_INLINE void unpack_x8_scales(const struct block_q4_Kx8 *g, uint8_t sc[64], uint8_t mn[64])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i lo = _mm256_loadu_si256((const __m256i *)g->sm_lo[4 * h]);
        const __m256i hi = _mm256_loadu_si256((const __m256i *)g->sm_hi);
        const __m256i top = _mm256_and_si256(h ? _mm256_srli_epi16(hi, 4) : hi, m4);
        _mm256_storeu_si256((__m256i *)(sc + 32 * h),
                            _mm256_or_si256(_mm256_and_si256(lo, m4),
                                            _mm256_slli_epi16(_mm256_and_si256(top, m3), 4)));
        _mm256_storeu_si256((__m256i *)(mn + 32 * h),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo, 4), m4),
                                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(top, 2), m3), 4)));
    }
}

/* Group rows r..r+7 (r a multiple of 8, inside the x8 part), tokens
 * t0..t0+nt-1: yo[t * ldy + k] = row r+k . token t0+t. */
FLUID_INLINE void tile_q4_K_to(const struct matmul_args *a, int r, int t0, int nt, float *yo, size_t ldy)
{
    const size_t xs = a->x_row_bytes;
    const struct block_q4_Kx8 *g =
        (const struct block_q4_Kx8 *)((const uint8_t *)a->w + (size_t)r * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[MM_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < a->n_in / QK_K; i++, g++) {
        MM_PREFETCH_BLOCK(g, sizeof *g);
        _Alignas(32) uint8_t sc[64], mn[64];
        unpack_x8_scales(g, sc, mn);
        /* int16 pairs per 32-bit lane r: (sc[r][j], sc[r][j]) and (mn[r][2p], mn[r][2p+1]). */
        __m256i scp[8], mnp[4];
        for (int j = 0; j < 8; j++) {
            const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(sc + 8 * j)));
            scp[j] = _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
        }
        for (int p = 0; p < 4; p++)
            mnp[p] = _mm256_or_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(mn + 16 * p))),
                                     _mm256_slli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                                         (const __m128i *)(mn + 16 * p + 8))), 16));
        __m256i isum[MM_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int q = 0; q < 4; q++) {
            __m256i slo[MM_NT], shi[MM_NT];   /* int16 sums of sub-blocks 2q, 2q+1 */
            for (int c = 0; c < 8; c++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)g->qs[q][c]);
                const __m256i wl = _mm256_and_si256(raw, m4);
                const __m256i wh = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                for (int t = 0; t < nt; t++) {
                    const int8_t *q8 = ((const struct block_q8_K *)(x + t * xs) + i)->qs + 64 * q + 4 * c;
                    int32_t xl, xh;
                    __builtin_memcpy(&xl, q8, 4);
                    __builtin_memcpy(&xh, q8 + 32, 4);
                    const __m256i pl = _mm256_maddubs_epi16(wl, _mm256_set1_epi32(xl));
                    const __m256i ph = _mm256_maddubs_epi16(wh, _mm256_set1_epi32(xh));
                    slo[t] = c ? _mm256_add_epi16(slo[t], pl) : pl;
                    shi[t] = c ? _mm256_add_epi16(shi[t], ph) : ph;
                }
            }
            for (int t = 0; t < nt; t++)
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(slo[t], scp[2 * q]),
                                                                     _mm256_madd_epi16(shi[t], scp[2 * q + 1])));
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
        const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->dmin));
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            /* 32-bit element {0, 1, 4, 5}[p]: (bsums pair 2p, pair 2p+1), each pair summed */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            const __m256i bp = _mm256_hadd_epi16(bs, bs);
            __m256i msum = _mm256_setzero_si256();
            for (int p = 0; p < 4; p++)
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mnp[p], _mm256_permutevar8x32_epi32(
                                                                     bp, _mm256_set1_epi32(p < 2 ? p : p + 2))));
            const __m256 d8 = _mm256_broadcast_ss(&y->d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, d8), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmw, d8), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(yo + (size_t)t * ldy, acc[t]);
}

/* MM_X8_LOOP's TILE and ROW: a row of a group cut by [row0, row1) runs
 * its group's tile (the same result as in the whole group); a GGUF row
 * after the last group runs dot_q4_K. */
FLUID_INLINE void tile_q4_K(const struct matmul_args *a, int r, int t0, int nt)
{
    tile_q4_K_to(a, r, t0, nt, a->y + (size_t)t0 * a->ldy + r, a->ldy);
}

FLUID_INLINE void row_q4_K(const struct matmul_args *a, int r, int t0, int nt, float *out)
{
    if (r < (a->n_rows & ~7)) {
        float tmp[MM_NT * 8];
        tile_q4_K_to(a, r & ~7, t0, nt, tmp, 8);
        for (int t = 0; t < nt; t++)
            out[t] = tmp[t * 8 + (r & 7)];
        return;
    }
    dot_q4_K((const uint8_t *)a->w + (size_t)r * a->w_row_bytes, (const uint8_t *)a->x + (size_t)t0 * a->x_row_bytes,
             a->x_row_bytes, a->n_in, nt, out);
}

#if defined(FLUID_ZMM_VNNI)
/* 16 int32 lanes: bytes a[0..7] (rows 0-7), then b[0..7] (rows 8-15). */
FLUID_INLINE __m512i u8_2x8(const uint8_t *a, const uint8_t *b)
{
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a),
                                                   _mm_loadl_epi64((const __m128i *)b)));
}

/* Rows r..r+15 (two x8 groups side by side, one row per 32-bit lane of a
 * zmm), tokens t0..t0+nt-1 (MM_X16_LOOP): tile_q4_K_to's integers and
 * float operations, so a row's result equals the 8-row tile's.  Per
 * sub-block j, 8 vpdpbusd of nibbles against broadcast activation bytes
 * give its exact int32 sum (|sum| <= 32 * 15 * 128), times sc[j] by
 * vpmulld; the mins as in tile_q4_K_to. */
FLUID_INLINE void tile16_q4_K(const struct matmul_args *a, int r, int t0, int nt)
{
    const size_t xs = a->x_row_bytes;
    const uint8_t *w = (const uint8_t *)a->w + (size_t)r * a->w_row_bytes;
    const struct block_q4_Kx8 *g0 = (const struct block_q4_Kx8 *)w;
    const struct block_q4_Kx8 *g1 = (const struct block_q4_Kx8 *)(w + 8 * a->w_row_bytes);
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * xs;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[MM_NT16];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < a->n_in / QK_K; i++, g0++, g1++) {
        MM_PREFETCH_BLOCK(g0, sizeof *g0);
        MM_PREFETCH_BLOCK(g1, sizeof *g1);
        uint8_t sc0[64], mn0[64], sc1[64], mn1[64];
        unpack_x8_scales(g0, sc0, mn0);
        unpack_x8_scales(g1, sc1, mn1);
        __m512i isum[MM_NT16];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {   /* sub-block j: nibbles (j & 1) of qs[j / 2] */
            const int q = j / 2, sh = 4 * (j & 1);
            __m512i s[MM_NT16];
            for (int c = 0; c < 8; c++) {
                const __m512i raw = load_2x256(g0->qs[q][c], g1->qs[q][c]);
                const __m512i wq = _mm512_and_si512(sh ? _mm512_srli_epi16(raw, 4) : raw, m4);
                for (int t = 0; t < nt; t++) {
                    int32_t xq;
                    __builtin_memcpy(&xq, ((const struct block_q8_K *)(x + t * xs) + i)->qs + 32 * j + 4 * c, 4);
                    s[t] = _mm512_dpbusd_epi32(c ? s[t] : _mm512_setzero_si512(), wq, _mm512_set1_epi32(xq));
                }
            }
            const __m512i scj = u8_2x8(sc0 + 8 * j, sc1 + 8 * j);
            for (int t = 0; t < nt; t++)
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s[t], scj));
        }
        /* int16 pairs per lane: (mn[2p][row], mn[2p+1][row]) */
        __m512i mnp[4];
        for (int p = 0; p < 4; p++) {
            const __m512i e = u8_2x8(mn0 + 16 * p, mn1 + 16 * p);
            const __m512i o = u8_2x8(mn0 + 16 * p + 8, mn1 + 16 * p + 8);
            mnp[p] = _mm512_or_si512(e, _mm512_slli_epi32(o, 16));
        }
        const __m512 dw = cvtph_2x8(g0->d, g1->d);
        const __m512 dmw = cvtph_2x8(g0->dmin, g1->dmin);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
            /* int16 element j: bsums[2j] + bsums[2j+1]; 32-bit element p: sub-blocks 2p, 2p+1 */
            int32_t bp[4];
            _mm_storeu_si128((__m128i *)bp, _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)y->bsums),
                                                           _mm_loadu_si128((const __m128i *)(y->bsums + 8))));
            __m512i msum = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++)
                msum = _mm512_add_epi32(msum, _mm512_madd_epi16(mnp[p], _mm512_set1_epi32(bp[p])));
            const __m512 d8 = _mm512_set1_ps(y->d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, d8), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmw, d8), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(a->y + (size_t)(t0 + t) * a->ldy + r, acc[t]);
}
#endif
#else
/* Row r of an 8-row group or a GGUF row, generic: its blocks as GGUF
 * blocks through block_generic (MM_X8_LOOP's ROW in the scalar build). */
FLUID_INLINE void row_q4_K_generic(const struct matmul_args *a, int r, int t0, int nt, float *out)
{
    const uint8_t *x = (const uint8_t *)a->x + (size_t)t0 * a->x_row_bytes;
    float sums[MM_NT][8] = {{0}}, sumf[MM_NT] = {0};
    for (int i = 0; i < a->n_in / QK_K; i++) {
        struct block_q4_K b;
        row_block(a, r, i, &b);
        block_generic(&b, x, a->x_row_bytes, i, nt, sums, sumf);
    }
    for (int t = 0; t < nt; t++) {
        for (int l = 0; l < 8; l++)
            sumf[t] += sums[t][l];
        out[t] = sumf[t];
    }
}

#define row_q4_K row_q4_K_generic
#define tile_q4_K(A, R, T0, NT) MM_TILE_BY_ROWS(A, row_q4_K_generic, R, T0, NT)
#endif

/* Y[t][r] = W[r] . X[t] for Q4_K W (x8 groups, then GGUF rows) and Q8_K X
 * (ops.h struct matmul_args). */
void mm_q4_K(const struct matmul_args *a)
{
#if defined(FLUID_ZMM_VNNI)
    MM_X16_LOOP(a, tile16_q4_K, tile_q4_K, row_q4_K);
#else
    MM_X8_LOOP(a, tile_q4_K, row_q4_K);
#endif
}
