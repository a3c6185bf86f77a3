/* crc32_fast.c - CRC-32 (IEEE, reflected 0xEDB88320) for large buffers
 * (see crc32_fast.h): carry-less-multiply folding, 256-bit where the CPU
 * has VPCLMULQDQ and AVX2 state is on, 128-bit where it has PCLMULQDQ,
 * slicing-by-8 otherwise and for the last bytes. */
#include <stdatomic.h>
#include <string.h>
#include <immintrin.h>
#include "arch/x86/insn.h"
#include "lib/crc32_fast.h"

static uint32_t T[8][256];
static _Atomic int table_state;   /* 0 not built, 1 being built, 2 ready */
enum { CRC_SLICE8, CRC_CLMUL, CRC_VCLMUL };
static int have_path;             /* the best path the CPU runs (set with the tables) */
static _Atomic int path_limit = CRC_VCLMUL;

void crc32_fast_limit(int level)
{
    atomic_store(&path_limit, level);
}

/* The best folding this CPU and its enabled register state allow. */
static int detect_path(void)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    const uint32_t max = r[0];
    cpuid(1, 0, r);
    if (!((r[2] >> 1) & 1 && (r[2] >> 19) & 1))   /* PCLMULQDQ, SSE4.1 (pextrd) */
        return CRC_SLICE8;
    const int osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
    if (max < 7 || !osxsave || !avx)
        return CRC_CLMUL;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    cpuid(7, 0, r);
    const int avx2 = (r[1] >> 5) & 1, vpclmul = (r[2] >> 10) & 1;
    return (lo & 6) == 6 && avx2 && vpclmul ? CRC_VCLMUL : CRC_CLMUL;   /* XCR0: SSE and AVX state */
}

static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        T[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            T[s][i] = (T[s - 1][i] >> 8) ^ T[0][T[s - 1][i] & 0xFF];
}

/* Build the tables exactly once, even when every core calls at once: the
 * first one builds, the others wait for it. */
static void tables_ready(void)
{
    if (atomic_load_explicit(&table_state, memory_order_acquire) == 2)
        return;
    int expect = 0;
    if (atomic_compare_exchange_strong(&table_state, &expect, 1)) {
        build_table();
        have_path = detect_path();
        atomic_store_explicit(&table_state, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&table_state, memory_order_acquire) != 2)
        cpu_relax();
}

/* Slicing-by-8 (Intel, "A Systematic Approach to Building High
 * Performance Software-Based CRC Generators", 2006) on the inverted state. */
static uint32_t crc_slice8(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = T[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        n--;
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = T[7][w & 0xFF] ^ T[6][(w >> 8) & 0xFF] ^ T[5][(w >> 16) & 0xFF] ^
              T[4][(w >> 24) & 0xFF] ^ T[3][(w >> 32) & 0xFF] ^ T[2][(w >> 40) & 0xFF] ^
              T[1][(w >> 48) & 0xFF] ^ T[0][w >> 56];
    }
    while (n--)
        crc = T[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

/*
 * Folding with carry-less multiplication (Gopal et al., Intel, "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ Instruction", 2009),
 * bit-reflected form: four 128-bit accumulators fold 64 bytes a step by
 * x^(512+-64) mod P, then fold into one (x^(128+-64) mod P), reduce 128 ->
 * 64 -> 32 bits, and finish with Barrett reduction (P' and u' = x^64 / P).
 * The constants are those powers of x modulo P(x) = 0x104C11DB7, bit-
 * reflected and shifted left by one, as the paper derives them (the host
 * test checks every length against zlib).  n >= 64; returns the state after
 * the first n & ~15 bytes; *done gets that count.
 */
#define K1K2 _mm_set_epi64x(0x1c6e41596ll, 0x154442bd4ll)   /* fold by 512 bits: x^480, x^544 */
#define K3K4 _mm_set_epi64x(0x0ccaa009ell, 0x1751997d0ll)   /* fold by 128 bits: x^96, x^160 */
#define FOLD(x, k, next)                                                                        \
    x = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next)

/* The common end of both foldings: x0 holds the folded state of the bytes
 * before p; fold in whole 16-byte blocks of the n left, then reduce 128 ->
 * 64 -> 32 bits and finish with Barrett reduction (P' and u' = x^64 / P).
 * *done gets the bytes consumed since start. */
__attribute__((target("pclmul,sse4.1"))) static inline uint32_t crc_clmul_tail(__m128i x0, const uint8_t *p, size_t n,
                                                                              const uint8_t *start, size_t *done)
{
    const __m128i k3k4 = K3K4;
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124ll);                 /* 64 -> 32 bits: x^64 */
    const __m128i poly = _mm_set_epi64x(0x1f7011641ll, 0x1db710641ll);  /* Barrett: u', P' */
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    for (; n >= 16; p += 16, n -= 16)
        FOLD(x0, k3k4, _mm_loadu_si128((const __m128i *)p));
    /* 128 -> 64 bits (appending 32 zero bits), then 64 -> 32. */
    x0 = _mm_xor_si128(_mm_srli_si128(x0, 8), _mm_clmulepi64_si128(x0, k3k4, 0x10));
    x0 = _mm_xor_si128(_mm_srli_si128(x0, 4), _mm_clmulepi64_si128(_mm_and_si128(x0, mask32), k5, 0x00));
    /* Barrett: the remainder of the 64-bit value modulo P. */
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x0, mask32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
    *done = (size_t)(p - start);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x0, t), 1);
}

