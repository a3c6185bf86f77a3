/*
 * main.c - kmain(): from stage 2's hand-off to the portable core.
 *
 * Order matters: the per-CPU block (FS base) comes first because any
 * llvm-libc call checks the stack canary at %fs:0x28; the console next so
 * every later failure can be reported.
 */
#include <stdio.h>
#include "arch/x86/cpu.h"
#include "boot.h"
#include "dev/acpi.h"
#include "dev/console.h"
#include "dev/power.h"
#include "fluid_start.h"
#include "lib/kprintf.h"
#include "mm/phys.h"
#include "smp/smp.h"
#include "x86/cpu_state.h"
#include "x86/io.h"
#include "x86/irq.h"
#include "x86/percpu.h"
#include "x86/trap.h"

struct boot_info *boot;
struct boot_times boot_times;

static void memory_init(void)
{
    if (phys_init(&kphys, boot->e820, (int)boot->e820_count, boot->mapped_bytes) != 0) {
        kprintf("fatal: the E820 map has no usable memory\n");
        power_fail_stop();
    }
    phys_reserve(&kphys, 0, FLUID_LOW_RESERVED);   /* BIOS, boot data, kernel, modules */
    kprintf("memory: %llu MiB usable, %llu MiB free\n",
            (unsigned long long)(kphys.usable_bytes >> 20),
            (unsigned long long)(phys_free_bytes(&kphys) >> 20));
}

void kmain(struct boot_info *bi)
{
    boot_times.kernel = rdtsc();
    percpu_init(0, 0);
    console_init();
    boot = bi;
    boot_times.stage2 = bi->tsc_stage2;
    boot_times.stage2_done = bi->tsc_stage2_done;
    trap_init();
    irq_init();
    kprintf("Fluid kernel\n");
    if (bi->magic != FLUID_BOOTINFO_MAGIC) {
        kprintf("fatal: bad boot info magic 0x%x (not started by Fluid's stage 2?)\n", bi->magic);
        halt_forever();
    }
    cpu_init();
    acpi_init();
    power_init();
    tsc_init();
    kprintf("cpu: %s family 0x%x model 0x%x, x86-64-v%d, tag %s, %d cores, TSC %llu MHz\n",
            cpu.vendor, cpu.family, cpu.model, cpu.level, cpu.tag, acpi.n_cpus,
            (unsigned long long)(cpu.tsc_hz / 1000000));
    memory_init();
    smp_init();   /* after the allocator (AP stacks), before the engine (per-CPU scratch) */
    if (power_test_mode())
        kprintf("test mode: on\n");
    fluid_start();
}
