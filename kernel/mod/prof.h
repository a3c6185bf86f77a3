/*
 * prof.h - per-op, per-CPU profiling around module calls.
 *
 * PROF_CALL(op, call, bytes, flops) runs `call` and, when profiling is on,
 * adds its TSC cycles (lfence;rdtsc .. rdtscp, see arch/x86/io.h) and the
 * op's bytes read and floating/integer operations to this CPU's counters.
 */
#ifndef FLUID_PROF_H
#define FLUID_PROF_H

#include "arch/x86/io.h"
#include "arch/x86/percpu.h"
#include "mod/optab.h"

static inline void prof_add(int op, uint64_t cycles, uint64_t bytes, uint64_t flops)
{
    struct op_stats *s = &optab[op].stats[this_cpu()->id];
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
            uint64_t t0_ = tsc_begin();                                    \
            call;                                                          \
            prof_add((op), tsc_end() - t0_, (bytes), (flops));             \
        } else {                                                           \
            call;                                                          \
        }                                                                  \
    } while (0)

/* Zero every counter. */
void prof_reset(void);
#endif
