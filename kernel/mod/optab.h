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
#include "arch/x86/percpu.h"

#define FLUID_OP_LIST(X)                                                 \
    X(MM_F32, "mm_f32")   X(MM_F16, "mm_f16")   X(MM_Q8_0, "mm_q8_0")    \
    X(MM_Q4_0, "mm_q4_0") X(MM_Q4_K, "mm_q4_K") X(MM_Q5_K, "mm_q5_K")    \
    X(MM_Q6_K, "mm_q6_K")                                                \
    X(DQ_F32, "dequant_f32") X(DQ_F16, "dequant_f16")                     \
    X(DQ_Q8_0, "dequant_q8_0") X(DQ_Q4_0, "dequant_q4_0")                 \
    X(DQ_Q4_K, "dequant_q4_K") X(DQ_Q5_K, "dequant_q5_K")                 \
    X(DQ_Q6_K, "dequant_q6_K")                                           \
    X(QUANT_Q8_0, "quantize_q8_0") X(QUANT_Q8_K, "quantize_q8_K")         \
    X(CONVERT_F16, "convert_f16") X(COPY_F32, "copy_f32")                 \
    X(RMSNORM, "rmsnorm") X(ROPE, "rope") X(SWIGLU, "swiglu") X(ADD, "add") \
    X(ATTN_SCORES, "attn_scores") X(SOFTMAX, "softmax") X(ATTN_WSUM, "attn_wsum")

enum fluid_op {
#define OP_ENUM(id, name) OP_##id,
    FLUID_OP_LIST(OP_ENUM)
#undef OP_ENUM
    OP_COUNT
};

/* Per-CPU counters of one op (cycles from the TSC). */
struct op_stats {
    uint64_t calls, cycles, min, max;
    uint64_t bytes, flops;       /* weight bytes read, floating/int ops */
} __attribute__((aligned(64)));

struct op_slot {
    const char *name;
    void *fn;                    /* the active implementation */
    const char *variant;         /* "baseline" or "cache" */
    const char *march;           /* -march tag it was built for */
    int opt_level;               /* -O level it was built at */
    char hash[17];               /* first 8 bytes of its SHA-256, hex */
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

/* Fill every slot with the baseline implementation linked into the
 * kernel (used until modules are loaded, and as the fallback). */
void optab_init_builtin(void);
#endif
