/* tsc.c - TSC frequency: CPUID 0x15 (crystal ratio), the hypervisor leaf
 * 0x40000010 (TSC kHz, as KVM/VMware publish it), CPUID 0x16 (base MHz),
 * else calibration against PIT channel 2 (median of three 20 ms windows). */
#include "arch/x86/cpu.h"
#include "arch/x86/io.h"

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
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max = r[0];
    if (max >= 0x15) {
        cpuid(0x15, 0, r);
        if (r[0] && r[1] && r[2]) {
            cpu.tsc_hz = (uint64_t)r[2] * r[1] / r[0];
            cpu.tsc_source = "CPUID 0x15";
            return;
        }
    }
    if (cpu.features & FEAT_BIT(HYPERVISOR)) {
        cpuid(0x40000000u, 0, r);
        if (r[0] >= 0x40000010u) {
            cpuid(0x40000010u, 0, r);
            if (r[0]) {
                cpu.tsc_hz = (uint64_t)r[0] * 1000u;
                cpu.tsc_source = "hypervisor leaf 0x40000010";
                return;
            }
        }
    }
    if (max >= 0x16 && !(cpu.features & FEAT_BIT(HYPERVISOR))) {
        cpuid(0x16, 0, r);
        if (r[0]) {
            cpu.tsc_hz = (uint64_t)r[0] * 1000000u;
            cpu.tsc_source = "CPUID 0x16";
            return;
        }
    }
    /* Median of three: one window stretched by a descheduled vCPU (or an
     * emulator under load) must not skew every later figure. */
    uint64_t a = pit_calibrate(), b = pit_calibrate(), c = pit_calibrate();
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    cpu.tsc_hz = c < lo ? lo : c > hi ? hi : c;
    cpu.tsc_source = "PIT calibration";
}

uint64_t tsc_to_us(uint64_t ticks)
{
    if (!cpu.tsc_hz)
        return 0;
    return (uint64_t)((unsigned __int128)ticks * 1000000u / cpu.tsc_hz);
}
