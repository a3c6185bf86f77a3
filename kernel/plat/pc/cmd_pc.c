/* cmd_pc.c - the pc platform's own commands: `mem` (the E820 map and the
 * physical allocator) and the test-mode-only `fault`, which raises a CPU
 * exception on purpose so tests can check the exception report. */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "boot.h"
#include "lib/kprintf.h"
#include "mm/phys.h"
#include "plat/plat.h"
#include "shell/shell.h"
#include "smp/smp.h"

static const char *e820_type(uint32_t t)
{
    switch (t) {
    case 1: return "usable";
    case 2: return "reserved";
    case 3: return "ACPI reclaimable";
    case 4: return "ACPI NVS";
    case 5: return "bad memory";
    default: return "other";
    }
}

static int cmd_mem(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("E820 memory map (%u entries):\n", boot->e820_count);
    for (uint32_t i = 0; i < boot->e820_count; i++) {
        const struct e820_entry *e = &boot->e820[i];
        kprintf("  %016llx-%016llx %10llu KiB  %s\n", (unsigned long long)e->base,
                (unsigned long long)(e->base + e->length - 1),
                (unsigned long long)(e->length >> 10), e820_type(e->type));
    }
    kprintf("identity map: %llu GiB in %s pages\n", (unsigned long long)(boot->mapped_bytes >> 30),
            boot->page_size == (1u << 30) ? "1 GiB" : "2 MiB");
    kprintf("allocator: %llu MiB usable, %llu MiB free in %d ranges:\n",
            (unsigned long long)(kphys.usable_bytes >> 20),
            (unsigned long long)(phys_free_bytes(&kphys) >> 20), kphys.n);
    for (int i = 0; i < kphys.n; i++)
        kprintf("  %016llx-%016llx %10llu KiB free\n", (unsigned long long)kphys.free[i].base,
                (unsigned long long)(kphys.free[i].end - 1),
                (unsigned long long)((kphys.free[i].end - kphys.free[i].base) >> 10));
    return 0;
}

/* Deliberate faults so tests can check the exception report. */
static int raise_fault(const char *kind)
{
    if (strcmp(kind, "pf") == 0) {
        volatile uint64_t *bad = (volatile uint64_t *)0xFFFF800000000000ull;
        return (int)*bad;
    }
    if (strcmp(kind, "ud") == 0)
        __asm__ volatile("ud2");
    if (strcmp(kind, "de") == 0) {
        /* In asm: C division by zero is undefined and clang rewrites 1/x. */
        __asm__ volatile("xor %%ecx, %%ecx; mov $1, %%eax; cltd; idivl %%ecx" ::: "eax", "ecx", "edx");
    }
    return 1;
}

static struct { const char *kind; int cpu; } fault_req;

/* plat_parallel_for() body: the chosen CPU faults; any other CPU holds on
 * to its chunk (so the chosen one is left a chunk to claim) for 5 s. */
static void fault_on_cpu(void *ctx, int begin, int end, int worker)
{
    (void)ctx, (void)begin, (void)end;
    if (worker == fault_req.cpu) {
        raise_fault(fault_req.kind);
        return;
    }
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < (cpu.tsc_hz ? cpu.tsc_hz : 1000000000ull) * 5)
        __asm__ volatile("pause");
}

static int cmd_fault(int argc, char **argv, const char *line)
{
    (void)line;
    const char *kind = argc > 1 ? argv[1] : "pf";
    if (strcmp(kind, "pf") != 0 && strcmp(kind, "ud") != 0 && strcmp(kind, "de") != 0) {
        kprintf("error: fault kind must be pf, ud or de\n");
        return 1;
    }
    if (argc < 3)
        return raise_fault(kind);
    long c;
    if (shell_parse_long(argv[2], &c) != 0 || c < 0 || c >= smp_online()) {
        kprintf("error: cpu must be 0..%d\n", smp_online() - 1);
        return 1;
    }
    fault_req.kind = kind;
    fault_req.cpu = (int)c;
    plat_parallel_for(smp_online(), fault_on_cpu, 0);
    kprintf("error: cpu %ld did not take the fault\n", c);
    return 1;
}

const struct shell_cmd plat_commands[] = {
    { "mem", "", "E820 memory map and allocator state", cmd_mem, 0 },
    { "fault", "[pf|ud|de] [cpu]", "raise a CPU exception, on core `cpu` if given (test mode only)", cmd_fault, 1 },
    { 0 },
};
