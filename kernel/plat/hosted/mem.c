/*
 * mem.c - memory for the hosted platform: anonymous mmap, aligned by
 * over-mapping and trimming, huge pages asked for with madvise(MADV_HUGEPAGE)
 * on every allocation of 2 MiB alignment (the model, the KV cache: this
 * machine's transparent huge pages are in madvise mode).  A budget (the
 * --mem option, else MemAvailable) stands in for the machine's RAM, so a
 * model too large for it fails with the same message as on the unikernel
 * instead of driving the host into swap.
 *
 * Module code (W^X): mapped read+write while the loader copies it, then
 * plat_code_seal() makes its text read+execute with mprotect: no mapping of
 * this process is ever writable and executable at once.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "hosted.h"
#include "plat/plat.h"

#define PAGE 4096ull
#define TWO_MiB (2ull << 20)

static uint64_t budget;
static _Atomic uint64_t used;

void hosted_mem_init(uint64_t b) { budget = b; }

static uint64_t round_page(uint64_t n) { return (n + PAGE - 1) & ~(PAGE - 1); }

void *plat_alloc(uint64_t bytes, uint64_t align)
{
    if (bytes == 0 || align & (align - 1))
        return NULL;
    if (align < PAGE)
        align = PAGE;
    bytes = round_page(bytes);
    if (bytes > budget || atomic_fetch_add(&used, bytes) + bytes > budget) {
        if (bytes <= budget)
            atomic_fetch_sub(&used, bytes);
        return NULL;
    }
    uint64_t span = bytes + align - PAGE;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        atomic_fetch_sub(&used, bytes);
        return NULL;
    }
    uint8_t *a = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + bytes < p + span)
        munmap(a + bytes, (size_t)(p + span - (a + bytes)));
    if (align >= TWO_MiB)
        madvise(a, bytes, MADV_HUGEPAGE);   /* best effort: 4 KiB pages otherwise */
    return a;
}

void plat_free(void *p, uint64_t bytes)
{
    if (!p)
        return;
    bytes = round_page(bytes);
    munmap(p, bytes);
    atomic_fetch_sub(&used, bytes);
}

void plat_mem_stats(struct plat_mem *m)
{
    uint64_t u = atomic_load(&used);
    m->usable = budget;
    m->free = budget > u ? budget - u : 0;
    m->largest = m->free;
}

void *plat_code_alloc(uint64_t bytes)
{
    return plat_alloc(bytes, PAGE);
}

int plat_code_seal(void *p, uint64_t text_bytes, uint64_t bytes)
{
    if ((uintptr_t)p % PAGE || text_bytes % PAGE || text_bytes > round_page(bytes))
        return -1;
    return mprotect(p, text_bytes, PROT_READ | PROT_EXEC) == 0 ? 0 : -1;
}

void plat_code_free(void *p, uint64_t bytes)
{
    plat_free(p, bytes);
}
