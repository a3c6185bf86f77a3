/*
 * mm_common.h - pieces shared by the mm_<type>.c matrix-product modules:
 * ISA selection, small SIMD helpers and the row/token loop.
 *
 * ISA paths are chosen at compile time:
 *   FLUID_AVX2    AVX2 + FMA + F16C (x86-64-v3)
 *   FLUID_AVX512  AVX-512 F/BW/VL on top (x86-64-v4): wider float paths
 *   FLUID_VNNI    AVX-512 VNNI (+VL) or AVX-VNNI: vpdpbusd / vpdpwssd
 *   FLUID_ZMM_VNNI  AVX-512 VNNI with AVX512F/BW/VL: 512-bit vpdpbusd
 *                 prefill tiles of 16 rows (two x8 groups side by side:
 *                 Q4_0, Q8_0, Q4_K, Q6_K)
 * Integer results of every path are identical (no saturation can occur
 * for the operand ranges used, see each helper).  Float summation:
 *   Q4_0, Q8_0, Q4_1, Q5_0, Q5_1: SIMD computes 8 rows at once (one per
 *     lane) with the scalar path's float operations in the same order:
 *     bit-identical results.
 *   K-quants (Q2_K..Q6_K), F16, F32: SIMD keeps per-lane accumulators and sums them
 *     horizontally at the end (as ggml's AVX2 code), so results differ
 *     from the scalar path in the last bits.
 * For every path, a token's result does not depend on n_tok or on how
 * tokens are grouped, and a row's result not on [row0, row1).
 */
#ifndef FLUID_MM_COMMON_H
#define FLUID_MM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "ops.h"

#define FLUID_INLINE static inline __attribute__((always_inline))
/* Unroll the next loop fully (its trip count is a constant after
 * inlining).  -O2 left tile16_q4_0's token loop rolled at nt = 8 (-O3
 * unrolled it): mmbench model q4_0 -n 32 -t 2, v4+vnni, 3 rounds
 * alternating: 293-325 -> 378-402 tok/s, as -O3 (377-456).  The Q4_K and
 * Q8_0 tiles gained nothing from it. */
#define MM_UNROLL _Pragma("clang loop unroll(full)")

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define FLUID_AVX2 1
#include <immintrin.h>
#endif
#if defined(FLUID_AVX2) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
#define FLUID_AVX512 1
#endif
#if defined(FLUID_AVX2) && ((defined(__AVX512VNNI__) && defined(__AVX512VL__)) || \
                            defined(__AVXVNNI__))
#define FLUID_VNNI 1
#endif

#if defined(FLUID_AVX512) && defined(__AVX512VNNI__)
#define FLUID_ZMM_VNNI 1
#endif

/* Tokens processed per pass over a weight row (prefill reuses each
 * decoded weight block for this many activation rows). */
#define MM_NT 4
/* The same for the 16-row zmm tiles (MM_X16_LOOP): 32 vector registers
 * hold 8 accumulators beside the 8 unpacked weight vectors. */
#ifndef MM_NT16
#define MM_NT16 8
#endif

/* Software prefetch distance of the decode-bound loops (x8 tiles, K-quant
 * rows), bytes ahead of the block being read (0: none, the hardware
 * prefetcher alone).  A module may set its own before including this
 * file, from the per-type values here; a -DMM_PREFETCH_OVERRIDE=N build
 * (mmbench experiments, the image's `tune` alternatives: Makefile
 * ALT_PF) overrides them all.  The default, 4096, was
 * measured on the Zen 3 host (`make mmbench`, 2 threads, medians: Q4_0
 * decode pass 44.6 -> 36.9 ms, Q4_K 48.9 -> 36.5, Q8_0 63.6 -> 56.9;
 * prefill unchanged: its weights come from L1); on the Zen 5 host 2048
 * to 8192 were alike.  On the Xeon host the best distance depends on the
 * block size (Fluid `bench`, decode tg64, 6 alternating rounds, against
 * 4096): Q4_0 x8 (144-byte blocks) 2048, +7 %; Q8_0 x8 (272) 2048,
 * +14 %; Q4_K x8 (1152) 16384, +24 % (8192 was worse than 4096 for all
 * three).  Prefill moved by 2 % or less.  On the Zen 4 host Q4_K wants
 * the opposite: 0-4 KiB decode a Q4_K block set in 0.59-0.63 M cycles,
 * 16 KiB in 0.95 M (`tune`).  So the image also carries each hot matrix
 * product at 0, 1, 4 and 16 KiB and `tune` picks per CPU (README). */
