/*
 * cmd_bench.c - `bench`, shaped like llama-bench: prefill speed of a pp<N>
 * batch and decode speed of tg<N> single-token steps, each from an empty
 * context, mean +- sd over repetitions; plus the machine's memory read
 * bandwidth and decode's achieved weight traffic against it (decode reads
 * every weight once per token, so bandwidth is its ceiling).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "lib/kprintf.h"
#include "llm/model.h"
#include "plat/plat.h"
#include "shell/line.h"
#include "shell/shell.h"

#define BENCH_MAX_REPS 20

#define bench_toks (model.sess.tokens)   /* model.eng.n_ctx ids: -p and -n are checked against it */

/* A fixed, vocabulary-spread token sequence (BOS first). */
static void make_tokens(int n, uint32_t n_vocab)
{
    bench_toks[0] = 1;
    for (int i = 1; i < n; i++)
        bench_toks[i] = (int32_t)(259 + (uint32_t)i * 7919u % (n_vocab - 259));
}

static double seconds(uint64_t ticks) { return (double)tsc_to_us(ticks) / 1e6; }

/* Prefill of n tokens from an empty context (session batches); tok/s, or
 * -1 when Ctrl-C stopped it. */
static double run_pp(int n)
{
    struct session *s = &model.sess;
    session_reset(s);
    s->poll = line_interrupted_poll;
    if (session_prefill(s, bench_toks, n, NULL, NULL) != SESS_OK)
        return -1;
    return n / seconds(s->st.prefill_ticks);
}

/* n single-token decode steps from an empty context; tok/s, or -1 when
 * Ctrl-C stopped it. */
static double run_tg(int n)
{
    struct session *s = &model.sess;
    session_reset(s);
    uint64_t t0 = rdtsc();
    for (int i = 0; i < n; i++) {
        if (session_decode(s, bench_toks[i]) != SESS_OK || (i % 8 == 7 && line_interrupted()))
            return -1;
    }
    return n / seconds(rdtsc() - t0);
}

static void stats(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* Streaming read of `bytes` at p; returns GB/s (best of 3). */
static double read_bandwidth(const uint8_t *p, uint64_t bytes)
{
    double best = 0;
    for (int r = 0; r < 3; r++) {
        uint64_t acc = 0, t0 = rdtsc();
        const uint64_t *q = (const uint64_t *)p;
        for (uint64_t i = 0; i < bytes / 8; i += 8)
            acc += q[i] ^ q[i + 1] ^ q[i + 2] ^ q[i + 3] ^ q[i + 4] ^ q[i + 5] ^ q[i + 6] ^ q[i + 7];
        __asm__ volatile("" ::"r"(acc));
        double gbs = bytes / 1e9 / seconds(rdtsc() - t0);
        if (gbs > best)
            best = gbs;
    }
    return best;
}

static int stopped(void)
{
    session_reset(&model.sess);
    kprintf("[stopped]\n");
    return 1;
}

static int cmd_bench(int argc, char **argv, const char *line)
{
    (void)line;
    if (model_require())
        return 1;
    long pp = 128, tg = 64, reps = 3;
    for (int i = 1; i < argc; i += 2) {
        long *dst = !strcmp(argv[i], "-p") ? &pp : !strcmp(argv[i], "-n") ? &tg : !strcmp(argv[i], "-r") ? &reps : 0;
        if (!dst || i + 1 >= argc || shell_parse_long(argv[i + 1], dst) != 0) {
            kprintf("error: usage: bench [-p N] [-n N] [-r R]\n");
            return 1;
        }
    }
    struct engine *e = &model.eng;
    if (pp < 0 || tg < 0 || pp + tg == 0 || pp > e->n_ctx || tg > e->n_ctx || reps < 1 || reps > BENCH_MAX_REPS) {
        kprintf("error: need 0 <= -p, -n <= %d (context), not both 0, and 1 <= -r <= %d\n", e->n_ctx, BENCH_MAX_REPS);
        return 1;
    }
    make_tokens(pp > tg ? (int)pp : (int)tg, e->hp.n_vocab);
    double v[BENCH_MAX_REPS], mean, sd, tg_mean = 0;
    kprintf("| model | size | cores | test | t/s |\n|---|---|---|---|---|\n");
    if (pp > 0) {
        run_pp((int)(pp < 8 ? pp : 8));   /* warm-up */
        for (int r = 0; r < reps; r++)
            if ((v[r] = run_pp((int)pp)) < 0)
                return stopped();
        stats(v, (int)reps, &mean, &sd);
        kprintf("| %s | %.2f GiB | %d | pp%ld | %.2f +- %.2f |\n", model.name, model.size / 1073741824.0,
                plat_cpus_online(), pp, mean, sd);
    }
    if (tg > 0) {
        for (int r = 0; r < reps; r++)
            if ((v[r] = run_tg((int)tg)) < 0)
                return stopped();
        stats(v, (int)reps, &mean, &sd);
        tg_mean = mean;
        kprintf("| %s | %.2f GiB | %d | tg%ld | %.2f +- %.2f |\n", model.name, model.size / 1073741824.0,
                plat_cpus_online(), tg, mean, sd);
    }
    session_reset(&model.sess);
    double bw = read_bandwidth(model.file, model.size < (1ull << 30) ? model.size & ~63ull : 1ull << 30);
    double weights = (double)llama_weights_bytes(&model.m.w);
    kprintf("memory read bandwidth %.2f GB/s (1 core); decode moves %.2f GB/s of weights (%.0f%% of it)\n",
            bw, weights * tg_mean / 1e9, bw > 0 ? 100.0 * weights * tg_mean / 1e9 / bw : 0.0);
    return 0;
}

const struct shell_cmd bench_commands[] = {
    { "bench", "[-p N] [-n N] [-r R]", "prefill ppN / decode tgN tok/s, like llama-bench", cmd_bench, 0 },
    { 0 },
};
