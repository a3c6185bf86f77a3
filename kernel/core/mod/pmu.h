/*
 * pmu.h - hardware performance counters for the profiler, where the CPU
 * exposes them.  The platform finds and reads them (plat_pmu_init/read):
 * the hosted platform through Linux's perf_event_open; the pc platform
 * programs them itself:
 *   Intel architectural PMU (CPUID leaf 0xA, Intel SDM vol. 3B ch. 20):
 *     general-purpose counters IA32_PERFEVTSELx (0x186+x) / IA32_PMCx
 *     (0xC1+x), enabled in IA32_PERF_GLOBAL_CTRL (0x38F) from version 2;
 *     events: instructions retired (C0h/00h), unhalted core cycles
 *     (3Ch/00h), LLC misses (2Eh/41h), branch misses retired (C5h/00h),
 *     each only when CPUID.0AH:EBX does not flag it unavailable.
 *   AMD core performance counters (CPUID 0x80000001 ECX bit 23,
 *     PerfCtrExtCore; AMD APM vol. 2 13.2): PERF_CTLn 0xC0010200+2n /
 *     PERF_CTRn 0xC0010201+2n; events: retired instructions (C0h), cycles
 *     not in halt (76h), retired branches mispredicted (C3h).  LLC misses
 *     are counted by the separate L3 PMU on AMD and are reported absent.
 * Detection also checks that a programmed counter really advances (MSR
 * reads) before rdpmc is ever used, so a hypervisor that advertises
 * counters without providing them (or has none: QEMU TCG, the VMs these
 * tests run in) leaves the PMU off and the profile says "pmu": null.
 */
#ifndef FLUID_PMU_H
#define FLUID_PMU_H

#include <stdint.h>
#include "plat/plat.h"

#define PMU_EVENTS 4
enum pmu_event { PMU_INSTRUCTIONS = 0, PMU_CYCLES = 1, PMU_LLC_MISSES = 2, PMU_BRANCH_MISSES = 3 };

struct pmu_info {
    int available;             /* counters programmed and verified */
    const char *kind;          /* "intel-arch" / "amd-core" / "none" */
    int version;               /* Intel arch PMU version (0 on AMD) */
    int n_counters;            /* general-purpose counters of the CPU */
    int counter[PMU_EVENTS];   /* rdpmc index per event, -1 if absent */
    char why[120];             /* why not available */
};

extern struct pmu_info pmu;
/* Nonzero when PROF_CALL also reads the counters (pmu.available and
 * profiling wants it). */
extern int pmu_active;

/* Event name as exported: "instructions", "cycles", "llc_misses",
 * "branch_misses". */
const char *pmu_event_name(int e);

/* Current values of the four event counters on this CPU (0 for absent
 * events): plat_pmu_read(). */
static inline void pmu_read(uint64_t v[PMU_EVENTS])
{
    plat_pmu_read(v);
}
#endif
