/* kprintf.c - formatted console output on llvm-libc's vsnprintf. */
#include <stdio.h>
#include <string.h>
#include "lib/kprintf.h"
#include "plat/plat.h"

int vkprintf(const char *fmt, va_list ap)
{
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0)
        return n;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    plat_console_write(buf, (size_t)n);
    return n;
}

int kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vkprintf(fmt, ap);
    va_end(ap);
    return n;
}

void kwrite(const char *s, size_t n)
{
    plat_console_write(s, n);
}

void kputs(const char *s)
{
    plat_console_write(s, strlen(s));
}
