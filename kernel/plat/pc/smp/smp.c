/*
 * smp.c - starting the application processors, the parallel-for, and
 * stopping every core when one panics (see smp.h).
 */
#include <stdatomic.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "x86/cpu_state.h"
#include "x86/io.h"
#include "x86/percpu.h"
#include "x86/trap.h"
#include "dev/acpi.h"
#include "lib/kprintf.h"
#include "mm/phys.h"
#include "smp/lapic.h"
#include "mod/pmu.h"
#include "pmu_pc.h"
#include "plat/common/pfor.h"
#include "smp/smp.h"
#include "smp/trampoline.h"

#define AP_STACK_BYTES (128u << 10)
#define SPIN_US 20000u             /* a worker sleeps when no job came for this long */
#define WAKE_VECTOR 0xF0u          /* IPI that ends a sleeping worker's hlt */
#define START_TIMEOUT_MS 1000u     /* after the second start-up IPI */
#define MSR_EFER 0xC0000080u
#define EFER_LMA (1ull << 10)
#define CR4_PCIDE (1ull << 17)

struct smp_boot_slot smp_boot_slots[FLUID_MAX_CPUS];
uint32_t smp_boot_count;

extern const char smp_tramp_start[], smp_tramp_end[];
extern const char tramp_cr0[], tramp_cr3[], tramp_cr4[], tramp_efer[], tramp_entry[];
extern void smp_ap_entry64(void), smp_wake_isr(void), smp_spurious_isr(void);
void smp_ap_main(uint32_t id, uint32_t apic_id);

/* Start-up state of each per-CPU id; STARTING -> ONLINE by the AP, or
 * STARTING -> ABANDONED by the BSP at the timeout (whoever swaps first). */
enum { AP_NONE, AP_STARTING, AP_ONLINE, AP_ABANDONED };
static _Atomic int ap_state[FLUID_MAX_CPUS];

/* How waiting CPUs spin (see choose_wait_mode()). */
enum { WAIT_PAUSE, WAIT_MWAIT, WAIT_SPIN };
static const char *const wait_names[] = { "pause", "mwait", "plain loads" };
static int wait_mode;

static int n_ids = 1, lapic_ok;
static uint32_t bsp_mxcsr;

/* The APs' IDT: the kernel's 32 exception gates (trap.c) plus the wake-up
 * and spurious vectors (Intel SDM vol. 3A 6.14.1, 64-bit gate layout). */
struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t ist, flags;
    uint16_t off_mid;
    uint32_t off_hi, zero;
} __attribute__((packed));
struct idt_ptr { uint16_t limit; uint64_t base; } __attribute__((packed));
static struct idt_gate ap_idt[256] __attribute__((aligned(16)));

static _Atomic int panic_cpu = -1;

int smp_online(void) { return pfor_workers(); }
int smp_cpu_ids(void) { return n_ids; }
const char *smp_wait_mode(void) { return wait_names[wait_mode]; }

/* One step of a busy wait.  Under QEMU TCG `pause` (and mwait) leave the
 * translated code and take QEMU's global lock every time, so a spinning
 * vCPU slows the others; WAIT_SPIN is only chosen there. */
static inline void relax(void)
{
    if (wait_mode == WAIT_SPIN)
        __asm__ volatile("" ::: "memory");
    else
        cpu_relax();
}

static void delay_us(uint64_t us)
{
    uint64_t t0 = rdtsc(), ticks = cpu.tsc_hz / 1000000u * us;
    while (rdtsc() - t0 < ticks)
        cpu_relax();
}

/* The parallel-for's waiting (plat/common/pfor.h) on this platform. */
static void hook_spin(const _Atomic uint64_t *word, uint64_t seen_word)
{
    if (wait_mode == WAIT_MWAIT) {
        /* SDM vol. 2B MONITOR/MWAIT: arm, re-check, sleep until the
         * monitored line is written (interrupts are off: ECX = 0). */
        __asm__ volatile("monitor" ::"a"(word), "c"(0), "d"(0));
        if (atomic_load_explicit(word, memory_order_acquire) == seen_word)
            __asm__ volatile("mwait" ::"a"(0), "c"(0));
    } else {
        relax();
    }
}

