/*
 * cmd_mod.c - the module table, the PGO cache and the profiler at the
 * prompt: `modules`, `cache`, `prof show|reset|export|on|off|bench`.
 *
 * `prof export` writes one JSON document (schema: profiles/README.md,
 * "fluid-profile" version FLUID_PROFILE_SCHEMA) to the console between the
 * lines PROF_BEGIN and PROF_END below; tools/pgo.py profile captures it
 * from COM1.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "lib/sort_u64.h"
#include "llm/gguf.h"
#include "llm/model.h"
#include "mod/cache.h"
#include "mod/choice.h"
#include "mod/loader.h"
#include "mod/pmu.h"
#include "mod/prof.h"
#include "plat/plat.h"
#include "shell/shell.h"

#define FLUID_PROFILE_SCHEMA 1
#define PROF_BEGIN "-----BEGIN FLUID PROFILE-----"
#define PROF_END "-----END FLUID PROFILE-----"

/* Totals of one op over all CPUs. */
struct op_total {
    uint64_t calls, cycles, min, max, bytes, flops, pmu[PMU_EVENTS];
};

static void op_total(int op, struct op_total *t)
{
    memset(t, 0, sizeof *t);
    for (int c = 0; c < FLUID_MAX_CPUS; c++) {
        const struct op_stats *s = &optab[op].stats[c];
        if (!s->calls)
            continue;
        t->calls += s->calls;
        t->cycles += s->cycles;
        t->bytes += s->bytes;
        t->flops += s->flops;
        if (t->min == 0 || s->min < t->min)
            t->min = s->min;
        if (s->max > t->max)
            t->max = s->max;
        for (int e = 0; e < PMU_EVENTS; e++)
            t->pmu[e] += s->pmu[e];
    }
}

static uint64_t all_cycles(void)
{
    uint64_t sum = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        struct op_total t;
        op_total(op, &t);
        sum += t.cycles;
    }
    return sum;
}

static double tok_per_s(uint64_t tokens, uint64_t cycles)
{
    return cycles && cpu.tsc_hz ? (double)tokens * (double)cpu.tsc_hz / (double)cycles : 0.0;
}

/* ---- modules ---- */

static int cmd_modules(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("%-13s %-11s %-8s %-3s %-18s %-16s %10s %14s\n", "op", "module", "variant", "opt", "march",
            "hash", "calls", "cycles");
    for (int op = 0; op < OP_COUNT; op++) {
        const struct op_slot *s = &optab[op];
        struct op_total t;
        op_total(op, &t);
        char opt[8];
        snprintf(opt, sizeof opt, s->fn ? "-O%d" : "-", s->opt_level);
        kprintf("%-13s %-11s %-8s %-3s %-18s %-16s %10llu %14llu\n", s->name, s->module ? s->module : "-",
                s->variant, opt, s->march, s->hash, (unsigned long long)t.calls, (unsigned long long)t.cycles);
        if (s->fn && s->dec.fn != s->fn)
            kprintf("%-13s %-11s %-8s -O%d %-18s %-16s (its one-token calls: a tuned decode choice)\n", "  decode",
                    s->dec.module, s->dec.variant, s->dec.opt_level, s->dec.march, s->dec.hash);
    }
    kprintf("loaded: %d baseline modules (%d rejected), %d from the cache (%d rejected)", mods.baseline_loaded,
            mods.baseline_rejected, cache_info.loaded, cache_info.rejected);
    if (cache_info.active >= 0 && cache_info.tag[0])
        kprintf("; cache tag %s, generation %llu", cache_info.tag, (unsigned long long)cache_info.generation);
    kprintf("\n");
    for (int i = 0; i < mods.n_loaded; i++) {
        const struct mod_loaded *m = &mods.loaded[i];
        if (!m->n_shapes)
            continue;
        kprintf("shaped: %s (%s):", m->name, m->variant);
        for (uint32_t k = 0; k < m->n_shapes; k++)
            kprintf(" %s=%u", modfmt_shape_name(m->shape[k].id), m->shape[k].value);
        kprintf(" - %s\n", m->shape_match == 1 ? "matches the model" :
                m->shape_match == 0 ? "model differs, generic path" : "no model to compare");
    }
    if (choices.in_force | choices.in_force_dec)
        kprintf("tuned: %d ops run the variant `tune` chose (%d decode choices; generation %llu; `tune show`)\n",
                __builtin_popcountll(choices.in_force | choices.in_force_dec),
                __builtin_popcountll(choices.in_force_dec), (unsigned long long)choices.generation);
    for (int i = 0; i < mods.n_rejects; i++)
        kprintf("rejected: %s: %s\n", mods.rejects[i].what, mods.rejects[i].why);
    return 0;
}

