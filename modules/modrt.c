/*
 * modrt.c - the run-time support linked into every module: the services
 * pointer, the module's init entry, and memcpy/memset/memmove (clang may
 * emit calls to them even in freestanding code).  The mem* functions are
 * weak (a host program's own definitions win) and written with x86 string
 * instructions so the compiler cannot turn their bodies back into calls.
 */
#include "ops.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);

const struct fluid_services *fluid_svc;

/* Called by the loader before any other function of the module. */
void fluid_module_init(const struct fluid_services *s)
{
    fluid_svc = s;
}

/* Copy n bytes, regions must not overlap (C11 7.24.2.1). */
__attribute__((weak)) void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

/* Fill n bytes with (unsigned char)c (C11 7.24.6.1). */
__attribute__((weak)) void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

/* Copy n bytes, regions may overlap (C11 7.24.2.2): copies backwards (direction flag set) when dst is above
 * src inside the source range. */
__attribute__((weak)) void *memmove(void *dst, const void *src, size_t n)
{
    const uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (d <= s || d - s >= n)
        return memcpy(dst, src, n);
    unsigned char *de = (unsigned char *)dst + n - 1;
    const unsigned char *se = (const unsigned char *)src + n - 1;
    __asm__ volatile("std\n\trep movsb\n\tcld"
                     : "+D"(de), "+S"(se), "+c"(n) : : "memory");
    return dst;
}