#define MM_PREFETCH_Q4_0 2048
#define MM_PREFETCH_Q8_0 2048
#define MM_PREFETCH_Q4_K 16384
/* Q6_K x8 (1680-byte blocks) decodes best with none on the Zen 4 host
 * (mmbench model q6_K -n 1 -t 2, 5 rounds alternating, median ms per
 * pass: 28.6 at 0, 33.7 at 1 KiB, 42.5 at 4 KiB; GGUF rows before the
 * x8 layout: 29.4). */
#define MM_PREFETCH_Q6_K 0
#ifdef MM_PREFETCH_OVERRIDE
#undef MM_PREFETCH_BYTES
#define MM_PREFETCH_BYTES MM_PREFETCH_OVERRIDE
#endif
#ifndef MM_PREFETCH_BYTES
#define MM_PREFETCH_BYTES 4096
#endif

/* Ask for the `bytes` (a block's size) at p + MM_PREFETCH_BYTES, one
 * prefetch per cache line they touch.  A prefetch never faults, so
 * reading past the matrix's end is harmless. */
#if MM_PREFETCH_BYTES > 0 && defined(FLUID_AVX2)
#define MM_PREFETCH_BLOCK(p, bytes)                                          \
    do {                                                                     \
        const char *pf_ = (const char *)(p) + MM_PREFETCH_BYTES;             \
        for (size_t o_ = 0; o_ < (bytes); o_ += 64)                          \
            _mm_prefetch(pf_ + o_, _MM_HINT_T0);                             \
    } while (0)
#else
#define MM_PREFETCH_BLOCK(p, bytes) ((void)0)
#endif

/* Q4_K / Q5_K: unpack the 12 bytes of 6-bit scales and mins of the 8
 * sub-blocks (ggml get_scale_min_k4; REFERENCE.md "Block layouts"). */
FLUID_INLINE void unpack_scales_k4(const uint8_t *s, uint8_t *sc, uint8_t *mn)
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 15) | ((s[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

/* The token loop of ggml_vec_dot_q4_K_q8_K_generic and
 * ggml_vec_dot_q5_K_q8_K_generic for one block: q[0..256) its unpacked
 * unsigned weights, sc/mn its 8 scales and mins (unpack_scales_k4), dw/dmw
 * its d and dmin; against block i of activation rows x + t * xs (Q8_K),
 * t < nt, adding into sums[t][0..8) and sumf[t] as ggml keeps them (lane
 * l % 8 of the integer products, then sumf += sums[] at the row's end). */
FLUID_INLINE void kquant_sc_mn_block(const int8_t *q, const uint8_t *sc, const uint8_t *mn, float dw, float dmw,
                                     const uint8_t *x, size_t xs, int i, int nt, float sums[MM_NT][8],
                                     float sumf[MM_NT])
{
    for (int t = 0; t < nt; t++) {
        const struct block_q8_K *y = (const struct block_q8_K *)(x + t * xs) + i;
        int msum = 0;
        for (int j = 0; j < QK_K / 16; j++)
            msum += y->bsums[j] * mn[j / 2];
        int32_t lane[8] = {0};
        for (int k = 0; k < QK_K; k++)
            lane[k % 8] += sc[k / 32] * (int16_t)(y->qs[k] * q[k]);
        const float d = dw * y->d;
        for (int l = 0; l < 8; l++)
            sums[t][l] += d * lane[l];
        const float dmin = dmw * y->d;
        sumf[t] -= dmin * msum;
    }
}

#if defined(FLUID_AVX2)
/* unpack_scales_k4 for SIMD use: the 8 scales in int16 lanes 0..7 and the
 * 8 mins in lanes 8..15, by whole-word masks (the bit moves of ggml's
 * utmp/kmask code in ggml_vec_dot_q4_K_q8_K, derived from the layout). */
FLUID_INLINE __m256i unpack_scales_k4_i16(const uint8_t *s)
{
    uint32_t u[3];
    __builtin_memcpy(u, s, 12);
    const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const uint32_t sc_lo = u[0] & m6;                                   /* sc[0..3] */
    const uint32_t sc_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);     /* sc[4..7] */
    const uint32_t mn_lo = u[1] & m6;                                   /* mn[0..3] */
    const uint32_t mn_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4); /* mn[4..7] */
    return _mm256_cvtepu8_epi16(_mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo));
}

