/*
 * mmbench.c - native micro-benchmark of the matrix-product modules on
 * TinyLlama's shapes, for issue 9's roofline figures (`make mmbench`).
 *
 *   mmbench bw    [-t THREADS]                      read bandwidth, GB/s
 *   mmbench peak  [-t THREADS]                      int8 multiply-add peak:
 *                 independent 512-bit vpdpbusd (64 byte products each)
 *                 with AVX-512 VNNI, else vpmaddubsw (32), GOP/s at 2 per
 *                 product, best of 5 (roofline.py's "% of peak")
 *   mmbench mm    TYPE N_IN N_OUT N_TOK [-t T] [-r REPS]
 *   mmbench model TYPE [-n N_TOK] [-t T] [-r REPS]  every matrix product of
 *                 one forward pass of TinyLlama-1.1B (22 layers: q, k, v, o,
 *                 gate, up, down; the output matrix is Q6_K as in llama.cpp's
 *                 files), each layer's weights in their own memory, so
 *                 decode streams 0.6 GB as the real model does
 *
 * TYPE: q4_0 q8_0 q4_K q5_K q6_K f16.  The modules are compiled into this
 * program with the flags the Makefile gives it (default -O2
 * -march=x86-64-v3, the image's v3 build).  Rows are split over T threads
 * in blocks of 16 as the engine does (kernel/core/llm/engine.c), one
 * pthread per CPU, spinning between passes.  Each figure is the minimum
 * and median over REPS passes (a shared, noisy machine: trust the minimum
 * for the kernel, the median for what a user sees).  Weights are random
 * blocks with small valid scales; results are not checked here (tests/
 * host/test_ops.py does that).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

#include "ops.h"

const struct fluid_services *fluid_svc;

void mm_q4_0(const struct matmul_args *);
void mm_q8_0(const struct matmul_args *);
void mm_q4_K(const struct matmul_args *);
void mm_q5_K(const struct matmul_args *);
void mm_q6_K(const struct matmul_args *);
void mm_f16(const struct matmul_args *);
void repack_q4_0(void *, size_t, int, int, void *);
void repack_q8_0(void *, size_t, int, int, void *);
void repack_q4_K(void *, size_t, int, int, void *);
void repack_q6_K(void *, size_t, int, int, void *);
void quantize_q8_0s(const float *, void *, int);
void quantize_q8_K(const float *, void *, int);
void convert_f16(const float *, void *, int);

struct wtype {
    const char *name;
    int block, bytes;                 /* weights and bytes per block */
    int act_block, act_bytes;         /* activation (vec_dot type) block */
    void (*mm)(const struct matmul_args *);
    void (*quant)(const float *, void *, int);
    int scale_off;                    /* offset of an f16 scale to tame, -1 none */
    void (*repack)(void *, size_t, int, int, void *);   /* x8 layout, or NULL */
};

static const struct wtype TYPES[] = {
    { "q4_0", 32, 18, 32, 40, mm_q4_0, quantize_q8_0s, 0, repack_q4_0 },
    { "q8_0", 32, 34, 32, 40, mm_q8_0, quantize_q8_0s, 0, repack_q8_0 },
    { "q4_K", 256, 144, 256, 292, mm_q4_K, quantize_q8_K, 0, repack_q4_K },
    { "q5_K", 256, 176, 256, 292, mm_q5_K, quantize_q8_K, 0 },
    { "q6_K", 256, 210, 256, 292, mm_q6_K, quantize_q8_K, 208, repack_q6_K },
    { "f16", 1, 2, 1, 2, mm_f16, convert_f16, -1 },
};

static const struct wtype *find_type(const char *name)
{
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(TYPES[i].name, name))
            return &TYPES[i];
    fprintf(stderr, "mmbench: unknown type '%s'\n", name);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void *alloc_rand(size_t bytes)
{
    uint8_t *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "mmbench: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t r = next_rand();
        memcpy(p + i, &r, 8);
    }
    return p;
}

