/* percpu.c - per-CPU blocks and the FS base (see percpu.h). */
#include "x86/percpu.h"
#include "x86/io.h"

#define MSR_FS_BASE 0xC0000100u

struct percpu percpu_blocks[FLUID_MAX_CPUS];
static int fs_ready;

void percpu_init(uint32_t id, uint32_t apic_id)
{
    struct percpu *p = &percpu_blocks[id];
    p->self = p;
    p->id = id;
    p->apic_id = apic_id;
    /* Canary: TSC-derived, with a zero low byte so string overflows that
     * copy a NUL cannot forge it (glibc's convention). */
    p->canary = (rdtsc() * 0x9E3779B97F4A7C15ull) & ~0xFFull;
    wrmsr(MSR_FS_BASE, (uint64_t)p);
    fs_ready = 1;
}

int this_cpu_id_safe(void)
{
    return fs_ready ? (int)this_cpu()->id : 0;
}