/* Int16 lane k of v (k < 8, a constant) in all 16 lanes. */
#define BCAST_I16(v, k) \
    _mm256_shuffle_epi8(_mm256_permute2x128_si256((v), (v), 0x00), \
                        _mm256_set1_epi16((short)(0x0100 * (2 * (k) + 1) + 2 * (k))))

/* Sum of 8 floats: (hi128 + lo128), then pairs, as ggml's hsum_float_8. */
FLUID_INLINE float hsum_f32x8(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

#if defined(FLUID_ZMM_VNNI)
/* The 16-row tiles' two x8 groups side by side: 32 bytes of group 0 at a
 * (rows 0-7) in the low half, 32 of group 1 at b (rows 8-15) above. */
FLUID_INLINE __m512i load_2x256(const void *a, const void *b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* The same for the groups' 8 f16 scales each: 16 floats, rows 0-15. */
FLUID_INLINE __m512 cvtph_2x8(const void *a, const void *b)
{
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                                   _mm_loadu_si128((const __m128i *)b), 1));
}
#endif

/* Lane i (i < 8) = sum of u[4i+k] * s[4i+k], k < 4; u unsigned, s signed
 * bytes.  maddubs saturates an int16 pair sum, so callers keep
 * u*s pairs below 2^15 (u <= 127 with |s| <= 127, or u <= 63). */
FLUID_INLINE __m256i dot_u8s8_i32(__m256i u, __m256i s)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* dot_u8s8_i32(u1, s1) + dot_u8s8_i32(u2, s2), any unsigned bytes with
 * the same int16 limit per product pair as dot_u8s8_i32. */
FLUID_INLINE __m256i dot2_u8s8_i32(__m256i u1, __m256i s1, __m256i u2, __m256i s2)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u1, s1), u2, s2);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u1, s1), u2, s2);
#else
    return _mm256_add_epi32(dot_u8s8_i32(u1, s1), dot_u8s8_i32(u2, s2));
#endif
}

/* dot2_u8s8_i32 for nibbles u1, u2 <= 15: without VNNI the two maddubs
 * int16 results are added before widening (each pair sum is at most
 * 2 * 15 * 128, so their sum cannot saturate): one vpmaddwd, not two. */
FLUID_INLINE __m256i dot2_u4s8_i32(__m256i u1, __m256i s1, __m256i u2, __m256i s2)
{
#if (defined(__AVX512VNNI__) && defined(__AVX512VL__)) || defined(__AVXVNNI__)
    return dot2_u8s8_i32(u1, s1, u2, s2);
#else
    return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(u1, s1),
                                              _mm256_maddubs_epi16(u2, s2)),
                             _mm256_set1_epi16(1));
#endif
}

/* Signed x signed bytes, lanes as dot_u8s8_i32 (ggml mul_sum_i8_pairs:
 * |a| times b with a's sign).  b must lie in [-127, 127]; a may be -128
 * (its absolute value is then read as the unsigned byte 128). */
FLUID_INLINE __m256i dot_s8s8_i32(__m256i a, __m256i b)
{
    return dot_u8s8_i32(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* Lane k of the result = sum of the 8 int32 lanes of p[k] (k < 8). */
FLUID_INLINE __m256i reduce8_i32(const __m256i *p)
{
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]),
                                         _mm256_hadd_epi32(p[2], p[3]));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]),
                                         _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                            _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* The f16 scale at the start of 8 blocks, one per row (stride bytes
 * apart), widened to float. */