static int cmd_cache(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    cache_print();
    return 0;
}

/* ---- prof show ---- */

static void prof_show(void)
{
    uint64_t total = all_cycles();
    const struct prof_workload *w = &prof_work;
    kprintf("profiling %s; pmu: %s\n", prof_enabled ? "on" : "off",
            pmu.available ? pmu.kind : "none");
    kprintf("workload: %llu gen runs, prompt %llu tokens (%.2f tok/s), generated %llu tokens (%.2f tok/s)\n",
            (unsigned long long)w->runs, (unsigned long long)w->prompt_tokens,
            tok_per_s(w->prompt_tokens, w->prefill_cycles), (unsigned long long)w->generated_tokens,
            tok_per_s(w->generated_tokens, w->decode_cycles));
    kprintf("%-13s %-8s %-10s %10s %14s %6s %10s %10s %10s %7s %8s\n", "op", "variant", "march", "calls",
            "cycles", "share", "cyc/call", "min", "max", "GB/s", "GFLOP/s");
    for (int op = 0; op < OP_COUNT; op++) {
        struct op_total t;
        op_total(op, &t);
        if (!t.calls)
            continue;
        double secs = cpu.tsc_hz ? (double)t.cycles / (double)cpu.tsc_hz : 0.0;
        kprintf("%-13s %-8s %-10s %10llu %14llu %5.1f%% %10llu %10llu %10llu %7.2f %8.2f\n", optab[op].name,
                optab[op].variant, optab[op].march, (unsigned long long)t.calls, (unsigned long long)t.cycles,
                total ? 100.0 * (double)t.cycles / (double)total : 0.0,
                (unsigned long long)(t.cycles / t.calls), (unsigned long long)t.min, (unsigned long long)t.max,
                secs > 0 ? (double)t.bytes / secs / 1e9 : 0.0, secs > 0 ? (double)t.flops / secs / 1e9 : 0.0);
    }
    kprintf("%-13s %-8s %-10s %10s %14llu\n", "total", "", "", "", (unsigned long long)total);
    for (int c = 0; c < FLUID_MAX_CPUS; c++) {
        uint64_t cyc = 0, calls = 0;
        for (int op = 0; op < OP_COUNT; op++) {
            cyc += optab[op].stats[c].cycles;
            calls += optab[op].stats[c].calls;
        }
        if (calls)
            kprintf("cpu %d: %llu calls, %llu cycles\n", c, (unsigned long long)calls, (unsigned long long)cyc);
    }
}

/* ---- prof export: JSON ---- */

static char jbuf[2048];
static size_t jlen;

static void jflush(void)
{
    if (jlen)
        kwrite(jbuf, jlen);
    jlen = 0;
}

__attribute__((format(printf, 1, 2))) static void jp(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    if (jlen + (size_t)n > sizeof jbuf)
        jflush();
    memcpy(jbuf + jlen, tmp, (size_t)n);
    jlen += (size_t)n;
}