/* Random weights with every block's f16 scale(s) set to 2^-10 so sums
 * stay finite (the kernels' speed does not depend on the values). */
static void *make_weights(const struct wtype *t, size_t rows, int n_in, size_t *row_bytes)
{
    *row_bytes = (size_t)n_in / t->block * t->bytes;
    uint8_t *w = alloc_rand(rows * *row_bytes);
    if (t->scale_off >= 0)
        for (size_t b = 0; b < rows * *row_bytes / t->bytes; b++) {
            uint16_t h = 0x1400;
            memcpy(w + b * t->bytes + t->scale_off, &h, 2);
            if (t->block == 256 && t->scale_off == 0)   /* Q4_K/Q5_K dmin */
                memcpy(w + b * t->bytes + 2, &h, 2);
        }
    else
        for (size_t i = 0; i < rows * *row_bytes / 2; i++)
            ((uint16_t *)w)[i] = (uint16_t)(0x3000 | (next_rand() & 0x83ff));
    return w;
}

/* ---- threads: a fixed pool, one job at a time, rows split statically ---- */

struct job {
    const struct matmul_args *a;
    const struct wtype *t;
};

static int n_threads = 1;
static pthread_t tids[64];
static _Atomic unsigned gen, done_count;
static struct job cur;

static void run_part(const struct job *j, int k)
{
    const int grains = (j->a->row1 + 15) / 16;
    struct matmul_args a = *j->a;
    a.row0 = grains * k / n_threads * 16;
    a.row1 = grains * (k + 1) / n_threads * 16;
    if (a.row1 > j->a->row1)
        a.row1 = j->a->row1;
    if (a.row0 < a.row1)
        j->t->mm(&a);
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *worker(void *arg)
{
    const int k = (int)(intptr_t)arg;
    unsigned seen = 0;
    pin(k);
    for (;;) {
        unsigned g;
        while ((g = atomic_load_explicit(&gen, memory_order_acquire)) == seen)
            _mm_pause();
        seen = g;
        run_part(&cur, k);
        atomic_fetch_add_explicit(&done_count, 1, memory_order_release);
    }
    return NULL;
}

static void start_threads(void)
{
    pin(0);
    for (int k = 1; k < n_threads; k++)
        pthread_create(&tids[k], NULL, worker, (void *)(intptr_t)k);
}

static void run_job(const struct matmul_args *a, const struct wtype *t)
{
    cur = (struct job){ a, t };
    atomic_store_explicit(&done_count, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&gen, 1, memory_order_release);
    run_part(&cur, 0);
    while (atomic_load_explicit(&done_count, memory_order_acquire) != (unsigned)(n_threads - 1))
        _mm_pause();
}

/* ---- figures ---- */

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void min_med(double *s, int n, double *mn, double *md)
{
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    *mn = s[0];
    *md = s[n / 2];
}

/* One matrix: n_out x n_in weights of type t, n_tok activation rows. */
struct mat {
    const struct wtype *t;
    void *w;
    size_t row_bytes;
    int n_in, n_out;
};

static void mat_init(struct mat *m, const struct wtype *t, int n_in, int n_out)
{
    m->t = t, m->n_in = n_in, m->n_out = n_out;
    m->w = make_weights(t, (size_t)n_out, n_in, &m->row_bytes);
    if (t->repack) {
        void *tmp = malloc(8 * m->row_bytes);
        t->repack(m->w, m->row_bytes, 0, n_out / 8, tmp);
        free(tmp);
    }
}

/* Quantised activations for n_tok rows of width n_in, in t's act type. */
static void *make_act(const struct wtype *t, int n_in, int n_tok, size_t *xs)
{
    float *f = malloc((size_t)n_in * sizeof *f);
    *xs = (size_t)n_in / t->act_block * t->act_bytes;
    uint8_t *x = aligned_alloc(64, (*xs * n_tok + 63) & ~(size_t)63);
    for (int r = 0; r < n_tok; r++) {
        for (int i = 0; i < n_in; i++)
            f[i] = (float)((int)(next_rand() % 2001) - 1000) / 1000.0f;
        t->quant(f, x + (size_t)r * *xs, n_in);
    }
    free(f);
    return x;
}

static void mat_run(const struct mat *m, const void *x, size_t xs, float *y, int n_tok)
{
    struct matmul_args a = {
        .w = m->w, .w_row_bytes = m->row_bytes, .x = x, .x_row_bytes = xs, .y = y,
        .ldy = (size_t)m->n_out, .n_in = m->n_in, .row0 = 0, .row1 = m->n_out, .n_tok = n_tok,
        .n_rows = m->n_out,
    };
    run_job(&a, m->t);
}

static int arg_int(int argc, char **argv, const char *flag, int def)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag))
            return atoi(argv[i + 1]);
    return def;
}