FLUID_INLINE __m256 load8_f16_scales(const uint8_t *p, size_t stride)
{
    const uint16_t *d[8];
    for (int k = 0; k < 8; k++)
        d[k] = (const uint16_t *)(p + k * stride);
    return _mm256_cvtph_ps(_mm_setr_epi16((short)*d[0], (short)*d[1], (short)*d[2],
                                          (short)*d[3], (short)*d[4], (short)*d[5],
                                          (short)*d[6], (short)*d[7]));
}

/* acc + madd(a, b): int16 pairs multiplied and summed into int32 lanes. */
FLUID_INLINE __m256i madd_acc_i16(__m256i acc, __m256i a, __m256i b)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpwssd_epi32(acc, a, b);
#elif defined(__AVXVNNI__)
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* Byte j (j < 32) = 0xff if bit j of the little-endian u32 at p is set,
 * else 0 (the fifth bits of Q5_0 / Q5_1, ggml bytes_from_bits_32). */
FLUID_INLINE __m256i bits32_to_bytes(const uint8_t *p)
{
    const uint32_t b = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24;
    /* byte j holds bits byte j/8; OR-ing all bits but j % 8 leaves 0xff
     * exactly when bit j % 8 is set */
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)b),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
}

/* 16 int16 lanes {s[2v] x8, s[2v+1] x8} from the 16 bytes s (v < 8, a
 * constant after unrolling): the scales of the two sub-blocks of 16 that
 * 32 consecutive weights span (Q2_K, Q3_K), lined up with the lanes of
 * _mm256_maddubs_epi16 over those weights.  s_signed: bytes are int8. */
FLUID_INLINE __m256i scale_pair_i16(__m128i s, int v, int s_signed)
{
    const __m128i pick = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(2 * v + 1)),
                                        (long long)(0x0101010101010101ull * (uint64_t)(2 * v)));
    const __m128i b = _mm_shuffle_epi8(s, pick);
    return s_signed ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b);
}
#endif /* FLUID_AVX2 */

/*
 * The loop shared by every mm_<t>: for each output row r in [row0,row1),
 * for tokens in groups of MM_NT, DOT(wrow, xrow0, x_row_bytes, n_in, nt,
 * out) computes out[t] = dot(W row r, X row xrow0+t) for t < nt.  DOT is an
 * always-inline function, so each call below is specialised for its
 * constant nt.  The arithmetic for one token does not depend on nt.
 */
#define MM_LOOP(A, DOT)                                                      \
    do {                                                                     \
        const struct matmul_args *a_ = (A);                                  \
        const uint8_t *x_ = (const uint8_t *)a_->x;                          \
        const size_t xs_ = a_->x_row_bytes;                                  \
        for (int r_ = a_->row0; r_ < a_->row1; r_++) {                       \
            const void *w_ = (const uint8_t *)a_->w + (size_t)r_ * a_->w_row_bytes; \
            float o_[MM_NT];                                                 \
            int t_ = 0, k_;                                                  \
            for (; t_ + MM_NT <= a_->n_tok; t_ += MM_NT) {                   \
                DOT(w_, x_ + (size_t)t_ * xs_, xs_, a_->n_in, MM_NT, o_);    \
                for (k_ = 0; k_ < MM_NT; k_++)                               \
                    a_->y[(size_t)(t_ + k_) * a_->ldy + r_] = o_[k_];        \
            }                                                                \
            const int rem_ = a_->n_tok - t_;                                 \
            if (rem_ == 0)                                                   \
                continue;                                                    \
            if (rem_ == 3)                                                   \
                DOT(w_, x_ + (size_t)t_ * xs_, xs_, a_->n_in, 3, o_);        \
            else if (rem_ == 2)                                              \
                DOT(w_, x_ + (size_t)t_ * xs_, xs_, a_->n_in, 2, o_);        \
            else                                                             \
                DOT(w_, x_ + (size_t)t_ * xs_, xs_, a_->n_in, 1, o_);        \
            for (k_ = 0; k_ < rem_; k_++)                                    \
                a_->y[(size_t)(t_ + k_) * a_->ldy + r_] = o_[k_];            \
        }                                                                    \
    } while (0)

