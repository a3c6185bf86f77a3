/* tune.c - measure every variant, choose, keep the choice (see tune.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "lib/sort_u64.h"
#include "llm/model.h"
#include "mod/choice.h"
#include "mod/modfmt.h"
#include "mod/optab.h"
#include "mod/tune.h"
#include "plat/plat.h"

/* Every variant of op this boot has: loaded modules implementing it (the
 * reference first: the scalar baseline), then the ones this CPU cannot
 * run.  Duplicates (same body) are listed once. */
static void list_variants(struct tune_op *o)
{
    int op = o->w->op;
    const struct mod_loaded *def = choice_default(op);
    o->n = 0;
    o->def = -1;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < mods.n_loaded && o->n < TUNE_MAX_VARIANTS; i++) {
            struct mod_loaded *m = &mods.loaded[i];
            int base = (m->flags & FLUID_MOD_F_BASELINE) != 0;
            if (!mod_op_fn(m, op) || base != (pass == 0))
                continue;
            /* An alternative differs only in its namesake op (the matrix
             * product whose prefetch it changes), not in the module's
             * other ops (dequant_q4_0 of mm_q4_0): those it does not offer. */
            if ((m->flags & FLUID_MOD_F_ALT) && strcmp(m->name, optab[op].name) != 0)
                continue;
            int dup = -1;
            for (int k = 0; k < o->n && dup < 0; k++)
                if (o->v[k].status != TUNE_SAME && memcmp(o->v[k].m->sha256, m->sha256, sizeof m->sha256) == 0)
                    dup = k;
            if (pass == 0 && o->n == 1 && dup < 0)
                continue;   /* one reference is enough */
            struct tune_variant *v = &o->v[o->n];
            memset(v, 0, sizeof *v);
            v->m = m;
            if (dup >= 0) {
                v->status = TUNE_SAME;
                v->same_as = dup;
                if (m == def) {
                    o->v[dup].is_default = 1;   /* the default runs that very code */
                    o->def = dup;
                }
            } else {
                v->is_default = m == def;
                if (v->is_default)
                    o->def = o->n;
            }
            o->n++;
        }
    if (o->n && !(o->v[0].m->flags & FLUID_MOD_F_BASELINE) && o->v[0].status != TUNE_SAME) {
        /* No scalar baseline for op: the default is the reference. */
        int d = o->def >= 0 ? o->def : 0;
        struct tune_variant t = o->v[0];
        o->v[0] = o->v[d];
        o->v[d] = t;
        o->def = o->v[0].is_default ? 0 : d;
    }
    if (o->n)
        o->v[0].is_ref = 1;
    for (int i = 0; i < mods.n_skipped && o->n < TUNE_MAX_VARIANTS; i++) {
        const struct mod_skipped *k = &mods.skipped[i];
        if (!((k->ops >> op) & 1) || ((k->flags & FLUID_MOD_F_ALT) && strcmp(k->name, optab[op].name) != 0))
            continue;
        struct tune_variant *v = &o->v[o->n++];
        memset(v, 0, sizeof *v);
        v->k = k;
        v->status = TUNE_SKIPPED;
    }
}

static void stats(struct tune_variant *v)
{
    uint64_t c[TUNE_MAX_REPS];
    memcpy(c, v->cost, sizeof c);
    sort_u64(c, v->reps);
    v->min = c[0];
    v->med = c[(v->reps - 1) / 2];
    v->max = c[v->reps - 1];
}

