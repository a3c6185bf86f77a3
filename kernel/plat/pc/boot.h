/* boot.h - what the kernel keeps from boot: the boot info from stage 2 and
 * the TSC at each boot milestone. */
#ifndef FLUID_BOOT_H
#define FLUID_BOOT_H
#include <stdint.h>
#include "fluid/bootinfo.h"

struct boot_times {
    uint64_t stage2;        /* TSC at stage-2 entry */
    uint64_t stage2_done;   /* TSC at the jump to the kernel */
    uint64_t kernel;        /* TSC at kmain() entry */
    uint64_t prompt;        /* TSC when the prompt was first ready */
};

extern struct boot_info *boot;
extern struct boot_times boot_times;
#endif