/*
 * Row-tiled variant (the 32-weight types on AVX2): TILE(a, r, t0, nt) computes rows
 * r..r+7 for tokens t0..t0+nt-1 with one row per vector lane; rows left
 * over at the end go through MM_LOOP with DOT.  Both must give identical
 * results for a row (same float operations in the same order).
 */
#define MM_TILE_LOOP(A, TILE, DOT)                                           \
    do {                                                                     \
        const struct matmul_args *ta_ = (A);                                 \
        int tr_ = ta_->row0;                                                 \
        for (; tr_ + 8 <= ta_->row1; tr_ += 8) {                             \
            int tt_ = 0;                                                     \
            for (; tt_ + MM_NT <= ta_->n_tok; tt_ += MM_NT)                  \
                TILE(ta_, tr_, tt_, MM_NT);                                  \
            const int trem_ = ta_->n_tok - tt_;                              \
            if (trem_ == 3)                                                  \
                TILE(ta_, tr_, tt_, 3);                                      \
            else if (trem_ == 2)                                             \
                TILE(ta_, tr_, tt_, 2);                                      \
            else if (trem_ == 1)                                             \
                TILE(ta_, tr_, tt_, 1);                                      \
        }                                                                    \
        if (tr_ < ta_->row1) {                                               \
            struct matmul_args rest_ = *ta_;                                 \
            rest_.row0 = tr_;                                                \
            MM_LOOP(&rest_, DOT);                                            \
        }                                                                    \
    } while (0)

/*
 * The loop of the x8-layout types (Q4_0, Q8_0; ops.h block_<t>x8): whole
 * 8-row groups inside [row0, row1) go through TILE(a, r, t0, nt), which
 * writes rows r..r+7 of Y for tokens t0..t0+nt-1; every other row (a
 * range cut inside a group, or the GGUF-layout rows after the last group)
 * through ROW(a, r, t0, nt, out), out[t] for t < nt.  Tokens go in groups
 * of MM_NT; each call gets a constant nt, so always-inline TILE and ROW are
 * specialised for it.  TILE and ROW must give identical results for a row.
 */
_Static_assert(MM_NT == 4, "MM_X8_LOOP dispatches nt = 1..4");
#define MM_NT_CALL(F, NT, ...)                                               \
    do {                                                                     \
        if ((NT) == 4)                                                       \
            F(__VA_ARGS__, 4);                                               \
        else if ((NT) == 3)                                                  \
            F(__VA_ARGS__, 3);                                               \
        else if ((NT) == 2)                                                  \
            F(__VA_ARGS__, 2);                                               \
        else                                                                 \
            F(__VA_ARGS__, 1);                                               \
    } while (0)
#define MM_ROW_STORE(A, ROW, R, T0, NT)                                      \
    do {                                                                     \
        float o_[MM_NT];                                                     \
        ROW((A), (R), (T0), (NT), o_);                                       \
        for (int k_ = 0; k_ < (NT); k_++)                                    \
            (A)->y[(size_t)((T0) + k_) * (A)->ldy + (R)] = o_[k_];           \
    } while (0)
#define MM_X8_LOOP(A, TILE, ROW)                                             \
    do {                                                                     \
        const struct matmul_args *xa_ = (A);                                 \
        const int whole_ = xa_->n_rows & ~7;                                 \
        for (int r_ = xa_->row0; r_ < xa_->row1;) {                          \
            const int grp_ = (r_ & 7) == 0 && r_ + 8 <= xa_->row1 && r_ + 8 <= whole_; \
            for (int t_ = 0; t_ < xa_->n_tok; t_ += MM_NT) {                 \
                const int nt_ = xa_->n_tok - t_ < MM_NT ? xa_->n_tok - t_ : MM_NT; \
                if (grp_)                                                    \
                    MM_NT_CALL(TILE, nt_, xa_, r_, t_);                      \
                else                                                         \
                    MM_NT_CALL(MM_ROW_STORE, nt_, xa_, ROW, r_, t_);         \
            }                                                                \
            r_ += grp_ ? 8 : 1;                                              \
        }                                                                    \
    } while (0)
