/* phys.c - the free-range allocator (see phys.h). */
#include <string.h>
#include "mm/phys.h"

struct phys_alloc kphys;

static uint64_t up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
static uint64_t down(uint64_t v, uint64_t a) { return v & ~(a - 1); }

/* Insert [base, end) keeping the list sorted and merged. */
static int add_range(struct phys_alloc *pa, uint64_t base, uint64_t end)
{
    if (base >= end)
        return 0;
    int i = 0;
    while (i < pa->n && pa->free[i].end < base)
        i++;
    /* Merge with every range that overlaps or touches [base, end). */
    int j = i;
    while (j < pa->n && pa->free[j].base <= end) {
        if (pa->free[j].base < base) base = pa->free[j].base;
        if (pa->free[j].end > end) end = pa->free[j].end;
        j++;
    }
    int removed = j - i;
    if (removed == 0) {
        if (pa->n == PHYS_MAX_RANGES)
            return -1;
        memmove(&pa->free[i + 1], &pa->free[i], (size_t)(pa->n - i) * sizeof pa->free[0]);
        pa->n++;
    } else if (removed > 1) {
        memmove(&pa->free[i + 1], &pa->free[j], (size_t)(pa->n - j) * sizeof pa->free[0]);
        pa->n -= removed - 1;
    }
    pa->free[i].base = base;
    pa->free[i].end = end;
    return 0;
}

void phys_reserve(struct phys_alloc *pa, uint64_t base, uint64_t end)
{
    for (int i = 0; i < pa->n && base < end; i++) {
        struct phys_range *r = &pa->free[i];
        if (r->end <= base || r->base >= end)
            continue;
        if (base <= r->base && end >= r->end) {          /* swallow it */
            memmove(r, r + 1, (size_t)(pa->n - i - 1) * sizeof *r);
            pa->n--;
            i--;
        } else if (base <= r->base) {                    /* cut the front */
            r->base = end;
        } else if (end >= r->end) {                      /* cut the back */
            r->end = base;
        } else {                                         /* split */
            if (pa->n == PHYS_MAX_RANGES) {              /* keep the bigger half */
                if (base - r->base >= r->end - end) r->end = base;
                else r->base = end;
                continue;
            }
            memmove(r + 2, r + 1, (size_t)(pa->n - i - 1) * sizeof *r);
            pa->n++;
            r[1].base = end;
            r[1].end = r->end;
            r->end = base;
            i++;
        }
    }
}

int phys_init(struct phys_alloc *pa, const struct e820_entry *map, int n, uint64_t limit)
{
    memset(pa, 0, sizeof *pa);
    for (int i = 0; i < n; i++) {
        if (map[i].type != 1 || map[i].length == 0)
            continue;
        uint64_t b = up(map[i].base, PHYS_PAGE);
        uint64_t e = map[i].base + map[i].length < map[i].base ? ~0ull : map[i].base + map[i].length;
        e = down(e, PHYS_PAGE);
        if (e > limit) e = limit;
        add_range(pa, b, e);
    }
    for (int i = 0; i < n; i++) {
        if (map[i].type == 1 || map[i].length == 0)
            continue;
        uint64_t e = map[i].base + map[i].length < map[i].base ? ~0ull : map[i].base + map[i].length;
        phys_reserve(pa, down(map[i].base, PHYS_PAGE), up(e, PHYS_PAGE));
    }
    pa->usable_bytes = phys_free_bytes(pa);
    return pa->n ? 0 : -1;
}

uint64_t phys_alloc(struct phys_alloc *pa, uint64_t bytes, uint64_t align)
{
    if (bytes == 0 || align < PHYS_PAGE || (align & (align - 1)))
        return 0;
    bytes = up(bytes, PHYS_PAGE);
    for (int i = 0; i < pa->n; i++) {
        uint64_t b = up(pa->free[i].base, align);
        if (b < pa->free[i].base || b >= pa->free[i].end || pa->free[i].end - b < bytes)
            continue;
        phys_reserve(pa, b, b + bytes);
        return b;
    }
    return 0;
}

int phys_free(struct phys_alloc *pa, uint64_t base, uint64_t bytes)
{
    return add_range(pa, down(base, PHYS_PAGE), up(base + bytes, PHYS_PAGE));
}

uint64_t phys_free_bytes(const struct phys_alloc *pa)
{
    uint64_t t = 0;
    for (int i = 0; i < pa->n; i++)
        t += pa->free[i].end - pa->free[i].base;
    return t;
}

uint64_t phys_largest_free(const struct phys_alloc *pa)
{
    uint64_t m = 0;
    for (int i = 0; i < pa->n; i++)
        if (pa->free[i].end - pa->free[i].base > m)
            m = pa->free[i].end - pa->free[i].base;
    return m;
}
