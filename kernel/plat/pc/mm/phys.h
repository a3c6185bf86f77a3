/*
 * phys.h - physical memory: the E820 map turned into free ranges, and an
 * allocator of large, physically contiguous, aligned ranges.
 *
 * Memory is identity-mapped, so a physical address is also the pointer.
 * The free list is kept sorted by address and merged, so a GiB-sized
 * allocation (model weights, KV cache) succeeds whenever one hole is big
 * enough.  Pure C with no hardware access: tests/host builds it too.
 */
#ifndef FLUID_PHYS_H
#define FLUID_PHYS_H

#include <stdint.h>
#include "fluid/bootinfo.h"

#define PHYS_MAX_RANGES 256
#define PHYS_PAGE 4096ull

struct phys_range { uint64_t base, end; };   /* [base, end), bytes */

struct phys_alloc {
    struct phys_range free[PHYS_MAX_RANGES];
    int n;
    uint64_t usable_bytes;     /* usable RAM found in the map (after clipping) */
};

/* Build the free list from an E820 map: usable (type 1) entries shrunk to
 * whole pages, minus every other entry (reserved wins where they overlap),
 * clipped to [0, limit).  Returns 0, or -1 if the map has no usable RAM. */
int phys_init(struct phys_alloc *pa, const struct e820_entry *map, int n, uint64_t limit);

/* Take [base, end) out of the free list (kernel image, boot data). */
void phys_reserve(struct phys_alloc *pa, uint64_t base, uint64_t end);

/* Lowest free range of `bytes` (rounded up to pages) aligned to `align`
 * (a power of two >= 4096).  Returns its address, or 0 when no hole fits. */
uint64_t phys_alloc(struct phys_alloc *pa, uint64_t bytes, uint64_t align);

/* Give a range back (merged with its neighbours).  Returns 0, or -1 when
 * the free list is full (the range is then leaked, never corrupted). */
int phys_free(struct phys_alloc *pa, uint64_t base, uint64_t bytes);

uint64_t phys_free_bytes(const struct phys_alloc *pa);
uint64_t phys_largest_free(const struct phys_alloc *pa);

/* The kernel's allocator (kernel/mm/phys.c users). */
extern struct phys_alloc kphys;

#endif