/*
 * Folding with carry-less multiplication (Gopal et al., Intel, "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ Instruction", 2009),
 * bit-reflected form: four 128-bit accumulators fold 64 bytes a step by
 * x^(512+-32) mod P, then fold into one (x^(128+-32) mod P) and go on in
 * crc_clmul_tail.  The constants are those powers of x modulo
 * P(x) = 0x104C11DB7, bit-reflected and shifted left by one, as the paper
 * derives them (the host test checks every length against zlib).  n >= 64;
 * returns the state after the first n & ~15 bytes; *done gets that count.
 */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul(uint32_t crc, const uint8_t *p, size_t n,
                                                                  size_t *done)
{
    const __m128i k1k2 = K1K2, k3k4 = K3K4;
    const uint8_t *start = p;
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)crc));
    p += 64, n -= 64;
    for (; n >= 64; p += 64, n -= 64) {
        FOLD(x0, k1k2, _mm_loadu_si128((const __m128i *)p));
        FOLD(x1, k1k2, _mm_loadu_si128((const __m128i *)(p + 16)));
        FOLD(x2, k1k2, _mm_loadu_si128((const __m128i *)(p + 32)));
        FOLD(x3, k1k2, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    FOLD(x0, k3k4, x1);
    FOLD(x0, k3k4, x2);
    FOLD(x0, k3k4, x3);
    return crc_clmul_tail(x0, p, n, start, done);
}

/*
 * The same folding 256 bits at a time (VPCLMULQDQ): four ymm registers
 * carry eight 128-bit accumulators over 128 bytes a step, each folded by
 * x^(1024+-32) mod P (its own 16 bytes, 128 bytes on), then the eight are
 * folded into one in byte order with the 128-bit constants.  Twice the
 * bytes per multiply of crc_clmul, where PCLMULQDQ throughput is the limit
 * (one per 2 cycles on Zen 3).  n >= 128.
 */
__attribute__((target("vpclmulqdq,avx2,pclmul,sse4.1"))) static uint32_t crc_vclmul(uint32_t crc, const uint8_t *p,
                                                                                      size_t n, size_t *done)
{
    const __m256i k = _mm256_set_epi64x(0x14a7fe880ll, 0x1e88ef372ll, 0x14a7fe880ll, 0x1e88ef372ll);   /* x^992, x^1056 */
    const __m128i k3k4 = K3K4;
    const uint8_t *start = p;
    __m256i y[4];
    for (int j = 0; j < 4; j++)
        y[j] = _mm256_loadu_si256((const __m256i *)(p + 32 * j));
    y[0] = _mm256_xor_si256(y[0], _mm256_zextsi128_si256(_mm_cvtsi32_si128((int)crc)));
    p += 128, n -= 128;
    for (; n >= 128; p += 128, n -= 128)
        for (int j = 0; j < 4; j++)
            y[j] = _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(y[j], k, 0x00),
                                                     _mm256_clmulepi64_epi128(y[j], k, 0x11)),
                                    _mm256_loadu_si256((const __m256i *)(p + 32 * j)));
    __m128i x0 = _mm256_castsi256_si128(y[0]);
    FOLD(x0, k3k4, _mm256_extracti128_si256(y[0], 1));
    for (int j = 1; j < 4; j++) {
        FOLD(x0, k3k4, _mm256_castsi256_si128(y[j]));
        FOLD(x0, k3k4, _mm256_extracti128_si256(y[j], 1));
    }
    return crc_clmul_tail(x0, p, n, start, done);
}
#undef FOLD

uint32_t crc32_fast(uint32_t crc, const void *data, size_t n)
{
    tables_ready();
    const uint8_t *p = data;
    crc = ~crc;
    const int path = have_path < atomic_load_explicit(&path_limit, memory_order_relaxed)
                         ? have_path : atomic_load_explicit(&path_limit, memory_order_relaxed);
    if (n >= 256 && path >= CRC_CLMUL) {
        size_t done;
        crc = path == CRC_VCLMUL ? crc_vclmul(crc, p, n, &done) : crc_clmul(crc, p, n, &done);
        p += done, n -= done;
    }
    return ~crc_slice8(crc, p, n);
}
