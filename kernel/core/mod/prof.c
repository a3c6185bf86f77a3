/* prof.c - profile counters (see prof.h). */
#include <string.h>
#include "mod/prof.h"

struct prof_workload prof_work;

void prof_reset(void)
{
    memset(&prof_work, 0, sizeof prof_work);
    for (int i = 0; i < OP_COUNT; i++)
        memset(optab[i].stats, 0, sizeof optab[i].stats);
}
