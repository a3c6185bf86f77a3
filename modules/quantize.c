/*
 * quantize.c - activation conversion to the vec_dot types (module
 * "quantize"): float rows -> Q8_0, Q8_1, Q8_K, F16 or F32 rows.
 * Rounding follows llama.cpp's reference quantizers exactly (see each).
 */
#include "half.h"
#include "mm_common.h"

/* roundf(): nearest integer, halfway cases away from zero, |v| < 2^31
 * (the quantizers' values are within +-127.5 for finite blocks).  NaN and
 * larger values, which come only from blocks holding inf or NaN (whose
 * amax then misses elements) or from an amax so small that 1/d overflows,
 * give 0: what ggml's (int8_t)roundf() gives for them on x86 (cvttss2si
 * returns 0x80000000, of which int8_t keeps 0), where C leaves the
 * conversion undefined. */
static inline int round_away(float v)
{
    const float a = __builtin_fabsf(v);
    if (!(a < 2147483648.0f))       /* also NaN */
        return 0;
    int q = (int)a;
    if (a - (float)q >= 0.5f)
        q++;
    return v < 0 ? -q : q;
}

/* ggml nearest_int(): round to nearest even via the 1.5*2^23 trick
 * (|v| < 2^22). */
static inline int nearest_int(float v)
{
    const float f = v + 12582912.f;
    return (int)(fluid_f32_bits(f) & 0x007fffffu) - 0x00400000;
}

/* Largest |x[j]| of one block of QK8_0 floats. */
static float block_amax(const float *x)
{
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) {
        const float v = __builtin_fabsf(x[j]);
        amax = amax > v ? amax : v;
    }
    return amax;
}

/* Q8_0 (ggml quantize_row_q8_0_ref): per 32, d = amax/127, id = 1/d,
 * q = roundf(x * id); d stored as f16.  |q| <= 127.
 * (ggml's x86 SIMD version uses id = 127/amax and round-to-even instead;
 * results can differ in the last unit on rare ties.) */
void quantize_q8_0(const float *x, void *y, int n)
{
    struct block_q8_0 *b = y;
    for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = block_amax(x);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            b[i].qs[j] = (int8_t)round_away(x[j] * id);
    }
}

/* Q8_0S (ops.h block_q8_0s): the blocks quantize_q8_0 makes, with d
 * widened to float after its f16 rounding (the value the dot products
 * use) and msum8 = -8 * the sum of the 32 q. */
/* One Q8_0S block: quantize_q8_0's, d widened, -8 * the sum of q. */
static void q8_0s_block(const float *x, struct block_q8_0s *b)
{
    struct block_q8_0 q;
    quantize_q8_0(x, &q, QK8_0);
    int sum = 0;
    for (int j = 0; j < QK8_0; j++)
        sum += b->qs[j] = q.qs[j];
    b->d = fp16_to_fp32(q.d);
    b->msum8 = -8 * sum;
}

#if defined(FLUID_AVX2)
/* quantize_q8_0s on 8 floats at a time, bit for bit the scalar code:
 * the same amax, d, id and x * id; round_away as trunc(|v|) + (frac >=
 * 0.5) with v's sign (|v| - trunc(|v|) is exact); NaN and |v| >= 2^31 give
 * 0 as round_away does.  A block holding a NaN goes to the scalar code,
 * whose amax then depends on the element order.  The prefill profile had
 * the scalar loop at 2.6 cycles per float, 4.5 % of prefill
 * (TinyLlama-shaped Q4_0, Zen 5). */
void quantize_q8_0s(const float *x, void *y, int n)
{
    struct block_q8_0s *b = y;
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), lim = _mm256_set1_ps(2147483648.0f);
    for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4], m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
        }
        if (_mm256_movemask_ps(nan)) {
            q8_0s_block(x, &b[i]);
            continue;
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i qi[4], sum = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            const __m256 p = _mm256_mul_ps(v[k], vid);
            const __m256 a = _mm256_andnot_ps(sign, p);
            const __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 up = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(a, t), half, _CMP_GE_OQ),
                                            _mm256_set1_ps(1.0f));
            const __m256 r = _mm256_and_ps(_mm256_or_ps(_mm256_add_ps(t, up), _mm256_and_ps(sign, p)),
                                           _mm256_cmp_ps(a, lim, _CMP_LT_OQ));   /* NaN, >= 2^31: 0 */
            qi[k] = _mm256_cvttps_epi32(r);
            sum = _mm256_add_epi32(sum, qi[k]);
        }
        /* int32 -> int8: |q| <= 127 (x * id <= 127 up to rounding; a
         * denormal d small enough to lose bits makes id = 1/d overflow to
         * inf, so 0), and packs work per 128-bit lane, so the dword
         * order is restored by one permute. */
        const __m256i w01 = _mm256_packs_epi32(qi[0], qi[1]), w23 = _mm256_packs_epi32(qi[2], qi[3]);
        const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23),
                                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)b[i].qs, q8);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        b[i].d = fp16_to_fp32(fp32_to_fp16(d));
        b[i].msum8 = -8 * _mm_cvtsi128_si32(s4);
    }
}
#else
void quantize_q8_0s(const float *x, void *y, int n)
{
    struct block_q8_0s *b = y;
    for (int i = 0; i < n / QK8_0; i++, x += QK8_0)
        q8_0s_block(x, &b[i]);
}
#endif

/* Q8_0 as ggml's x86 SIMD quantize_row_q8_0 (AVX2/AVX-512 builds of
 * llama.cpp, also used with its repacked Q4_0 kernels): d = amax/127 as
 * above, but id = 127/amax and q rounded half to even. */
