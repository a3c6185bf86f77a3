/* power.c - ACPI soft-off (SLP_TYPa|SLP_EN into PM1a_CNT), reset through
 * the FADT reset register or the i8042, and QEMU's isa-debug-exit. */
#include <stdint.h>
#include "x86/io.h"
#include "dev/acpi.h"
#include "dev/fwcfg.h"
#include "dev/power.h"

#define DEBUG_EXIT_PORT 0xF4
static int test_mode;

void power_init(void)
{
    char buf[8];
    test_mode = fwcfg_read_file("opt/fluid/test", buf, sizeof buf) > 0 && buf[0] == '1';
}

int power_test_mode(void)
{
    return test_mode;
}

void power_fail_stop(void)
{
    if (test_mode)
        outl(DEBUG_EXIT_PORT, 1);   /* QEMU exits with (1 << 1) | 1 = 3 */
    halt_forever();
}

void power_off(void)
{
    if (test_mode)
        outl(DEBUG_EXIT_PORT, 0);   /* QEMU exits with status 1 */
    if (acpi.s5_found && acpi.pm1a_cnt) {
        outw(acpi.pm1a_cnt, (uint16_t)(acpi.slp_typa << 10 | 1u << 13));
        if (acpi.pm1b_cnt)
            outw(acpi.pm1b_cnt, (uint16_t)(acpi.slp_typb << 10 | 1u << 13));
    }
    halt_forever();   /* no ACPI soft-off: safe to switch off by hand */
}

void power_reboot(void)
{
    if (acpi.reset_ok)
        outb(acpi.reset_port, acpi.reset_value);
    for (int i = 0; i < 100000 && (inb(0x64) & 2); i++)
        cpu_relax();
    outb(0x64, 0xFE);   /* i8042 CPU reset line */
    /* Last resort: a triple fault with an empty IDT. */
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = { 0, 0 };
    __asm__ volatile("lidt %0; int3" ::"m"(none));
    halt_forever();
}