/* Best (*mn) and median (*md) seconds of 5 runs of job a of type t. */
static void time5(const struct matmul_args *a, const struct wtype *t, double *mn, double *md)
{
    double s[5];
    for (int r = 0; r < 5; r++) {
        const double t0 = now_s();
        run_job(a, t);
        s[r] = now_s() - t0;
    }
    min_med(s, 5, mn, md);
}

/* AVX2 loads over 1 GiB split across the threads, best of 5. */
static void *bw_buf;
static size_t bw_bytes;
static _Atomic uint64_t sink;     /* keeps bw and peak results alive */

static void bw_part(const struct matmul_args *a)
{
    const __m256i *p = (const __m256i *)((uint8_t *)bw_buf + (size_t)a->row0 * 4096);
    const size_t n = (size_t)(a->row1 - a->row0) * 4096 / 32;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        s0 = _mm256_xor_si256(s0, _mm256_load_si256(p + i));
        s1 = _mm256_xor_si256(s1, _mm256_load_si256(p + i + 1));
        s2 = _mm256_xor_si256(s2, _mm256_load_si256(p + i + 2));
        s3 = _mm256_xor_si256(s3, _mm256_load_si256(p + i + 3));
    }
    s0 = _mm256_xor_si256(_mm256_xor_si256(s0, s1), _mm256_xor_si256(s2, s3));
    atomic_fetch_xor(&sink, (uint64_t)_mm256_extract_epi64(s0, 0));
}

static int cmd_bw(void)
{
    bw_bytes = (size_t)1 << 30;
    bw_buf = alloc_rand(bw_bytes);
    static const struct wtype bwt = { "bw", 1, 1, 1, 1, bw_part, NULL, -1 };
    struct matmul_args a = { .row0 = 0, .row1 = (int)(bw_bytes / 4096) };
    double mn, md;
    time5(&a, &bwt, &mn, &md);
    printf("read bandwidth: %.1f GB/s best, %.1f GB/s median (%d threads, 1 GiB, AVX2 loads)\n",
           bw_bytes / mn / 1e9, bw_bytes / md / 1e9, n_threads);
    return 0;
}

/* 12 independent multiply-add chains, 1e4 steps per row of the job: the
 * throughput of the widest int8 multiply-add this CPU has, at whatever
 * clock the cores really run (boost included; the TSC rate is not it).
 * Chosen at run time, whatever this program was compiled for: 512-bit
 * vpdpbusd (64 products) with AVX-512 VNNI, else 256-bit vpmaddubsw (32
 * products, what the AVX2 kernels are built on). */
#define PEAK_CHAINS 12
#define PEAK_STEPS 10000

