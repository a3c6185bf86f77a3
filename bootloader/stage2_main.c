/*
 * stage2_main.c - the 32-bit part of stage 2.
 *
 * Runs in protected mode with paging off, after stage2.S has loaded the
 * kernel and module regions (whose header stage2_check.c checked before).
 * It checks the CRC-32 of each loaded region, checks that the CPU can run 64-bit code, and builds
 * identity-mapped page tables for all memory (1 GiB pages when the CPU has
 * them, else 2 MiB pages).  Returns the PML4 address; on any failure it
 * prints one line naming what is wrong and halts.
 */
#include <stddef.h>
#include <stdint.h>
#include "fluid/bootinfo.h"
#include "fluid/crc32.h"
/* This is i386 code; stage2.S was given the x86-64 layouts (tools/genlayout.c):
 * from C, this header asserts they are this target's too. */
#include "fluid_layout.h"

#define PT_BASE 0x20000u          /* PML4, then PDPT, then PDs up to 0xA0000 */
#define PT_END 0xA0000u
#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_PS 0x80ull

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static void cpuid(uint32_t leaf, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

/* ---- output: COM1 and the VGA text screen, where the BIOS cursor was ---- */
static unsigned vga_row;

static void putc(char c)
{
    while (!(inb(0x3FD) & 0x20))
        ;
    outb(0x3F8, (uint8_t)c);
    if (c == '\n') {
        vga_row = vga_row < 24 ? vga_row + 1 : 24;
        return;
    }
    static unsigned col;
    if (c == '\r') { col = 0; return; }
    volatile uint16_t *vga = (volatile uint16_t *)0xB8000;
    if (col < 80)
        vga[vga_row * 80 + col++] = (uint16_t)(0x4F00 | (uint8_t)c);  /* white on red */
}

static void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static void puthex(uint32_t v)
{
    for (int i = 28; i >= 0; i -= 4)
        putc("0123456789abcdef"[(v >> i) & 15]);
}

static __attribute__((noreturn)) void die(void)
{
    puts("\r\nstage2: boot stopped.\r\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void check_region(const struct fluid_image_header *h, int i, uint32_t addr, const char *name)
{
    const struct fluid_region *r = &h->region[i];
    if (!(r->flags & FLUID_REGION_HAS_CRC))
        return;
    uint32_t got = crc32_update(0, (const void *)(uintptr_t)addr, (size_t)r->bytes);
    if (got != r->crc32) {
        puts("stage2: ");
        puts(name);
        puts(" region checksum mismatch: expected 0x");
        puthex(r->crc32);
        puts(", got 0x");
        puthex(got);
        puts(" (the image is damaged)");
        die();
    }
}

/* Highest address any E820 entry names, at least 4 GiB (MMIO, LAPIC). */
static uint64_t memory_top(const struct boot_info *bi)
{
    uint64_t top = 4ull << 30;
    for (uint32_t i = 0; i < bi->e820_count; i++) {
        uint64_t end = bi->e820[i].base + bi->e820[i].length;
        if (end > top)
            top = end;
    }
    return top;
}

static void zero(uint32_t addr, uint32_t bytes)
{
    for (uint32_t i = 0; i < bytes; i += 4)
        *(volatile uint32_t *)(uintptr_t)(addr + i) = 0;
}

/* Identity map [0, top) with 1 GiB pages (if `gib`) or 2 MiB pages. */
static uint32_t build_page_tables(struct boot_info *bi, int gib)
{
    uint64_t *pml4 = (uint64_t *)(uintptr_t)PT_BASE;
    uint32_t next = PT_BASE + 0x1000;
    uint64_t top = (memory_top(bi) + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    uint32_t gibs = (uint32_t)(top >> 30);
    uint32_t max_gibs = gib ? 512u * 8u : (PT_END - PT_BASE - 0x1000u * 9u) / 0x1000u;
    if (gibs > max_gibs)
        gibs = max_gibs;   /* memory above stays unmapped and unused */
    zero(PT_BASE, PT_END - PT_BASE);

    uint64_t *pdpt = 0;
    for (uint32_t g = 0; g < gibs; g++) {
        if (g % 512 == 0) {   /* a new PDPT per 512 GiB */
            pdpt = (uint64_t *)(uintptr_t)next;
            pml4[g / 512] = next | PTE_P | PTE_W;
            next += 0x1000;
        }
        uint64_t base = (uint64_t)g << 30;
        if (gib) {
            pdpt[g % 512] = base | PTE_P | PTE_W | PTE_PS;
        } else {
            uint64_t *pd = (uint64_t *)(uintptr_t)next;
            pdpt[g % 512] = next | PTE_P | PTE_W;
            next += 0x1000;
            for (uint32_t j = 0; j < 512; j++)
                pd[j] = (base + ((uint64_t)j << 21)) | PTE_P | PTE_W | PTE_PS;
        }
    }
    bi->mapped_bytes = (uint64_t)gibs << 30;
    bi->page_size = gib ? (1u << 30) : (1u << 21);
    return PT_BASE;
}

uint32_t stage2_main(struct boot_info *bi)
{
    vga_row = *(volatile uint8_t *)0x451;   /* BIOS cursor row */
    bi->magic = FLUID_BOOTINFO_MAGIC;
    /* The header itself was checked in real mode before any field was
     * used (stage2_check.c); here the regions it loaded. */
    check_region(&bi->image, FLUID_REGION_KERNEL, FLUID_KERNEL_LOAD, "kernel");
    check_region(&bi->image, FLUID_REGION_MODULES, FLUID_MODULES_LOAD, "modules");

    uint32_t r[4];
    cpuid(0x80000000u, r);
    uint32_t max_ext = r[0];
    int lm = 0, gib = 0;
    if (max_ext >= 0x80000001u) {
        cpuid(0x80000001u, r);
        lm = (r[3] >> 29) & 1;
        gib = (r[3] >> 26) & 1;
    }
    if (!lm) {
        puts("stage2: this CPU cannot run 64-bit code (no long mode)");
        die();
    }
    return build_page_tables(bi, gib);
}