void quantize_q8_0_x86(const float *x, void *y, int n)
{
    struct block_q8_0 *b = y;
    for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = block_amax(x);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = fp32_to_fp16(amax / 127.0f);
        for (int j = 0; j < QK8_0; j++)
            b[i].qs[j] = (int8_t)nearest_int(x[j] * id);
    }
}

/* Q8_K (ggml quantize_row_q8_K_ref): per 256, max = the value of largest
 * |x| (first one on ties), iscale = -127/max, q = min(127,
 * nearest_int(iscale * x)), d = 1/iscale (float), bsums = sums of 16.
 * (llama.cpp used -128/max before the IQ2_XXS change; it is -127 now, so
 * q lies in [-127, 127].)  An all-zero block gives d = 0, q = 0. */
#if !defined(FLUID_AVX2)
/* One Q8_K block of quantize_q8_K (the scalar code). */
static void q8_K_block(const float *x, struct block_q8_K *b)
{
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < QK_K; j++) {
        const float ax = __builtin_fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax == 0.0f) {
        b->d = 0.0f;
        for (int j = 0; j < QK_K; j++)
            b->qs[j] = 0;
        for (int j = 0; j < QK_K / 16; j++)
            b->bsums[j] = 0;
        return;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < QK_K; j++) {
        const int v = nearest_int(iscale * x[j]);
        b->qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < QK_K / 16; j++) {
        int sum = 0;
        for (int k = 0; k < 16; k++)
            sum += b->qs[16 * j + k];
        b->bsums[j] = (int16_t)sum;
    }
    b->d = 1.0f / iscale;
}
#else
/* q8_K_block in AVX2, bit for bit: amax lane-wise (max_ps(|x|, amax) skips a
 * NaN as `ax > amax` does), max = the first x whose |x| is amax (where the
 * scalar loop last updated it), nearest_int by the same 1.5 * 2^23 add
 * and bit mask, min 127, then int8 as the cast wraps it (an iscale that
 * overflows, from denormal blocks, gives values far outside [-128, 127]);
 * bsums from those int8 values. */
static void q8_K_block_avx2(const float *x, struct block_q8_K *b)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < QK_K / 8; k++)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    if (amax == 0.0f) {
        __builtin_memset(b, 0, sizeof *b);
        return;
    }
    float max = amax;
    const __m256 va = _mm256_set1_ps(amax);
    for (int k = 0; k < QK_K / 8; k++) {
        const int hit = _mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), va, _CMP_EQ_OQ));
        if (hit) {
            max = x[8 * k + __builtin_ctz((unsigned)hit)];
            break;
        }
    }
    const float iscale = -127.0f / max;
    const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000),
                  top = _mm256_set1_epi32(127);
    __m256i v[QK_K / 8];
    for (int k = 0; k < QK_K / 8; k++) {
        const __m256 f = _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + 8 * k)), magic);
        const __m256i q = _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(f), mant), bias), top);
        v[k] = _mm256_srai_epi32(_mm256_slli_epi32(q, 24), 24);   /* (int8_t)q */
    }
    for (int k = 0; k < QK_K / 32; k++) {   /* packs per 128-bit lane; one permute restores the order */
        const __m256i w01 = _mm256_packs_epi32(v[4 * k], v[4 * k + 1]);
        const __m256i w23 = _mm256_packs_epi32(v[4 * k + 2], v[4 * k + 3]);
        _mm256_storeu_si256((__m256i *)(b->qs + 32 * k),
                            _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23),
                                                        _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
    for (int g = 0; g < QK_K / 16; g += 4) {   /* bsums[g..g+3]: groups of 16 = vector pairs */
        __m256i s[4];
        for (int r = 0; r < 4; r++)
            s[r] = _mm256_add_epi32(v[2 * (g + r)], v[2 * (g + r) + 1]);
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storel_epi64((__m128i *)(b->bsums + g), _mm_packs_epi32(t, t));
    }
    b->d = 1.0f / iscale;
}
#endif

void quantize_q8_K(const float *x, void *y, int n)
{
    struct block_q8_K *b = y;
    for (int i = 0; i < n / QK_K; i++, x += QK_K)
#if defined(FLUID_AVX2)
        q8_K_block_avx2(x, &b[i]);
#else
        q8_K_block(x, &b[i]);
#endif
}

/* Q8_1 as ggml's x86 SIMD quantize_row_q8_1 (AVX/AVX2 builds of llama.cpp,
 * the activations of its Q4_1 / Q5_1 kernels): per 32, d = amax/127,
 * id = 127/amax, q = x * id rounded half to even (|q| <= 127), s = d *
 * sum(q) in float; d and s stored as f16.  (quantize_row_q8_1_ref uses
 * id = 1/d and roundf instead, as quantize_q8_0 does.)  An all-zero block
 * gives d = s = 0, q = 0. */
void quantize_q8_1(const float *x, void *y, int n)
{
    struct block_q8_1 *b = y;
    for (int i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float amax = block_amax(x);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            const int q = nearest_int(x[j] * id);
            b[i].qs[j] = (int8_t)q;
            sum += q;
        }
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16(d * (float)sum);
    }
}

/* F16 (ggml_fp32_to_fp16_row): round to nearest even, n any length. */
void convert_f16(const float *x, void *y, int n)
{
    ggml_half *h = y;
    int i = 0;
#if defined(FLUID_AVX2)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++)
        h[i] = fp32_to_fp16(x[i]);
}

/* F32: plain copy, n floats. */
void copy_f32(const float *x, void *y, int n)
{
    float *f = y;
    for (int i = 0; i < n; i++)
        f[i] = x[i];
}
