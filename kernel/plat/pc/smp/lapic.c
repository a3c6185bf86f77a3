/* lapic.c - local APIC access for starting and stopping cores (see lapic.h). */
#include <string.h>
#include "arch/x86/cpu.h"
#include "x86/io.h"
#include "mm/phys.h"
#include "smp/lapic.h"

#define MSR_APIC_BASE 0x1Bu
#define APIC_BASE_X2APIC (1u << 10)     /* EXTD */
#define APIC_BASE_ENABLE (1u << 11)     /* global enable */
#define MSR_X2APIC_FIRST 0x800u         /* register r at MSR 0x800 + r/16 */

/* Register offsets (SDM table 10-1). */
#define REG_ID 0x20u
#define REG_EOI 0xB0u
#define REG_SVR 0xF0u
#define REG_ISR0 0x100u                 /* ISR bits 0-31; +0x10 per 32 */
#define REG_ICR_LO 0x300u
#define REG_ICR_HI 0x310u
#define SVR_ENABLE 0x100u
#define ICR_BUSY 0x1000u                /* delivery status: send pending */

#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_PWT 8ull
#define PTE_PCD 16ull
#define PTE_PS 128ull
#define PTE_ADDR 0x000FFFFFFFFFF000ull

static volatile uint32_t *mmio;   /* xAPIC register page; NULL in x2APIC mode */
static int x2;

static uint32_t rd(uint32_t reg)
{
    return x2 ? (uint32_t)rdmsr(MSR_X2APIC_FIRST + reg / 16) : mmio[reg / 4];
}

static void wr(uint32_t reg, uint32_t v)
{
    if (x2)
        wrmsr(MSR_X2APIC_FIRST + reg / 16, v);
    else
        mmio[reg / 4] = v;
}

/* Next-level table of entry *e, created (zeroed) if absent; NULL when the
 * entry maps a large page already (then the address is mapped) or no
 * memory is left. */
static uint64_t *next_table(uint64_t *e, int *mapped)
{
    if (*e & PTE_P) {
        if (*e & PTE_PS) {
            *mapped = 1;
            return 0;
        }
        return (uint64_t *)(uintptr_t)(*e & PTE_ADDR);
    }
    uint64_t page = phys_alloc(&kphys, PHYS_PAGE, PHYS_PAGE);
    if (!page)
        return 0;
    memset((void *)(uintptr_t)page, 0, PHYS_PAGE);
    *e = page | PTE_P | PTE_W;
    return (uint64_t *)(uintptr_t)page;
}

/* Make sure the 2 MiB page holding `addr` is identity-mapped, uncached when
 * this function has to add it (stage 2 maps RAM only, up to the highest
 * E820 address: usually past the APIC, but not on every machine).
 * Returns 0, or -1 when a page table could not be allocated. */
static int map_mmio(uint64_t addr)
{
    int mapped = 0;
    uint64_t *pml4 = (uint64_t *)(uintptr_t)(read_cr3() & PTE_ADDR);
    uint64_t *pdpt = next_table(&pml4[(addr >> 39) & 511], &mapped);
    if (mapped)
        return 0;
    if (!pdpt)
        return -1;
    uint64_t *pd = next_table(&pdpt[(addr >> 30) & 511], &mapped);
    if (mapped)
        return 0;
    if (!pd)
        return -1;
    uint64_t *e = &pd[(addr >> 21) & 511];
    if (!(*e & PTE_P)) {
        *e = (addr & ~((1ull << 21) - 1)) | PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT;
        __asm__ volatile("invlpg (%0)" ::"r"(addr) : "memory");
    }
    return 0;
}

int lapic_init(uint64_t base)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    if (!((r[3] >> 9) & 1))              /* CPUID.1:EDX.APIC */
        return -1;
    uint64_t msr = rdmsr(MSR_APIC_BASE);
    if (!(msr & APIC_BASE_ENABLE))
        return -1;
    x2 = (msr & APIC_BASE_X2APIC) != 0;
    if (!x2) {
        if (!base)
            base = msr & PTE_ADDR;
        if (map_mmio(base) != 0)
            return -1;
        mmio = (volatile uint32_t *)(uintptr_t)base;
    }
    lapic_init_ap();
    return 0;
}

void lapic_init_ap(void)
{
    wr(REG_SVR, (rd(REG_SVR) & ~0xFFu) | SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
}

int lapic_in_service(uint8_t vector)
{
    return (rd(REG_ISR0 + 0x10u * (vector / 32u)) >> (vector % 32u)) & 1;
}

void lapic_eoi(void)
{
    wr(REG_EOI, 0);
}

uint32_t lapic_id(void)
{
    return x2 ? rd(REG_ID) : rd(REG_ID) >> 24;
}

int lapic_x2apic(void)
{
    return x2;
}

int lapic_send_ipi(uint32_t dest, uint32_t icr)
{
    if (x2) {
        /* One 64-bit MSR write; no delivery-status bit (SDM 10.12.9). */
        wrmsr(MSR_X2APIC_FIRST + REG_ICR_LO / 16, ((uint64_t)dest << 32) | icr);
        return 0;
    }
    uint64_t limit = cpu.tsc_hz ? cpu.tsc_hz / 10000 : 1000000;   /* ~100 us */
    uint64_t t0 = rdtsc();
    while (rd(REG_ICR_LO) & ICR_BUSY) {
        if (rdtsc() - t0 > limit)
            return -1;
        cpu_relax();
    }
    wr(REG_ICR_HI, dest << 24);
    wr(REG_ICR_LO, icr);                  /* this write sends it */
    return 0;
}