/* A JSON string literal of s (escapes ", \ and control bytes). */
static void jstr(const char *s)
{
    char out[256];
    size_t n = 0;
    out[n++] = '"';
    for (; *s && n < sizeof out - 8; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(out + n, sizeof out - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = 0;
    jp("%s", out);
}

static void jkey(const char *k, int first)
{
    jp("%s", first ? "" : ",");
    jstr(k);
    jp(":");
}

static void jpmu(const uint64_t *v)
{
    if (!pmu.available) {
        jp("null");
        return;
    }
    jp("{");
    for (int e = 0, first = 1; e < PMU_EVENTS; e++) {
        jkey(pmu_event_name(e), first);
        first = 0;
        if (pmu.counter[e] < 0)
            jp("null");
        else
            jp("%llu", (unsigned long long)v[e]);
    }
    jp("}");
}

static void export_model(void)
{
    const struct fluid_region *r = &plat_image()->region[FLUID_REGION_MODEL];
    if (!model.loaded) {
        jp("null");
        return;
    }
    char id[96];
    model_id_string(id, sizeof id);
    const struct llama_hparams *hp = &model.m.hp;
    jp("{");
    jkey("id", 1); jstr(id);
    jkey("name", 0); jstr(model.name);
    jkey("file", 0); jstr(plat_image()->model_name);
    jkey("bytes", 0); jp("%llu", (unsigned long long)model.size);
    jkey("crc32", 0); jp("\"%08x\"", r->crc32);
    jkey("shapes", 0);
    jp("{\"n_vocab\":%u,\"n_embd\":%u,\"n_layer\":%u,\"n_head\":%u,\"n_head_kv\":%u,\"head_dim\":%u,"
       "\"n_embd_kv\":%u,\"n_ff\":%u,\"n_ctx\":%d,\"n_ctx_train\":%u}",
       hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_embd_kv,
       hp->n_ff, model.eng.n_ctx, hp->n_ctx_train);
    /* Tensor counts per ggml type. */
    uint32_t count[64] = { 0 };
    const struct llama_weights *w = &model.m.w;
    count[w->token_embd.type & 63]++;
    count[w->output_norm.type & 63]++;
    if (!w->output_tied)
        count[w->output.type & 63]++;
    for (uint32_t l = 0; l < w->n_layer; l++) {
        const struct llama_layer *L = &w->layers[l];
        const struct llama_tensor *ts[] = { &L->attn_norm, &L->attn_q, &L->attn_k, &L->attn_v,
                                            &L->attn_output, &L->ffn_norm, &L->ffn_gate, &L->ffn_up,
                                            &L->ffn_down };
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            count[ts[i]->type & 63]++;
    }
    jkey("types", 0);
    jp("{");
    for (int t = 0, first = 1; t < 64; t++)
        if (count[t]) {
            jkey(ggml_type_name((uint32_t)t), first);
            jp("%u", count[t]);
            first = 0;
        }
    jp("}");
    jp("}");
}

static void export_stats(const struct op_stats *s)
{
    jp("\"calls\":%llu,\"cycles\":%llu,\"min\":%llu,\"max\":%llu,\"bytes\":%llu,\"flops\":%llu",
       (unsigned long long)s->calls, (unsigned long long)s->cycles, (unsigned long long)s->min,
       (unsigned long long)s->max, (unsigned long long)s->bytes, (unsigned long long)s->flops);
}

static void prof_export(void)
{
    const struct prof_workload *w = &prof_work;
    kprintf("\n%s\n", PROF_BEGIN);
    jp("{");
    jkey("schema", 1); jstr("fluid-profile");
    jkey("schema_version", 0); jp("%d", FLUID_PROFILE_SCHEMA);
    jkey("kernel", 0);
    jp("{\"build_id\":\"kernel-%08x-%llu\",\"modules_abi\":%u}", plat_image()->region[FLUID_REGION_KERNEL].crc32,
       (unsigned long long)plat_image()->region[FLUID_REGION_KERNEL].bytes, FLUID_MOD_ABI_VERSION);
    jkey("cpu", 0);
    jp("{");
    jkey("vendor", 1); jstr(cpu.vendor);
    jkey("brand", 0); jstr(cpu.brand);
    jp(",\"family\":%u,\"model\":%u,\"stepping\":%u", cpu.family, cpu.model, cpu.stepping);
    jkey("features", 0);
    jp("[");
    for (int b = 0, first = 1; b < 64; b++) {
        const char *nm = cpu_feature_name(b);
        if (!nm || !((cpu.features >> b) & 1))
            continue;
        jp("%s", first ? "" : ",");
        jstr(nm);
        first = 0;
    }
    jp("]");
    jp(",\"features_mask\":\"0x%llx\",\"x86_64_level\":%d", (unsigned long long)cpu.features, cpu.level);
    jkey("tag", 0); jstr(cpu.tag);
    jp(",\"tsc_hz\":%llu,\"cores\":%d}", (unsigned long long)cpu.tsc_hz, plat_cpus_present());
    jkey("pmu", 0);
    if (pmu.available) {
        jp("{");
        jkey("kind", 1); jstr(pmu.kind);
        jp(",\"version\":%d,\"counters\":%d,\"events\":[", pmu.version, pmu.n_counters);
        for (int e = 0, first = 1; e < PMU_EVENTS; e++)
            if (pmu.counter[e] >= 0) {
                jp("%s", first ? "" : ",");
                jstr(pmu_event_name(e));
                first = 0;
            }
        jp("]}");
    } else {
        jp("null");
    }
    jkey("pmu_absent_reason", 0);
    if (pmu.available)
        jp("null");
    else
        jstr(pmu.why);
    jkey("profiling", 0);
    jp("{\"enabled\":%s,\"clock\":\"tsc\",\"serialisation\":\"lfence;rdtsc .. lfence;rdtsc;lfence\"}",
       prof_enabled ? "true" : "false");
    jkey("model", 0);
    export_model();
    jkey("workload", 0);
    jp("{\"runs\":%llu,\"prompt_tokens\":%llu,\"generated_tokens\":%llu,\"prefill_cycles\":%llu,"
       "\"decode_cycles\":%llu,\"prefill_tok_s\":%.4f,\"decode_tok_s\":%.4f}",
       (unsigned long long)w->runs, (unsigned long long)w->prompt_tokens,
       (unsigned long long)w->generated_tokens, (unsigned long long)w->prefill_cycles,
       (unsigned long long)w->decode_cycles, tok_per_s(w->prompt_tokens, w->prefill_cycles),
       tok_per_s(w->generated_tokens, w->decode_cycles));
    jkey("cache", 0);
    jp("{\"active_slot\":%d,\"generation\":%llu,", cache_info.active, (unsigned long long)cache_info.generation);
    jkey("tag", 1); jstr(cache_info.tag);
    jp(",\"loaded\":%d,\"rejected\":%d}", cache_info.loaded, cache_info.rejected);
    jkey("modules", 0);
    jp("[");
    for (int op = 0, first = 1; op < OP_COUNT; op++) {
        const struct op_slot *s = &optab[op];
        const struct mod_loaded *m = mod_for_op(op);
        struct op_total t;
        op_total(op, &t);
        jp("%s{", first ? "" : ",\n");
        first = 0;
        jkey("op", 1); jstr(s->name);
        jkey("module", 0); jstr(s->module ? s->module : "");
        jkey("variant", 0); jstr(s->variant);
        jp(",\"opt_level\":%d,", s->opt_level);
        jkey("march", 1); jstr(s->march);
        jkey("hash", 0); jstr(s->hash);
        jkey("decode_variant", 0); jstr(s->dec.variant);   /* its one-token calls */
        jkey("decode_march", 0); jstr(s->dec.march);
        jkey("decode_hash", 0); jstr(s->dec.hash);
        jp(",\"generation\":%llu,\"shaped\":%s", (unsigned long long)(m ? m->generation : 0),
           m && m->n_shapes ? (m->shape_match == 1 ? "\"match\"" : "\"mismatch\"") : "null");
        jp(",\"calls\":%llu,\"cycles\":%llu,\"min\":%llu,\"max\":%llu,\"bytes\":%llu,\"flops\":%llu",
           (unsigned long long)t.calls, (unsigned long long)t.cycles, (unsigned long long)t.min,
           (unsigned long long)t.max, (unsigned long long)t.bytes, (unsigned long long)t.flops);
        jkey("pmu", 0);
        jpmu(t.pmu);
        jkey("per_cpu", 0);
        jp("[");
        for (int c = 0, cf = 1; c < FLUID_MAX_CPUS; c++) {
            const struct op_stats *st = &s->stats[c];
            if (!st->calls)
                continue;
            jp("%s{\"cpu\":%d,", cf ? "" : ",", c);
            cf = 0;
            export_stats(st);
            jp(",\"pmu\":");
            jpmu(st->pmu);
            jp("}");
        }
        jp("]}");
    }
    jp("],\n");
    jkey("total_cycles", 1);
    jp("%llu", (unsigned long long)all_cycles());
    jp("}");
    jflush();
    kprintf("\n%s\n", PROF_END);
}

/* A call the compiler cannot remove or inline. */
__attribute__((noinline)) static void bench_noop(void)
{
    __asm__ volatile("" ::: "memory");
}

/* TSC cycles of a batch of n empty calls, with or without the PROF_CALL
 * wrapper (its counters go to OP_ADD; the caller restores them). */
static uint64_t bench_batch(int n, int profiled)
{
    int saved = prof_enabled;
    prof_enabled = profiled;
    uint64_t t0 = tsc_begin();
    for (int i = 0; i < n; i++)
        PROF_CALL(OP_ADD, bench_noop(), 0, 0);
    uint64_t t = tsc_end() - t0;
    prof_enabled = saved;
    return t;
}

/* `prof bench`: what the profiler adds to each module call (TSC cycles),
 * min and median over 64 batches of 2000 calls; the minimum is robust
 * against a noisy host.  Multiply by the calls per token (`prof show`) for
 * the overhead per token. */
static void prof_bench(void)
{
    enum { BATCHES = 64, N = 2000 };
    static uint64_t on[BATCHES], off[BATCHES];
    struct op_stats saved = optab[OP_ADD].stats[plat_cpu_id()];
    for (int b = 0; b < BATCHES; b++) {
        off[b] = bench_batch(N, 0);
        on[b] = bench_batch(N, 1);
    }
    optab[OP_ADD].stats[plat_cpu_id()] = saved;
    sort_u64(on, BATCHES);
    sort_u64(off, BATCHES);
    double mn = ((double)on[0] - (double)off[0]) / N;
    double md = ((double)on[BATCHES / 2] - (double)off[BATCHES / 2]) / N;
    kprintf("profiled call overhead: min %.1f, median %.1f TSC cycles per call "
            "(empty call: %.1f unprofiled, %.1f profiled; pmu %s)\n", mn, md, (double)off[0] / N,
            (double)on[0] / N, pmu_active ? "read" : "off");
}

static int cmd_prof(int argc, char **argv, const char *line)
{
    (void)line;
    const char *sub = argc > 1 ? argv[1] : "show";
    if (strcmp(sub, "show") == 0)
        prof_show();
    else if (strcmp(sub, "reset") == 0) {
        prof_reset();
        kprintf("profile counters cleared\n");
    } else if (strcmp(sub, "export") == 0)
        prof_export();
    else if (strcmp(sub, "bench") == 0)
        prof_bench();
    else if (strcmp(sub, "on") == 0 || strcmp(sub, "off") == 0) {
        prof_enabled = strcmp(sub, "on") == 0;
        kprintf("profiling %s\n", prof_enabled ? "on" : "off");
    } else {
        kprintf("error: prof needs show, reset, export, on, off or bench\n");
        return 1;
    }
    return 0;
}

const struct shell_cmd mod_commands[] = {
    { "modules", "", "every op: its module, variant (baseline/cache), -O, -march, hash, calls, cycles",
      cmd_modules, 0 },
    { "cache", "", "the PGO module cache: slots, generation, tags", cmd_cache, 0 },
    { "prof", "[show|reset|export|on|off|bench]", "per-op profile; export: JSON to COM1; bench: its cost",
      cmd_prof, 0 },
    { 0 },
};