static void peak_part(const struct matmul_args *a)
{
    __m256i c[PEAK_CHAINS];
    const __m256i b = _mm256_set1_epi8(1);
    for (int k = 0; k < PEAK_CHAINS; k++)
        c[k] = _mm256_set1_epi8((char)k);
    for (long n = (long)(a->row1 - a->row0) * PEAK_STEPS; n > 0; n--)
        for (int k = 0; k < PEAK_CHAINS; k++)
            __asm__ volatile("vpmaddubsw %1, %0, %0" : "+x"(c[k]) : "x"(b));
    for (int k = 1; k < PEAK_CHAINS; k++)
        c[0] = _mm256_xor_si256(c[0], c[k]);
    atomic_fetch_xor(&sink, (uint64_t)_mm256_extract_epi64(c[0], 0));
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void peak_part_zmm(const struct matmul_args *a)
{
    __m512i c[PEAK_CHAINS];
    const __m512i b = _mm512_set1_epi8(1);
    for (int k = 0; k < PEAK_CHAINS; k++)
        c[k] = _mm512_set1_epi8((char)k);
    for (long n = (long)(a->row1 - a->row0) * PEAK_STEPS; n > 0; n--)
        for (int k = 0; k < PEAK_CHAINS; k++)
            __asm__ volatile("vpdpbusd %1, %1, %0" : "+v"(c[k]) : "v"(b));
    for (int k = 1; k < PEAK_CHAINS; k++)
        c[0] = _mm512_xor_si512(c[0], c[k]);
    atomic_fetch_xor(&sink, (uint64_t)_mm512_reduce_add_epi64(c[0]));
}

static int cmd_peak(void)
{
    __builtin_cpu_init();
    const int zmm = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    static const struct wtype pt = { "peak", 1, 1, 1, 1, peak_part, NULL, -1 };
    static const struct wtype pz = { "peak", 1, 1, 1, 1, peak_part_zmm, NULL, -1 };
    struct matmul_args a = { .row0 = 0, .row1 = 16 * 64 * n_threads };
    const double ops = (double)a.row1 * PEAK_STEPS * PEAK_CHAINS * (zmm ? 64 : 32) * 2;
    double mn, md;
    time5(&a, zmm ? &pz : &pt, &mn, &md);
    printf("int8 peak: %.1f GOP/s best, %.1f GOP/s median (%d threads, %s, 2 ops per product)\n",
           ops / mn / 1e9, ops / md / 1e9, n_threads, zmm ? "512-bit vpdpbusd" : "256-bit vpmaddubsw");
    return 0;
}

static int cmd_mm(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mmbench mm TYPE N_IN N_OUT N_TOK [-t T] [-r REPS]\n");
        return 2;
    }
    const struct wtype *t = find_type(argv[2]);
    const int n_in = atoi(argv[3]), n_out = atoi(argv[4]), n_tok = atoi(argv[5]);
    const int reps = arg_int(argc, argv, "-r", 20);
    struct mat m;
    size_t xs;
    mat_init(&m, t, n_in, n_out);
    void *x = make_act(t, n_in, n_tok, &xs);
    float *y = malloc((size_t)n_out * n_tok * sizeof *y);
    double *s = malloc((size_t)reps * sizeof *s), mn, md;
    mat_run(&m, x, xs, y, n_tok);
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        mat_run(&m, x, xs, y, n_tok);
        s[r] = now_s() - t0;
    }
    min_med(s, reps, &mn, &md);
    const double bytes = (double)m.row_bytes * n_out, ops = 2.0 * n_in * n_out * n_tok;
    printf("%s %dx%d x %d tok, %d threads: min %.1f us (%.1f GB/s, %.1f GOP/s), median %.1f us\n",
           t->name, n_out, n_in, n_tok, n_threads, mn * 1e6, bytes / mn / 1e9, ops / mn / 1e9,
           md * 1e6);
    return 0;
}

/* TinyLlama-1.1B: embd 2048, ff 5632, 32 heads / 4 KV heads of 64, vocab
 * 32000, 22 layers. */
enum { EMBD = 2048, FF = 5632, KV = 256, VOCAB = 32000, LAYERS = 22 };

