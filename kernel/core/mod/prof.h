/*
 * prof.h - per-op, per-CPU profiling around module calls.
 *
 * PROF_CALL(op, call, bytes, flops) runs `call` and, when profiling is on,
 * adds its TSC cycles (lfence;rdtsc .. lfence;rdtsc;lfence, see
 * arch/x86/insn.h) and the op's bytes read and floating/integer operations
 * to this CPU's counters.
 */
#ifndef FLUID_PROF_H
#define FLUID_PROF_H

#include "arch/x86/insn.h"
#include "plat/plat.h"
#include "mod/optab.h"
#include "mod/pmu.h"

/* The workload behind the counters since the last prof_reset(): what
 * `gen` ran (kernel/shell/cmd_llm.c adds to it); TSC cycles. */
struct prof_workload {
    uint64_t runs;                 /* gen commands */
    uint64_t prompt_tokens, generated_tokens;
    uint64_t prefill_cycles, decode_cycles;
};
extern struct prof_workload prof_work;

/* Add the PMU deltas since p0 (pmu_read) to this CPU's counters of op. */
static inline void prof_add_pmu(int op, const uint64_t p0[PMU_EVENTS])
{
    uint64_t p1[PMU_EVENTS];
    pmu_read(p1);
    struct op_stats *s = &optab[op].stats[plat_cpu_id()];
    for (int i = 0; i < PMU_EVENTS; i++)
        s->pmu[i] += p1[i] - p0[i];
}

static inline void prof_add(int op, uint64_t cycles, uint64_t bytes, uint64_t flops)
{
    struct op_stats *s = &optab[op].stats[plat_cpu_id()];
    s->calls++;
    s->cycles += cycles;
    if (s->min == 0 || cycles < s->min)
        s->min = cycles;
    if (cycles > s->max)
        s->max = cycles;
    s->bytes += bytes;
    s->flops += flops;
}

#define PROF_CALL(op, call, bytes, flops)                                  \
    do {                                                                   \
        if (prof_enabled) {                                                \
            uint64_t p0_[PMU_EVENTS];                                      \
            if (pmu_active)                                                \
                pmu_read(p0_);                                             \
            uint64_t t0_ = tsc_begin();                                    \
            call;                                                          \
            prof_add((op), tsc_end() - t0_, (bytes), (flops));             \
            if (pmu_active)                                                \
                prof_add_pmu((op), p0_);                                   \
        } else {                                                           \
            call;                                                          \
        }                                                                  \
    } while (0)

/* Zero every counter and the workload. */
void prof_reset(void);
#endif