/* One op: reference run, checks, then the timed rounds. */
static int measure_op(struct tune_op *o, int reps, uint8_t *ref, int (*poll)(void *), void *ctx)
{
    struct tune_work *w = o->w;
    uint64_t dec, pre;
    for (int i = 0; i < o->n; i++) {
        struct tune_variant *v = &o->v[i];
        if (v->status == TUNE_SKIPPED || v->status == TUNE_SAME)
            continue;
        if (poll && poll(ctx))
            return -1;
        v->first = tune_work_run(w, mod_op_fn(v->m, w->op), 0, &dec, &pre);
        if (v->is_ref) {
            memcpy(ref, w->out, w->out_bytes);
            continue;
        }
        int ok;
        v->err = tune_work_compare(w, ref, &ok);
        if (!ok)
            v->status = TUNE_WRONG;
    }
    /* The check run warmed caches and workers up; it only serves to cut
     * variants that cannot win: one over TUNE_CUT x the fastest check run
     * is run once more (a check run slowed by other work on the machine
     * must not exclude a variant) and cut when that run is over too. */
    uint64_t best = 0;
    for (int i = 0; i < o->n; i++)
        if (o->v[i].status == TUNE_OK && (!best || o->v[i].first < best))
            best = o->v[i].first;
    int cut[TUNE_MAX_VARIANTS] = { 0 };
    for (int i = 0; i < o->n; i++) {
        struct tune_variant *v = &o->v[i];
        if (v->status == TUNE_WRONG) {
            v->cost[0] = v->first;
            v->reps = 1;
        }
        if (v->status != TUNE_OK || (double)v->first <= TUNE_CUT * (double)best)
            continue;
        if (poll && poll(ctx))
            return -1;
        uint64_t again = tune_work_run(w, mod_op_fn(v->m, w->op), 1, &dec, &pre);
        if ((double)again > TUNE_CUT * (double)best) {
            cut[i] = 1;
            v->cost[0] = v->first;
            v->cost[1] = again;
            v->reps = 2;
        }
    }
    /* The timed rounds, round-robin, round r on block r's weights. */
    for (int r = 1; r <= reps; r++)
        for (int i = 0; i < o->n; i++) {
            struct tune_variant *v = &o->v[i];
            if (v->status != TUNE_OK || cut[i])
                continue;
            if (poll && poll(ctx))
                return -1;
            v->cost[v->reps++] = tune_work_run(w, mod_op_fn(v->m, w->op), (uint32_t)r, &dec, &pre);
        }
    o->chosen = -1;
    for (int i = 0; i < o->n; i++) {
        struct tune_variant *v = &o->v[i];
        if (v->status == TUNE_SKIPPED || v->status == TUNE_SAME)
            continue;
        stats(v);
        if (v->status == TUNE_OK && (o->chosen < 0 || v->min < o->v[o->chosen].min))
            o->chosen = i;
    }
    const struct tune_variant *d = o->def >= 0 ? &o->v[o->def] : NULL;
    if (o->chosen >= 0 && d && d->status == TUNE_OK &&
        (double)d->min <= (1.0 + TUNE_KEEP) * (double)o->v[o->chosen].min)
        o->chosen = o->def;   /* not worth a change */
    return 0;
}

int tune_measure(int reps, int (*poll)(void *), void *ctx, struct tune_report *r, char *err, size_t cap)
{
    if (reps < 1 || reps > TUNE_MAX_REPS) {
        snprintf(err, cap, "repetitions must be 1..%d", TUNE_MAX_REPS);
        return -1;
    }
    memset(r, 0, sizeof *r);
    r->reps = reps;
    choice_keep_defaults();
    int n = tune_work_init(r->work, err, cap);
    if (n < 0)
        return -1;
    size_t ref_bytes = 0;
    for (int i = 0; i < n; i++)
        if (r->work[i].out_bytes > ref_bytes)
            ref_bytes = r->work[i].out_bytes;
    uint64_t alloc = (ref_bytes + 4095) & ~4095ull;
    uint8_t *ref = plat_alloc(alloc, 4096);
    if (!ref) {
        tune_work_free(r->work, n);
        snprintf(err, cap, "no memory for the reference outputs (%llu KiB)", (unsigned long long)(alloc / 1024));
        return -1;
    }
    /* The counters stay the user's: tune's calls are not a workload. */
    int saved = prof_enabled;
    prof_enabled = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        struct tune_op *o = &r->op[i];
        o->w = &r->work[i];
        list_variants(o);
        r->n_ops = i + 1;
        if (measure_op(o, reps, ref, poll, ctx) != 0) {
            snprintf(err, cap, "interrupted while timing %s; nothing was chosen", optab[o->w->op].name);
            rc = -1;
        }
    }
    prof_enabled = saved;
    r->evicted = tune_work_evicts();
    plat_free(ref, alloc);
    tune_work_free(r->work, n);
    return rc;
}

static double spread(const struct tune_variant *v)
{
    return v->min ? 100.0 * (double)(v->max - v->min) / (double)v->min : 0.0;
}