static int cmd_model(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mmbench model TYPE [-n N_TOK] [-t T] [-r REPS]\n");
        return 2;
    }
    const struct wtype *t = find_type(argv[2]), *q6 = find_type("q6_K");
    const int n_tok = arg_int(argc, argv, "-n", 1), reps = arg_int(argc, argv, "-r", 5);
    static const int shape[7][2] = {            /* n_in, n_out */
        { EMBD, EMBD }, { EMBD, KV }, { EMBD, KV }, { EMBD, EMBD },
        { EMBD, FF }, { EMBD, FF }, { FF, EMBD },
    };
    static const char *const names[8] = { "q", "k", "v", "o", "gate", "up", "down", "output" };
    struct mat *m = malloc(sizeof *m * (LAYERS * 7 + 1));
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 7; k++)
            mat_init(&m[l * 7 + k], t, shape[k][0], shape[k][1]);
    mat_init(&m[LAYERS * 7], q6, EMBD, VOCAB);
    size_t xs_e, xs_f, xs_o;
    void *xe = make_act(t, EMBD, n_tok, &xs_e), *xf = make_act(t, FF, n_tok, &xs_f);
    void *xo = make_act(q6, EMBD, n_tok, &xs_o);
    float *y = malloc((size_t)VOCAB * n_tok * sizeof *y);
    double *s = malloc(sizeof *s * reps), per[8][64], mn, md, bytes = 0, ops = 0;
    for (int i = 0; i <= LAYERS * 7; i++) {
        bytes += (double)m[i].row_bytes * m[i].n_out;
        ops += 2.0 * m[i].n_in * m[i].n_out * n_tok;
    }
    for (int r = -1; r < reps; r++) {
        double t_all = now_s(), kind[8] = {0};
        for (int i = 0; i <= LAYERS * 7; i++) {
            const int k = i == LAYERS * 7 ? 7 : i % 7;
            const double t0 = now_s();
            mat_run(&m[i], k == 7 ? xo : k == 6 ? xf : xe, k == 7 ? xs_o : k == 6 ? xs_f : xs_e, y, n_tok);
            kind[k] += now_s() - t0;
        }
        if (r < 0)
            continue;                       /* warm-up pass */
        s[r] = now_s() - t_all;
        for (int k = 0; k < 8 && r < 64; k++)
            per[k][r] = kind[k];
    }
    min_med(s, reps, &mn, &md);
    printf("model %s + q6_K output, %d tok, %d threads: min %.2f ms (%.1f tok/s, %.1f GB/s, %.1f GOP/s), "
           "median %.2f ms (%.1f tok/s)\n", t->name, n_tok, n_threads, mn * 1e3, n_tok / mn,
           bytes / mn / 1e9, ops / mn / 1e9, md * 1e3, n_tok / md);
    for (int k = 0; k < 8; k++) {
        double kmn, kmd;
        min_med(per[k], reps < 64 ? reps : 64, &kmn, &kmd);
        const int n_mats = k == 7 ? 1 : LAYERS;
        const double kb = (double)m[k == 7 ? LAYERS * 7 : k].row_bytes * m[k == 7 ? LAYERS * 7 : k].n_out * n_mats;
        printf("  %-6s min %7.3f ms  %6.1f GB/s  median %7.3f ms\n", names[k], kmn * 1e3, kb / kmn / 1e9, kmd * 1e3);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mmbench bw|peak|mm|model ... (see tools/mmbench.c)\n");
        return 2;
    }
    n_threads = arg_int(argc, argv, "-t", 1);
    if (n_threads < 1 || n_threads > 64) {
        fprintf(stderr, "mmbench: -t must be 1..64\n");
        return 2;
    }
    start_threads();
    if (!strcmp(argv[1], "bw"))
        return cmd_bw();
    if (!strcmp(argv[1], "peak"))
        return cmd_peak();
    if (!strcmp(argv[1], "mm"))
        return cmd_mm(argc, argv);
    if (!strcmp(argv[1], "model"))
        return cmd_model(argc, argv);
    fprintf(stderr, "mmbench: unknown command '%s'\n", argv[1]);
    return 2;
}
