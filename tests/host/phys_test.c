/* phys_test.c - checks of the E820 free-range allocator (kernel/plat/pc/mm/phys.c)
 * on hand-made maps: overlap handling, alignment, reserve, free/merge,
 * exhaustion.  Exits non-zero with a message on the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include "mm/phys.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

int main(void)
{
    struct phys_alloc pa;
    /* QEMU-like map with an overlapping reserved entry and a hole. */
    struct e820_entry map[] = {
        { 0, 0x9FC00, 1, 1 },
        { 0x9FC00, 0x400, 2, 1 },
        { 0xF0000, 0x10000, 2, 1 },
        { 0x100000, 3 * GiB - 0x100000, 1, 1 },
        { 2 * GiB, 4096, 2, 1 },                 /* reserved inside usable */
        { 4 * GiB, 2 * GiB, 1, 1 },
        { 0x1000, 0x123, 1, 1 },                 /* unaligned, overlapping */
    };
    CHECK(phys_init(&pa, map, 7, 64 * GiB) == 0);
    CHECK(pa.n == 4);   /* [0,0x9F000) [1MiB,2GiB) [2GiB+4K,3GiB) [4GiB,6GiB) */
    CHECK(pa.free[0].base == 0 && pa.free[0].end == 0x9F000);
    CHECK(pa.free[1].base == 0x100000 && pa.free[1].end == 2 * GiB);
    CHECK(pa.free[2].base == 2 * GiB + 4096 && pa.free[2].end == 3 * GiB);
    CHECK(pa.usable_bytes == phys_free_bytes(&pa));

    phys_reserve(&pa, 0, 48 * MiB);
    CHECK(pa.free[0].base == 48 * MiB);

    /* 2 MiB aligned, large, contiguous. */
    uint64_t a = phys_alloc(&pa, 700 * MiB, 2 * MiB);
    CHECK(a == 48 * MiB);
    uint64_t b = phys_alloc(&pa, 1500 * MiB, 2 * MiB);   /* skips to the big range */
    CHECK(b == 4 * GiB);
    uint64_t c = phys_alloc(&pa, 5 * GiB, 2 * MiB);      /* too big for any hole */
    CHECK(c == 0);
    CHECK(phys_alloc(&pa, 4096, 3000) == 0);              /* bad alignment */
    CHECK(phys_alloc(&pa, 0, 4096) == 0);

    /* Free merges back to the original ranges. */
    uint64_t before = phys_free_bytes(&pa);
    CHECK(phys_free(&pa, a, 700 * MiB) == 0);
    CHECK(phys_free(&pa, b, 1500 * MiB) == 0);
    CHECK(phys_free_bytes(&pa) == before + 2200 * MiB);
    CHECK(pa.n == 3 && pa.free[0].base == 48 * MiB && pa.free[0].end == 2 * GiB);
    CHECK(phys_largest_free(&pa) == 2 * GiB);

    /* Limit: nothing above the identity map. */
    CHECK(phys_init(&pa, map, 7, 1 * GiB) == 0);
    CHECK(pa.free[pa.n - 1].end == 1 * GiB);

    /* A map without usable RAM. */
    struct e820_entry none[] = { { 0, 1 * GiB, 2, 1 } };
    CHECK(phys_init(&pa, none, 1, 64 * GiB) == -1);

    if (failures)
        return 1;
    printf("all allocator checks passed\n");
    return 0;
}