/* An IPI that arrives after pfor's re-check stays pending (interrupts are
 * off on a worker) and ends the hlt at once: sti's interrupt shadow covers
 * the hlt. */
static void hook_sleep(const _Atomic uint64_t *word, uint32_t seen)
{
    if ((uint32_t)(atomic_load(word) >> 32) == seen)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    if (lapic_in_service(WAKE_VECTOR))
        lapic_eoi();
}

static void hook_wake(uint64_t mask)
{
    while (mask) {
        int id = __builtin_ctzll(mask);
        mask &= mask - 1;
        lapic_send_ipi(percpu_blocks[id].apic_id, LAPIC_DM_FIXED | LAPIC_LEVEL_ASSERT | WAKE_VECTOR);
    }
}

static const struct pfor_hooks hooks = { relax, hook_spin, hook_sleep, hook_wake };

/* C entry of an application processor, from smp_ap_entry64 on its own
 * stack.  No stack protector here: FS (and so the canary at %fs:0x28) is
 * only valid after percpu_init(). */
__attribute__((noreturn, no_stack_protector)) void smp_ap_main(uint32_t id, uint32_t apic_id)
{
    percpu_init(id, apic_id);
    trap_init_ap();
    struct idt_ptr ip = { sizeof ap_idt - 1, (uint64_t)(uintptr_t)ap_idt };
    __asm__ volatile("lidt %0" ::"m"(ip));
    cpu_init_ap();
    pmu_init_ap();      /* program this core's counters like the BSP's */
    __asm__ volatile("ldmxcsr %0" ::"m"(bsp_mxcsr));   /* same rounding as the BSP */
    lapic_init_ap();
    int expect = AP_STARTING;
    if (!atomic_compare_exchange_strong(&ap_state[id], &expect, AP_ONLINE))
        halt_forever();                   /* too late: the BSP gave up on us */
    pfor_worker_loop(id);
}

int smp_panic_enter(void)
{
    int me = this_cpu_id_safe(), expect = -1;
    if (!atomic_compare_exchange_strong(&panic_cpu, &expect, me))
        return -1;                        /* someone else reports (or nested) */
    if (lapic_ok && smp_online() > 1) {
        for (uint32_t i = 0; i <= smp_boot_count; i++) {
            /* i == smp_boot_count stands for the BSP (per-CPU id 0). */
            uint32_t id = i < smp_boot_count ? smp_boot_slots[i].cpu_id : 0;
            uint32_t apic = i < smp_boot_count ? smp_boot_slots[i].apic_id : percpu_blocks[0].apic_id;
            if ((int)id == me || (id != 0 && atomic_load(&ap_state[id]) != AP_ONLINE))
                continue;
            lapic_send_ipi(apic, LAPIC_DM_NMI | LAPIC_LEVEL_ASSERT);
        }
    }
    return 0;
}

/* Body of the round-trip measurement: whoever runs a chunk on the BSP
 * holds it until every chunk is claimed (10 ms at most), so each round
 * trip includes every worker's wake-up and claim. */
static void ping_job(void *ctx, int begin, int end, int w)
{
    (void)ctx, (void)begin, (void)end;
    if (w != 0)
        return;
    uint64_t t0 = rdtsc();
    while (pfor_claimed() < (uint32_t)smp_online() &&
           rdtsc() - t0 < cpu.tsc_hz / 100)
        relax();
}

/* Microseconds of the fastest of up to 64 plat_parallel_for() round trips
 * with `mode`, after one to warm up (host noise under QEMU only ever adds
 * time); stops after ~10 ms so a busy host cannot stretch the boot. */
static double round_trip_us(int mode)
{
    wait_mode = mode;
    plat_parallel_for(smp_online(), ping_job, 0);
    uint64_t best = ~0ull, start = rdtsc();
    for (int i = 0; i < 64 && (i < 4 || rdtsc() - start < cpu.tsc_hz / 100); i++) {
        uint64_t t0 = rdtsc();
        plat_parallel_for(smp_online(), ping_job, 0);
        uint64_t t = rdtsc() - t0;
        if (t < best)
            best = t;
    }
    return (double)tsc_to_us(best * 1000u) / 1000.0;
}

