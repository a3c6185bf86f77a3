/*
 * libc_glue.c - the two symbols llvm-libc needs from its host:
 * __errno_location (errno storage; one per CPU) and __stack_chk_fail
 * (called when a stack-protector canary was overwritten).
 */
#include "x86/percpu.h"
#include "lib/kprintf.h"
#include "dev/power.h"

static int errno_slot[FLUID_MAX_CPUS];

int *__errno_location(void)
{
    return &errno_slot[this_cpu_id_safe()];
}

__attribute__((noreturn)) void __stack_chk_fail(void)
{
    kprintf("\n*** kernel stack smashing detected on cpu %d: halted ***\n", this_cpu_id_safe());
    power_fail_stop();
}
