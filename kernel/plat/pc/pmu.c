/* pmu.c - the pc platform's performance counters: detection and
 * programming through MSRs, read with rdpmc (see core/mod/pmu.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "x86/io.h"
#include "lib/kprintf.h"
#include "mod/pmu.h"
#include "pmu_pc.h"


#define INTEL_PERFEVTSEL0 0x186u
#define INTEL_PMC0 0xC1u
#define INTEL_GLOBAL_CTRL 0x38Fu
#define AMD_PERF_CTL0 0xC0010200u
#define AMD_PERF_CTR0 0xC0010201u
#define SEL_USR (1ull << 16)
#define SEL_OS (1ull << 17)
#define SEL_EN (1ull << 22)

/* Event select value per event (0: absent) and the MSRs of counter n. */
static uint64_t evsel[PMU_EVENTS];
static int is_amd;

static uint32_t ctl_msr(int n) { return is_amd ? AMD_PERF_CTL0 + 2u * (uint32_t)n : INTEL_PERFEVTSEL0 + (uint32_t)n; }
static uint32_t ctr_msr(int n) { return is_amd ? AMD_PERF_CTR0 + 2u * (uint32_t)n : INTEL_PMC0 + (uint32_t)n; }

static void program(void)
{
    uint64_t global = 0;
    for (int e = 0; e < PMU_EVENTS; e++) {
        int n = pmu.counter[e];
        if (n < 0)
            continue;
        wrmsr(ctl_msr(n), 0);
        wrmsr(ctr_msr(n), 0);
        wrmsr(ctl_msr(n), evsel[e] | SEL_USR | SEL_OS | SEL_EN);
        global |= 1ull << n;
    }
    if (!is_amd && pmu.version >= 2)
        wrmsr(INTEL_GLOBAL_CTRL, global);
}

static void fail(const char *why)
{
    snprintf(pmu.why, sizeof pmu.why, "%s", why);
    pmu.available = 0;
    pmu.kind = "none";
    for (int e = 0; e < PMU_EVENTS; e++)
        pmu.counter[e] = -1;
    kprintf("pmu: none (%s); profiles report \"pmu\": null\n", why);
}

void pmu_init(void)
{
    uint32_t r[4];
    int n = 0;
    is_amd = strcmp(cpu.vendor, "AuthenticAMD") == 0 || strcmp(cpu.vendor, "HygonGenuine") == 0;
    if (strcmp(cpu.vendor, "GenuineIntel") == 0) {
        cpuid(0, 0, r);
        if (r[0] < 0xA) {
            fail("CPUID has no leaf 0xA");
            return;
        }
        cpuid(0xA, 0, r);
        pmu.version = (int)(r[0] & 0xFF);
        n = (int)((r[0] >> 8) & 0xFF);
        uint32_t unavailable = r[1], known = (r[0] >> 24) & 0xFF;
        if (pmu.version < 1 || n < 1) {
            fail("CPUID leaf 0xA reports no architectural PMU");
            return;
        }
        /* EBX bit: 0 core cycles, 1 instructions, 4 LLC misses, 6 branch misses. */
        static const int bit[PMU_EVENTS] = { 1, 0, 4, 6 };
        static const uint64_t sel[PMU_EVENTS] = { 0x00C0, 0x003C, 0x412E, 0x00C5 };
        int next = 0;
        for (int e = 0; e < PMU_EVENTS; e++) {
            pmu.counter[e] = -1;
            if ((uint32_t)bit[e] < known && !((unavailable >> bit[e]) & 1) && next < n) {
                evsel[e] = sel[e];
                pmu.counter[e] = next++;
            }
        }
        pmu.kind = "intel-arch";
    } else if (is_amd) {
        cpuid(0x80000000u, 0, r);
        if (r[0] < 0x80000001u) {
            fail("no extended CPUID leaves");
            return;
        }
        cpuid(0x80000001u, 0, r);
        if (!((r[2] >> 23) & 1)) {
            fail("CPUID reports no core performance counters (PerfCtrExtCore)");
            return;
        }
        n = 6;
        static const uint64_t sel[PMU_EVENTS] = { 0xC0, 0x76, 0, 0xC3 };
        int next = 0;
        for (int e = 0; e < PMU_EVENTS; e++) {
            evsel[e] = sel[e];
            pmu.counter[e] = sel[e] ? next++ : -1;
        }
        pmu.kind = "amd-core";
    } else {
        fail("unknown CPU vendor");
        return;
    }
    pmu.n_counters = n;
    program();
    /* Verify with MSR reads that the instruction counter advances. */
    int ci = pmu.counter[PMU_INSTRUCTIONS] >= 0 ? pmu.counter[PMU_INSTRUCTIONS] : pmu.counter[PMU_CYCLES];
    if (ci < 0) {
        fail("neither instructions nor cycles can be counted");
        return;
    }
    uint64_t a = rdmsr(ctr_msr(ci));
    for (volatile int i = 0; i < 100000; i++)
        ;
    uint64_t b = rdmsr(ctr_msr(ci));
    if (b <= a) {
        for (int e = 0; e < PMU_EVENTS; e++)
            if (pmu.counter[e] >= 0)
                wrmsr(ctl_msr(pmu.counter[e]), 0);
        fail("the counters do not count (virtual machine without a PMU?)");
        return;
    }
    pmu.available = 1;
    pmu_active = 1;
    char ev[96];
    int len = 0;
    for (int e = 0; e < PMU_EVENTS; e++)
        if (pmu.counter[e] >= 0)
            len += snprintf(ev + len, sizeof ev - (size_t)len, "%s%s", len ? " " : "", pmu_event_name(e));
    kprintf("pmu: %s v%d, %d counters; counting %s\n", pmu.kind, pmu.version, n, ev);
}

void pmu_init_ap(void)
{
    if (pmu.available)
        program();
}