/*
 * How waiting CPUs spin, by measured round trip: pause; monitor/mwait
 * where CPUID leaf 1 ECX bit 3 offers it (taken when no slower than 1.1x
 * pause: it saves power and leaves a hyperthread sibling the core); plain
 * loads only under TCG, where pause and mwait both exit to QEMU's main
 * loop (a host-side round trip through its global lock) and no sibling
 * shares the core.  Fills t[mode] in microseconds (0: not measured).
 */
static void choose_wait_mode(double t[3])
{
    uint32_t r[4];
    cpuid(1, 0, r);
    t[WAIT_PAUSE] = round_trip_us(WAIT_PAUSE);
    t[WAIT_MWAIT] = (r[2] >> 3) & 1 ? round_trip_us(WAIT_MWAIT) : 0;
    t[WAIT_SPIN] = cpu_under_tcg() ? round_trip_us(WAIT_SPIN) : 0;
    int best = WAIT_PAUSE;
    if (t[WAIT_MWAIT] > 0 && t[WAIT_MWAIT] <= 1.1 * t[WAIT_PAUSE])
        best = WAIT_MWAIT;
    if (t[WAIT_SPIN] > 0 && t[WAIT_SPIN] < t[best])
        best = WAIT_SPIN;
    wait_mode = best;
}

static struct idt_gate gate(void (*isr)(void), uint16_t sel)
{
    uint64_t a = (uint64_t)(uintptr_t)isr;
    return (struct idt_gate){ .off_lo = (uint16_t)a, .sel = sel, .flags = 0x8E,
                              .off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32) };
}

/* ap_idt = the BSP's exception gates + the wake-up and spurious vectors. */
static void build_ap_idt(void)
{
    struct idt_ptr cur;
    uint16_t cs;
    __asm__ volatile("sidt %0" : "=m"(cur));
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    size_t bytes = (size_t)cur.limit + 1;
    memcpy(ap_idt, (const void *)(uintptr_t)cur.base, bytes < sizeof ap_idt ? bytes : sizeof ap_idt);
    ap_idt[WAKE_VECTOR] = gate(smp_wake_isr, cs);
    ap_idt[LAPIC_SPURIOUS_VECTOR] = gate(smp_spurious_isr, cs);
}

/* Copy the trampoline to low memory and fill its slots with this CPU's
 * control registers.  Returns 0, or -1 if CR3 is above 4 GiB (the 32-bit
 * code cannot load it). */
static int install_trampoline(void)
{
    uint64_t cr3 = read_cr3();
    size_t size = (size_t)(smp_tramp_end - smp_tramp_start);
    if (cr3 >> 32 || size > SMP_TRAMPOLINE_MAX)
        return -1;
    uint8_t *t = (uint8_t *)(uintptr_t)SMP_TRAMPOLINE_ADDR;
    memcpy(t, smp_tramp_start, size);
#define SLOT(sym, type) (*(type *)(t + ((sym) - smp_tramp_start)))
    SLOT(tramp_cr0, uint32_t) = (uint32_t)read_cr0();
    SLOT(tramp_cr3, uint32_t) = (uint32_t)cr3;
    SLOT(tramp_cr4, uint32_t) = (uint32_t)(read_cr4() & ~CR4_PCIDE);
    SLOT(tramp_efer, uint64_t) = rdmsr(MSR_EFER) & ~EFER_LMA;
    SLOT(tramp_entry, uint64_t) = (uint64_t)(uintptr_t)smp_ap_entry64;
#undef SLOT
    atomic_thread_fence(memory_order_seq_cst);
    return 0;
}

