/*
 * loader.h - puts compute modules (modules/module_abi.h) into the module
 * table (mod/optab.h).
 *
 * At boot, mod_boot_load() installs the baseline modules stage 2 loaded
 * from the image's module region (at FLUID_MODULES_LOAD), then the PGO
 * cache's modules for this CPU's tag over them (mod/cache.h).  Every
 * module is checked before its first call - magic, ABI version, sizes,
 * header CRC, body SHA-256 (on the copy that will run), and its required
 * CPU features against CPUID - and a module that fails is never called:
 * the op keeps its baseline.  One console line per outcome.
 */
#ifndef FLUID_LOADER_H
#define FLUID_LOADER_H

#include <stdint.h>
#include "mod/modfmt.h"

struct llama_hparams;

#define MOD_MAX_LOADED 192
#define MOD_NOT_FOR_THIS_CPU -2   /* mod_load_one(): a per-ISA build for other CPUs */
#define MOD_MAX_REJECTS 48
#define MOD_MAX_SKIPPED 64

/* A module in memory, serving one or more ops. */
struct mod_loaded {
    char name[32];
    char march[48];
    char compiler[64];
    char hash[17];               /* first 8 bytes of the body SHA-256, hex */
    const char *variant;         /* "baseline", "image" (a per-ISA build), "cache", or
                                    its build parameters ("pf=16K": an alternative
                                    build, FLUID_MOD_F_ALT) in label */
    char label[16];              /* an alternative's parameters (modfmt_param_label) */
    uint64_t generation;         /* cache generation (0: baseline) */
    uint64_t features;           /* required CPU features */
    int opt_level;
    uint32_t flags;              /* FLUID_MOD_F_* */
    void *base;                  /* the body, 4 KiB aligned */
    uint32_t bytes;              /* body bytes */
    uint32_t n_shapes;
    struct fluid_mod_shape shape[FLUID_MOD_MAX_SHAPES];
    int shape_match;             /* after mod_check_shapes: 1 match, 0 not, -1 unknown */
    int n_ops;                   /* ops currently served by it */
    uint8_t sha256[32];          /* its body's SHA-256 (tuned choices name it) */
    uint32_t n_entries;          /* the ops it implements (served or not) */
    struct fluid_mod_entry entry[FLUID_MOD_MAX_ENTRIES];
};

/* A checked module this CPU cannot run (a per-ISA build or a cache tag
 * for other CPUs): kept so `tune` can say which variants it skipped. */
struct mod_skipped {
    char name[32];
    char march[48];
    const char *variant;         /* "image", "cache" or label */
    char label[16];
    uint32_t flags;              /* FLUID_MOD_F_* */
    int opt_level;
    uint64_t ops;                /* bit op: it implements op */
    char why[120];               /* "requires AVX512F ..., which this CPU lacks" */
};

/* A module refused, with its one-line reason. */
struct mod_reject {
    char what[80];               /* "cache x86-64-v3 gen 2: mm_q4_0" */
    char why[160];
};

struct mod_state {
    int baseline_loaded, baseline_rejected;
    int isa_loaded, isa_skipped;   /* per-ISA builds: loaded, built for other CPUs */
    int alt_loaded, alt_skipped;   /* alternative builds (FLUID_MOD_F_ALT), the same */
    int cache_loaded, cache_rejected;
    int n_loaded;
    struct mod_loaded loaded[MOD_MAX_LOADED];
    int n_rejects;
    struct mod_reject rejects[MOD_MAX_REJECTS];
    int n_skipped;
    struct mod_skipped skipped[MOD_MAX_SKIPPED];
};

extern struct mod_state mods;

/*
 * Load every module: the baseline region, then the cache.  Prints
 * "modules: N baseline modules loaded (K ops), M rejected" and the cache's
 * lines.  Returns 0 when every op has a module, else -1 after printing
 * which ops have none (the model cannot run then).
 */
int mod_boot_load(void);

/*
 * Check the module file at p (avail bytes) and, if it passes and this CPU
 * has its features, copy its body to fresh memory, check the copy's
 * SHA-256, call its init with the kernel services and point its ops' table
 * slots at it.  `variant` is "baseline" or "cache", `what` names it in
 * messages ("image" replaces it for a per-ISA build, FLUID_MOD_F_ISA).
 * An alternative build (FLUID_MOD_F_ALT) is loaded but serves no op: it
 * runs only when a tuned choice names it (mod/choice.h).
 * Returns 0; MOD_NOT_FOR_THIS_CPU, silently, for a per-ISA build that
 * needs features this CPU lacks; or -1 after recording and printing the
 * reason.
 * *file_bytes gets the file's length when its header was readable (so a
 * caller walking a list can skip it), else 0.
 */
int mod_load_one(const void *p, size_t avail, const char *variant, uint64_t generation,
                 const char *what, uint32_t *file_bytes);

/*
 * As mod_load_one, but the module's ops keep what serves them now: it is
 * only kept in memory as a variant `tune` may time and choose (a cache
 * module of another CPU tag this CPU can run).  A module needing features
 * this CPU lacks is recorded in mods.skipped and MOD_NOT_FOR_THIS_CPU
 * returned, silently.
 */
int mod_load_candidate(const void *p, size_t avail, const char *variant, uint64_t generation,
                       const char *what, uint32_t *file_bytes);

/* The function of module m for op, or NULL when m does not implement it. */
void *mod_op_fn(const struct mod_loaded *m, int op);
/* Make m serve op, every call of it, decode steps too (it must implement
 * it; returns -1 otherwise). */
int mod_install_op(struct mod_loaded *m, int op);
/* Make m serve only op's one-token calls (optab[op].dec; a tuned decode
 * choice).  Returns -1 when m does not implement op or op has no module
 * for its other calls. */
int mod_install_op_decode(struct mod_loaded *m, int op);
/* The loaded module whose body hashes to sha256 and implements op, or NULL. */
struct mod_loaded *mod_find(const uint8_t sha256[32], int op);

/* Record a rejection and print "modules: <what> rejected: <why>". */
void mod_reject(const char *what, const char *why);

/*
 * After the model is loaded: compare the shape constants of every
 * shape-specialised module with the model's (hp) and print one line per
 * module (match: its constant-trip-count path runs; mismatch: its runtime
 * check takes the generic path).
 */
void mod_check_shapes(const struct llama_hparams *hp);

/* The loaded module serving op, or NULL; its one-token calls. */
const struct mod_loaded *mod_for_op(int op);
const struct mod_loaded *mod_for_op_decode(int op);
#endif
