/* smp.c - for now only the bootstrap processor runs (see ROADMAP.md). */
#include "smp/smp.h"

int smp_online(void)
{
    return 1;
}