void smp_init(void)
{
    int found = acpi.n_cpus > 0 ? acpi.n_cpus : 1;
    __asm__ volatile("stmxcsr %0" : "=m"(bsp_mxcsr));
    if (found == 1) {
        kprintf("smp: 1 of 1 cores online\n");
        return;
    }
    if (lapic_init(acpi.lapic_base) != 0) {
        kprintf("smp: no usable local APIC: 1 of %d cores online\n", found);
        return;
    }
    lapic_ok = 1;
    pfor_setup(&hooks, cpu.tsc_hz / 1000000u * SPIN_US);
    build_ap_idt();
    uint32_t me = lapic_id();
    this_cpu()->apic_id = me;
    if (install_trampoline() != 0) {
        kprintf("smp: cannot place the AP trampoline: 1 of %d cores online\n", found);
        return;
    }

    /* One slot and stack per AP, in MADT order: per-CPU ids 1, 2, ... */
    uint32_t n = 0;
    for (int i = 0; i < acpi.n_cpus && n + 1 < FLUID_MAX_CPUS; i++) {
        uint32_t apic = acpi.apic_ids[i];
        if (apic == me)
            continue;
        if (apic > 254 && !lapic_x2apic()) {
            kprintf("smp: APIC id %u needs x2APIC mode: core left out\n", apic);
            continue;
        }
        uint64_t stack = phys_alloc(&kphys, AP_STACK_BYTES, PHYS_PAGE);
        if (!stack) {
            kprintf("smp: no memory for AP stacks\n");
            break;
        }
        smp_boot_slots[n] = (struct smp_boot_slot){ apic, n + 1, stack + AP_STACK_BYTES };
        atomic_store(&ap_state[n + 1], AP_STARTING);
        n++;
    }
    smp_boot_count = n;
    atomic_thread_fence(memory_order_seq_cst);

    /* SDM vol. 3A 8.4.4.1: INIT, wait 10 ms, start-up IPI, wait 200 us,
     * a second start-up IPI, wait 200 us.  Every AP gets each step before
     * the next delay, so the delays are paid once, not per core. */
    uint64_t t_start = rdtsc();
    uint32_t sipi = LAPIC_DM_STARTUP | LAPIC_LEVEL_ASSERT | (SMP_TRAMPOLINE_ADDR >> 12);
    for (uint32_t i = 0; i < n; i++)
        if (lapic_send_ipi(smp_boot_slots[i].apic_id, LAPIC_DM_INIT | LAPIC_LEVEL_ASSERT) != 0)
            kprintf("smp: INIT to APIC id %u not sent (ICR busy)\n", smp_boot_slots[i].apic_id);
    delay_us(10000);
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < n; i++)
            if (atomic_load(&ap_state[i + 1]) == AP_STARTING)
                lapic_send_ipi(smp_boot_slots[i].apic_id, sipi);
        delay_us(200);
    }

    /* Wait for all, then give up on the late ones. */
    uint64_t deadline = rdtsc() + cpu.tsc_hz / 1000u * START_TIMEOUT_MS;
    for (;;) {
        uint32_t up = 0;
        for (uint32_t i = 0; i < n; i++)
            up += atomic_load(&ap_state[i + 1]) == AP_ONLINE;
        if (up == n || rdtsc() > deadline)
            break;
        cpu_relax();
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = i + 1;
        int expect = AP_STARTING;
        if (atomic_compare_exchange_strong(&ap_state[id], &expect, AP_ABANDONED)) {
            kprintf("smp: core with APIC id %u did not start within %u ms: left out\n",
                    smp_boot_slots[i].apic_id, START_TIMEOUT_MS);
            continue;
        }
        pfor_add_worker(id);
        n_ids = (int)id + 1;
    }
    uint64_t t_up = rdtsc() - t_start;
    atomic_thread_fence(memory_order_seq_cst);

    kprintf("smp: %d of %d cores online (started in %llu ms)\n", smp_online(), found,
            (unsigned long long)(tsc_to_us(t_up) / 1000));
    if (smp_online() > 1) {
        double t[3];
        choose_wait_mode(t);
        const char *sep = "";
        kprintf("smp: parallel-for round trip");
        for (int m = 0; m < 3; m++)
            if (t[m] > 0) {
                kprintf("%s %.1f us with %s", sep, t[m], wait_names[m]);
                sep = ",";
            }
        kprintf("; waiting with %s\n", smp_wait_mode());
    }
}
