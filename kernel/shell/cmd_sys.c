/* cmd_sys.c - machine commands: info, mem, reboot, poweroff, and the
 * test-mode-only `fault` that raises a CPU exception on purpose. */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/io.h"
#include "boot.h"
#include "dev/acpi.h"
#include "dev/power.h"
#include "lib/kprintf.h"
#include "mm/phys.h"
#include "shell/shell.h"
#include "smp/smp.h"

static double ms(uint64_t from, uint64_t to)
{
    return to > from ? (double)tsc_to_us(to - from) / 1000.0 : 0.0;
}

static int cmd_info(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    static char feats[1024];
    cpu_feature_string(cpu.features, feats, sizeof feats);
    kprintf("CPU:       %s, family 0x%x model 0x%x stepping %u\n", cpu.vendor,
            cpu.family, cpu.model, cpu.stepping);
    if (cpu.brand[0])
        kprintf("           %s\n", cpu.brand);
    kprintf("features:  %s\n", feats);
    kprintf("x86-64:    level v%d, module tag %s, XCR0 0x%llx\n", cpu.level, cpu.tag,
            (unsigned long long)cpu.xcr0);
    kprintf("cores:     %d found (ACPI MADT), %d online, idle workers wait with %s\n",
            acpi.n_cpus, smp_online(), smp_wait_mode());
    kprintf("memory:    %llu MiB usable, %llu MiB free (largest block %llu MiB)\n",
            (unsigned long long)(kphys.usable_bytes >> 20),
            (unsigned long long)(phys_free_bytes(&kphys) >> 20),
            (unsigned long long)(phys_largest_free(&kphys) >> 20));
    kprintf("TSC:       %llu Hz (%s)\n", (unsigned long long)cpu.tsc_hz, cpu.tsc_source);
    kprintf("boot:      stage 2 %.1f ms, kernel to prompt %.1f ms, stage 2 to prompt %.1f ms\n",
            ms(boot_times.stage2, boot_times.stage2_done),
            ms(boot_times.kernel, boot_times.prompt),
            ms(boot_times.stage2, boot_times.prompt));
    return 0;
}

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

static int cmd_reboot(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("rebooting\n");
    power_reboot();
}

static int cmd_poweroff(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("powering off\n");
    power_off();
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

/* smp_parallel_for() body: the chosen CPU faults; any other CPU holds on
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
    smp_parallel_for(smp_online(), fault_on_cpu, 0);
    kprintf("error: cpu %ld did not take the fault\n", c);
    return 1;
}

const struct shell_cmd sys_commands[] = {
    { "info", "", "CPU, features, x86-64 level, cores, memory, TSC, boot times", cmd_info, 0 },
    { "mem", "", "E820 memory map and allocator state", cmd_mem, 0 },
    { "reboot", "", "restart the machine", cmd_reboot, 0 },
    { "poweroff", "", "switch the machine off (ACPI)", cmd_poweroff, 0 },
    { "fault", "[pf|ud|de] [cpu]", "raise a CPU exception, on core `cpu` if given (test mode only)", cmd_fault, 1 },
    { 0 },
};