/*
 * MM_X8_LOOP with 16-row tiles: rows r..r+15 (r a multiple of 8, the two
 * whole x8 groups r/8 and r/8+1) go through TILE16(a, r, t0, nt), tokens
 * in groups of MM_NT16; the rows before the first and after the last such
 * pair through MM_X8_LOOP.  TILE16 must give a row the results TILE and
 * ROW give it.  Decode (one token) stays on MM_X8_LOOP: its one weight
 * stream per tile ran at 92 tok/s against the 16-row tile's two at 77
 * (TinyLlama-shaped Q4_0, hosted, 2 threads, Zen 5, `bench -p 128 -n 64`).
 */
_Static_assert(MM_NT16 >= 1 && MM_NT16 <= 8, "MM_NT16_CALL dispatches nt = 1..8");
#define MM_NT16_CALL(F, NT, ...)                                             \
    do {                                                                     \
        switch (NT) {                                                        \
        case 8: F(__VA_ARGS__, 8); break;                                    \
        case 7: F(__VA_ARGS__, 7); break;                                    \
        case 6: F(__VA_ARGS__, 6); break;                                    \
        case 5: F(__VA_ARGS__, 5); break;                                    \
        case 4: F(__VA_ARGS__, 4); break;                                    \
        case 3: F(__VA_ARGS__, 3); break;                                    \
        case 2: F(__VA_ARGS__, 2); break;                                    \
        default: F(__VA_ARGS__, 1); break;                                   \
        }                                                                    \
    } while (0)
#define MM_X16_LOOP(A, TILE16, TILE, ROW)                                    \
    do {                                                                     \
        const struct matmul_args *sa_ = (A);                                 \
        const int whole_ = sa_->n_tok > 1 ? sa_->n_rows & ~7 : 0;            \
        const int lo_ = (sa_->row0 + 7) & ~7;                                \
        const int end_ = sa_->row1 < whole_ ? sa_->row1 : whole_;            \
        const int hi_ = end_ > lo_ ? lo_ + ((end_ - lo_) & ~15) : lo_;       \
        struct matmul_args part_ = *sa_;                                     \
        part_.row1 = lo_ < sa_->row1 ? lo_ : sa_->row1;                      \
        if (part_.row0 < part_.row1)                                         \
            MM_X8_LOOP(&part_, TILE, ROW);                                   \
        for (int r_ = lo_; r_ < hi_; r_ += 16)                               \
            for (int t_ = 0; t_ < sa_->n_tok; t_ += MM_NT16) {               \
                const int nt_ = sa_->n_tok - t_ < MM_NT16 ? sa_->n_tok - t_ : MM_NT16; \
                MM_NT16_CALL(TILE16, nt_, sa_, r_, t_);                      \
            }                                                                \
        part_ = *sa_;                                                        \
        part_.row0 = hi_ > sa_->row0 ? hi_ : sa_->row0;                      \
        if (part_.row0 < part_.row1)                                         \
            MM_X8_LOOP(&part_, TILE, ROW);                                   \
    } while (0)

/* A TILE made of 8 ROW calls, for builds without a SIMD tile. */
#define MM_TILE_BY_ROWS(A, ROW, R, T0, NT)                                   \
    do {                                                                     \
        for (int kr_ = 0; kr_ < 8; kr_++)                                    \
            MM_ROW_STORE(A, ROW, (R) + kr_, T0, NT);                         \
    } while (0)

/* In-place x8 repacking of 8-row groups [G0, G1) (ops.h repack_<t>): copy
 * the group's 8 GGUF rows to TMP, then PUT(group base, tmp, row bytes,
 * blocks per row) writes the x8 blocks over them. */
#define MM_X8_REPACK(W, ROW_BYTES, G0, G1, TMP, PUT)                         \
    do {                                                                     \
        uint8_t *w_ = (uint8_t *)(W);                                        \
        for (int g_ = (G0); g_ < (G1); g_++) {                               \
            uint8_t *grp_ = w_ + (size_t)g_ * 8 * (ROW_BYTES);               \
            __builtin_memcpy((TMP), grp_, 8 * (ROW_BYTES));                  \
            PUT(grp_, (const uint8_t *)(TMP), (ROW_BYTES));                  \
        }                                                                    \
    } while (0)

#endif
