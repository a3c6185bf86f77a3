/*
 * trap.c - GDT, TSS and IDT, and the CPU-exception handler: it prints the
 * vector's name, error code, RIP, RSP, CR2 and the general registers on
 * serial and VGA, then stops the machine cleanly (in test mode QEMU exits
 * with a failure status so tests see it).
 */
#include <stdint.h>
#include "x86/io.h"
#include "x86/trap.h"
#include "x86/percpu.h"
#include "lib/kprintf.h"
#include "dev/console.h"
#include "dev/power.h"
#include "smp/smp.h"

struct gdt_ptr { uint16_t limit; uint64_t base; } __attribute__((packed));

struct tss {
    uint32_t r0;
    uint64_t rsp[3];
    uint64_t r1;
    uint64_t ist[7];
    uint64_t r2;
    uint16_t r3, iomap;
} __attribute__((packed));

struct idt_entry {
    uint16_t off_lo, sel;
    uint8_t ist, flags;
    uint16_t off_mid;
    uint32_t off_hi, zero;
} __attribute__((packed));

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS 0x18

static struct idt_entry idt[256];   /* 32 exceptions, then interrupts */
static struct tss tss[FLUID_MAX_CPUS];
static uint64_t gdt[FLUID_MAX_CPUS][5];
static uint8_t df_stack[FLUID_MAX_CPUS][8192] __attribute__((aligned(16)));
extern const uint64_t isr_table[32];

static const char *const vector_names[32] = {
    "divide error (#DE)", "debug (#DB)", "NMI", "breakpoint (#BP)",
    "overflow (#OF)", "bound range (#BR)", "invalid opcode (#UD)",
    "device not available (#NM)", "double fault (#DF)", "coprocessor overrun",
    "invalid TSS (#TS)", "segment not present (#NP)", "stack fault (#SS)",
    "general protection (#GP)", "page fault (#PF)", "reserved 15",
    "x87 floating point (#MF)", "alignment check (#AC)", "machine check (#MC)",
    "SIMD floating point (#XM)", "virtualization (#VE)", "control protection (#CP)",
    "reserved 22", "reserved 23", "reserved 24", "reserved 25", "reserved 26",
    "reserved 27", "hypervisor injection (#HV)", "VMM communication (#VC)",
    "security (#SX)", "reserved 31",
};

static void load_gdt(int cpu)
{
    uint64_t *g = gdt[cpu];
    struct tss *t = &tss[cpu];
    uint64_t base = (uint64_t)t, limit = sizeof(*t) - 1;
    g[0] = 0;
    g[1] = 0x00AF9A000000FFFFull;   /* 64-bit code */
    g[2] = 0x00CF92000000FFFFull;   /* data */
    g[3] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) |
           (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    g[4] = base >> 32;
    t->ist[0] = (uint64_t)&df_stack[cpu][sizeof df_stack[cpu]];
    t->iomap = sizeof(*t);
    struct gdt_ptr p = { sizeof gdt[cpu] - 1, (uint64_t)g };
    __asm__ volatile(
        "lgdt %0\n"
        "pushq %1\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1: mov %2, %%ds; mov %2, %%es; mov %2, %%ss\n"
        "ltr %w3\n"
        :: "m"(p), "i"(SEL_CODE), "r"((uint64_t)SEL_DATA), "r"((uint64_t)SEL_TSS)
        : "rax", "memory");
}

static void load_idt(void)
{
    struct gdt_ptr p = { sizeof idt - 1, (uint64_t)idt };
    __asm__ volatile("lidt %0" ::"m"(p));
}

void trap_init(void)
{
    for (int v = 0; v < 32; v++) {
        uint64_t a = isr_table[v];
        idt[v] = (struct idt_entry){
            .off_lo = (uint16_t)a, .sel = SEL_CODE,
            .ist = (v == 8 || v == 2 || v == 18) ? 1 : 0,   /* own stack */
            .flags = 0x8E, .off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32),
        };
    }
    load_gdt(0);
    load_idt();
}

void trap_set_vector(int v, uint64_t handler)
{
    idt[v] = (struct idt_entry){
        .off_lo = (uint16_t)handler, .sel = SEL_CODE, .ist = 0, .flags = 0x8E,
        .off_mid = (uint16_t)(handler >> 16), .off_hi = (uint32_t)(handler >> 32),
    };
}

void trap_init_ap(void)
{
    load_gdt(this_cpu()->id);
    load_idt();
}

void trap_handler(struct trap_frame *f)
{
    /* The first CPU to get here reports and stops the others (NMI); the
     * others, and that NMI, halt quietly. */
    if (smp_panic_enter() != 0)
        halt_forever();
    const char *name = f->vector < 32 ? vector_names[f->vector] : "unknown";
    console_break_lock();
    kprintf("\n*** CPU exception on cpu %d: vector %llu, %s ***\n",
            this_cpu_id_safe(), (unsigned long long)f->vector, name);
    kprintf("error code 0x%llx  RIP 0x%016llx  RSP 0x%016llx  CR2 0x%016llx\n",
            (unsigned long long)f->error, (unsigned long long)f->rip,
            (unsigned long long)f->rsp, (unsigned long long)read_cr2());
    kprintf("RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n",
            (unsigned long long)f->rax, (unsigned long long)f->rbx,
            (unsigned long long)f->rcx, (unsigned long long)f->rdx);
    kprintf("RSI %016llx RDI %016llx RBP %016llx R8  %016llx\n",
            (unsigned long long)f->rsi, (unsigned long long)f->rdi,
            (unsigned long long)f->rbp, (unsigned long long)f->r8);
    kprintf("R9  %016llx R10 %016llx R11 %016llx R12 %016llx\n",
            (unsigned long long)f->r9, (unsigned long long)f->r10,
            (unsigned long long)f->r11, (unsigned long long)f->r12);
    kprintf("R13 %016llx R14 %016llx R15 %016llx RFLAGS %08llx\n",
            (unsigned long long)f->r13, (unsigned long long)f->r14,
            (unsigned long long)f->r15, (unsigned long long)f->rflags);
    kprintf("System halted.\n");
    power_fail_stop();
}