void tune_print(const struct tune_report *r)
{
    kprintf("tune: model %s, CPU %s (%s), %d CPUs, %d repetitions, TSC %llu MHz; TSC cycles per token\n",
            model.name, cpu.tag, cpu.brand, plat_cpus_online(), r->reps, (unsigned long long)(cpu.tsc_hz / 1000000));
    kprintf(r->evicted ? "tune: matrix products timed with their weights out of the caches (%llu MiB read before "
                         "each run), as in a forward pass\n"
                       : "tune: no memory to evict the caches (%llu MiB): matrix products timed with warm caches\n",
            (unsigned long long)(TUNE_EVICT_BYTES >> 20));
    kprintf("%-14s %-8s %-15s %-3s %-16s %-15s %13s %13s %7s %4s\n", "op", "variant", "march", "opt", "hash",
            "check", "min", "median", "spread", "reps");
    for (int i = 0; i < r->n_ops; i++) {
        const struct tune_op *o = &r->op[i];
        kprintf("%s (%s)\n", optab[o->w->op].name, o->w->shapes);
        for (int j = 0; j < o->n; j++) {
            const struct tune_variant *v = &o->v[j];
            if (v->status == TUNE_SKIPPED) {
                kprintf("%-14s %-8s %-15s -O%d %-16s skipped: %s\n", "", v->k->variant, v->k->march,
                        v->k->opt_level, "-", v->k->why);
                continue;
            }
            if (v->status == TUNE_SAME) {
                const struct mod_loaded *s = o->v[v->same_as].m;
                kprintf("%-14s %-8s %-15s -O%d %-16s same code as the %s %s -O%d build: timed once, above\n", "",
                        v->m->variant, v->m->march, v->m->opt_level, v->m->hash, s->variant, s->march,
                        s->opt_level);
                continue;
            }
            char check[24];
            if (v->is_ref)
                snprintf(check, sizeof check, "reference");
            else
                snprintf(check, sizeof check, "%s %.1e", v->status == TUNE_OK ? "ok" : "WRONG", v->err);
            const char *mark = j == o->chosen ? (v->is_default ? "  <- chosen (the default)" : "  <- chosen")
                             : v->is_default ? "  (default)" : "";
            kprintf("%-14s %-8s %-15s -O%d %-16s %-15s %13llu %13llu %6.1f%% %4d%s\n", "", v->m->variant,
                    v->m->march, v->m->opt_level, v->m->hash, check, (unsigned long long)v->min,
                    (unsigned long long)v->med, spread(v), v->reps, mark);
        }
    }
}

/* Records of every measured op's choice, plus the earlier choices (same
 * CPU tag) of ops not measured now. */
static int build_records(const struct tune_report *r, struct fluid_cache_choice *c)
{
    int n = 0;
    uint64_t measured = 0;   /* ops measured now, in either phase */
    for (int i = 0; i < r->n_ops; i++) {
        const struct tune_op *o = &r->op[i];
        if (o->chosen < 0)
            continue;
        const struct tune_variant *v = &o->v[o->chosen];
        struct fluid_cache_choice *x = &c[n++];
        memset(x, 0, sizeof *x);
        x->op = (uint16_t)o->w->op;
        x->phase = (uint16_t)o->w->phase;
        x->opt_level = (uint32_t)v->m->opt_level;
        snprintf(x->module, sizeof x->module, "%s", v->m->name);
        snprintf(x->march, sizeof x->march, "%s", v->m->march);
        memcpy(x->sha256, v->m->sha256, sizeof x->sha256);
        x->flags = v->m->flags;
        x->cycles = v->min;
        x->default_cycles = o->def >= 0 ? o->v[o->def].min : 0;
        measured |= 1ull << o->w->op;
    }
    if (strcmp(choices.tag, cpu.tag) == 0)
        for (int i = 0; i < choices.n && n < FLUID_CACHE_MAX_CHOICES; i++) {
            const struct fluid_cache_choice *e = &choices.c[i];
            /* an op measured now replaces both of its earlier choices */
            if (!((measured >> e->op) & 1))
                c[n++] = *e;
        }
    return n;
}

int tune_commit(const struct tune_report *r, int save, long stop_after, struct cache_write_result *res,
                char *err, size_t cap)
{
    static struct fluid_cache_choice c[FLUID_CACHE_MAX_CHOICES];
    int n = build_records(r, c);
    /* every call first, then the one-token calls (a decode choice) */
    for (int phase = 0; phase < 2; phase++)
        for (int i = 0; i < r->n_ops; i++) {
            const struct tune_op *o = &r->op[i];
            if (o->chosen < 0 || o->w->phase != (phase ? (int)FLUID_CHOICE_DECODE : (int)FLUID_CHOICE_ALL))
                continue;
            if (phase)
                mod_install_op_decode(o->v[o->chosen].m, o->w->op);
            else
                mod_install_op(o->v[o->chosen].m, o->w->op);
        }
    char id[96];
    model_id_string(id, sizeof id);
    uint64_t gen = 0;
    memset(res, 0, sizeof *res);
    int rc = n;
    if (save) {
        struct cache_choice_meta meta = { cpu.tag, cpu.brand, id, cpu.tsc_hz };
        if (cache_write_choices(c, n, &meta, stop_after, res, err, cap) != 0)
            rc = -1;
        else
            gen = res->generation;
    }
    choice_set(c, n, cpu.tag, cpu.brand, id, cpu.tsc_hz, gen);
    return rc;
}

int tune_clear(struct cache_write_result *res, char *err, size_t cap)
{
    choice_keep_defaults();
    struct cache_choice_meta meta = { cpu.tag, cpu.brand, "", cpu.tsc_hz };
    if (cache_write_choices(NULL, 0, &meta, -1, res, err, cap) != 0)
        return -1;
    for (int op = 0; op < OP_COUNT; op++)
        if (((choices.in_force | choices.in_force_dec) >> op) & 1 && choice_default(op))
            mod_install_op(choice_default(op), op);   /* its decode steps too */
    choice_set(NULL, 0, "", "", "", 0, res->generation);
    return 0;
}
