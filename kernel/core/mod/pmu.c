/* pmu.c - the profiler's view of the PMU (see pmu.h); the platform fills
 * it in plat_pmu_init(). */
#include "mod/pmu.h"

struct pmu_info pmu = { 0, "none", 0, 0, { -1, -1, -1, -1 }, "" };
int pmu_active;

const char *pmu_event_name(int e)
{
    static const char *const names[PMU_EVENTS] = { "instructions", "cycles", "llc_misses", "branch_misses" };
    return e >= 0 && e < PMU_EVENTS ? names[e] : "?";
}
