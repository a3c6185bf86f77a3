/* tsc.c - TSC frequency on the pc platform: CPUID when it tells
 * (arch/x86/cpu.c), else calibration against PIT channel 2 (median of
 * three 20 ms windows). */
#include "arch/x86/cpu.h"
#include "x86/cpu_state.h"
#include "x86/io.h"

static uint64_t pit_calibrate(void)
{
    const uint32_t ms = 20, ticks = 1193182u * ms / 1000u;
    outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01));   /* gate on, speaker off */
    outb(0x43, 0xB0);                                    /* ch2, lo/hi, mode 0 */
    outb(0x42, (uint8_t)ticks);
    outb(0x42, (uint8_t)(ticks >> 8));
    uint64_t t0 = rdtsc();
    while (!(inb(0x61) & 0x20))                          /* OUT2 goes high */
        cpu_relax();
    return (rdtsc() - t0) * 1000u / ms;
}

void tsc_init(void)
{
    if (tsc_hz_from_cpuid() == 0)
        return;
    /* Median of three: one window stretched by a descheduled vCPU (or an
     * emulator under load) must not skew every later figure. */
    uint64_t a = pit_calibrate(), b = pit_calibrate(), c = pit_calibrate();
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    cpu.tsc_hz = c < lo ? lo : c > hi ? hi : c;
    cpu.tsc_source = "PIT calibration";
}
