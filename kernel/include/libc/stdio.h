/* stdio.h - formatting only: the kernel has no FILE streams; console
 * output goes through kprintf (kernel/lib/kprintf.c), built on these. */
#ifndef FLUID_LIBC_STDIO_H
#define FLUID_LIBC_STDIO_H
#include <stdarg.h>
#include <stddef.h>
int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
#endif
