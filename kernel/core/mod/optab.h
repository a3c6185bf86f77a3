/*
 * optab.h - the module table: the only way the forward pass reaches a
 * compute kernel.  Each slot names one op, the function currently serving
 * it, where that function came from (baseline module or PGO cache) and its
 * profile counters.
 *
 * Op ids are part of the module ABI (modules/module_abi.h): append only.
 */
#ifndef FLUID_OPTAB_H
#define FLUID_OPTAB_H

#include <stdint.h>
#include "ops.h"
#include "module_abi.h"
#include "plat/plat.h"   /* FLUID_MAX_CPUS */

/* FLUID_OP_LIST and enum fluid_op (op ids) live in the module ABI. */

/* Per-CPU counters of one op (cycles from the TSC). */
struct op_stats {
    uint64_t calls, cycles, min, max;
    uint64_t bytes, flops;       /* weight bytes read, floating/int ops */
    uint64_t pmu[4];             /* PMU event deltas (mod/pmu.h order:
                                    instructions, core cycles, LLC misses,
                                    branch misses); 0 without a PMU */
} __attribute__((aligned(64)));

/* Where a slot's function came from (its module's loader record). */
struct op_impl {
    void *fn;
    const char *module;          /* module serving it, NULL if none */
    const char *variant;         /* "baseline", "image", "cache", "pf=16K", "none" */
    const char *march;           /* -march tag it was built for */
    int opt_level;
    char hash[17];               /* first 8 bytes of its SHA-256, hex */
};

struct op_slot {
    const char *name;
    void *fn;                    /* the active implementation */
    const char *module;          /* module serving it, NULL if none */
    const char *variant;         /* "baseline", "cache" or "none" */
    const char *march;           /* -march tag it was built for */
    int opt_level;               /* -O level it was built at */
    char hash[17];               /* first 8 bytes of its SHA-256, hex */
    /* A matrix product's calls with one token (decode steps) run dec.fn:
     * fn, unless a tuned decode choice (mod/choice.h) put another variant
     * there.  Set with fn by every install (mod/loader.h). */
    struct op_impl dec;
    struct op_stats stats[FLUID_MAX_CPUS];
};

extern struct op_slot optab[OP_COUNT];
extern int prof_enabled;

/* The services table given to every module (expf, sqrtf). */
extern const struct fluid_services kernel_services;

/* Typed access to the active function of an op. */
#define OPFN(id, type) ((type)optab[OP_##id].fn)

/* Matrix product / dequantisation op for a ggml weight type, or -1. */
int op_mm_for_type(int ggml_type);
int op_dequant_for_type(int ggml_type);
/* The op that puts a matrix of this type into its matmul's x8 layout
 * (modules/ops.h), or -1 when that matmul reads GGUF rows as they are. */
int op_repack_for_type(int ggml_type);

/* Name every slot and leave it empty (fn NULL, variant "none"); the
 * module loader (mod/loader.h) then installs the baseline modules from the
 * image's module region and the PGO cache's modules over them. */
void optab_init(void);
/* Number of ops with no usable module (fn NULL); their names, space
 * separated, go to buf (cap bytes) when buf is not NULL. */
int optab_missing(char *buf, int cap);
#endif
