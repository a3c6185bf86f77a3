/* prof.c - profile counters (see prof.h). */
#include <string.h>
#include "mod/prof.h"

void prof_reset(void)
{
    for (int i = 0; i < OP_COUNT; i++)
        memset(optab[i].stats, 0, sizeof optab[i].stats);
}
