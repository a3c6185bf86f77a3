/* cmd_sys.c - machine commands every platform has: info, reboot,
 * poweroff (the platform's own ones are plat_commands). */
#include <stdio.h>
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "plat/plat.h"
#include "shell/shell.h"

static int cmd_info(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    static char feats[1024];
    cpu_feature_string(cpu.features, feats, sizeof feats);
    kprintf("platform:  %s\n", plat_name());
    kprintf("CPU:       %s, family 0x%x model 0x%x stepping %u\n", cpu.vendor,
            cpu.family, cpu.model, cpu.stepping);
    if (cpu.brand[0])
        kprintf("           %s\n", cpu.brand);
    kprintf("features:  %s\n", feats);
    kprintf("x86-64:    level v%d, module tag %s, XCR0 0x%llx\n", cpu.level, cpu.tag,
            (unsigned long long)cpu.xcr0);
    struct plat_mem m;
    plat_mem_stats(&m);
    kprintf("memory:    %llu MiB usable, %llu MiB free (largest block %llu MiB)\n",
            (unsigned long long)(m.usable >> 20), (unsigned long long)(m.free >> 20),
            (unsigned long long)(m.largest >> 20));
    kprintf("TSC:       %llu Hz (%s)\n", (unsigned long long)cpu.tsc_hz, cpu.tsc_source);
    plat_info();
    return 0;
}

static int cmd_reboot(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("rebooting\n");
    plat_reboot();
}

static int cmd_poweroff(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("powering off\n");
    plat_power_off();
}

const struct shell_cmd sys_commands[] = {
    { "info", "", "platform, CPU, features, x86-64 level, cores, memory, TSC, boot times", cmd_info, 0 },
    { "reboot", "", "restart the machine (hosted: re-execute on the same image)", cmd_reboot, 0 },
    { "poweroff", "", "switch the machine off (ACPI; hosted: exit)", cmd_poweroff, 0 },
    { 0 },
};
