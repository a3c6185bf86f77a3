/*
 * tune.h - on-target tuning (the `tune` command): for every op the loaded
 * model's forward pass calls, time every variant of it that this boot
 * carries - the image's MODULES region (the -O1 x86-64 scalar baselines
 * and the -O2 builds for x86-64-v2, -v3, -v4+vnni) and the PGO cache (its
 * modules for this CPU's tag, and those of other tags this CPU can run:
 * shape-specialised builds, other -O levels) - on the model's real shapes
 * (mod/tune_work.h), choose the fastest, and keep the choice in the
 * cache region (mod/cache_write.h) so every later boot runs it with no
 * host (mod/choice.h).  FFTW's "wisdom", for one machine.
 *
 * Per op: the scalar baseline runs first and its output is the
 * reference; every other variant's output on the same input must agree
 * with it (tune_work.h: TUNE_TOLERANCE, one quantisation step for the
 * activation quantisers) or it is reported wrong and never chosen.
 * Variants needing CPU features this CPU lacks are listed as skipped.
 * The check run (block 0) also warms caches and workers up and is not
 * counted, except for a variant whose check run and one more run both
 * cost more than TUNE_CUT times the fastest check run: it cannot win, and
 * those two runs are its figures (2 repetitions; a wrong variant's figure
 * is its one check run).  The others are timed `reps` times, round-robin
 * over the variants (so a change in machine load hits all alike),
 * repetition r on block r's weights.  Reported:
 * minimum, median and spread ((max - min) / min) of TSC cycles per
 * token; chosen: the smallest minimum (the estimate least disturbed by
 * other work on the machine), unless the default's minimum is within
 * TUNE_KEEP of it: a choice must pay more than the run-to-run noise of
 * a memory-bound decode step here (prefetch alternatives of Q8_0 came
 * within 6 % of each other, in a changing order), or it only trades one
 * build for another at random.  Matrix products run with their weights
 * evicted from the caches first (tune_work.h TUNE_EVICT_BYTES).
 */
#ifndef FLUID_TUNE_H
#define FLUID_TUNE_H

#include <stdint.h>
#include "mod/cache_write.h"
#include "mod/loader.h"
#include "mod/tune_work.h"

#define TUNE_REPS 5             /* default repetitions per variant */
#define TUNE_MAX_REPS 32
#define TUNE_MAX_VARIANTS 32    /* variants of one op (loaded and skipped) */
#define TUNE_CUT 2.0
#define TUNE_KEEP 0.03          /* the default stays unless beaten by more than 3 % */

enum tune_status {
    TUNE_OK,                    /* agrees with the reference (or is it) */
    TUNE_WRONG,                 /* output differs: never chosen */
    TUNE_SKIPPED,               /* this CPU cannot run it */
    TUNE_SAME,                  /* the same code (body SHA-256) as variant same_as: timed once */
};

struct tune_variant {
    struct mod_loaded *m;       /* NULL when skipped */
    const struct mod_skipped *k;/* the skipped module */
    enum tune_status status;
    int is_ref, is_default;
    int same_as;                /* TUNE_SAME: index of the identical variant */
    double err;                 /* deviation from the reference (tune_work_compare) */
    uint64_t first;             /* the check run's cost */
    int reps;
    uint64_t cost[TUNE_MAX_REPS]; /* TSC cycles per token, per timed repetition */
    uint64_t min, med, max;
};

struct tune_op {
    struct tune_work *w;
    int n;
    struct tune_variant v[TUNE_MAX_VARIANTS];
    int chosen, def;            /* indices into v (def -1: the default is not timed) */
};

struct tune_report {
    int reps;
    int evicted;                /* matrix products timed with cold caches (tune_work_evicts) */
    int n_ops;
    struct tune_op op[TUNE_MAX_WORKS];
    struct tune_work work[TUNE_MAX_WORKS];
};

/*
 * Measure (profiling counters are left untouched).  poll(ctx) is called
 * between runs; nonzero stops the measurement.  Returns 0 and fills *r,
 * or -1 with the reason in err (no model, no memory, interrupted).
 */
int tune_measure(int reps, int (*poll)(void *), void *ctx, struct tune_report *r, char *err, size_t cap);

/* The measured table, one line per variant. */
void tune_print(const struct tune_report *r);

/*
 * Put the chosen variant of every measured op in force now and, when
 * save, write the choices (with those kept from an earlier `tune` on this
 * CPU tag for ops not measured now) as a new cache generation
 * (cache_write_choices; stop_after as there).  Returns the number of
 * choices, or -1 with the reason in err (the choices are then in force for
 * this session only; the disk keeps its previous generation).
 */
int tune_commit(const struct tune_report *r, int save, long stop_after, struct cache_write_result *res,
                char *err, size_t cap);

/* `tune clear`: every op back to its default variant, and (save) a new
 * generation without choices.  Returns 0 or -1 with err. */
int tune_clear(struct cache_write_result *res, char *err, size_t cap);
#endif
