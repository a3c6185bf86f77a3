/*
 * kprintf.h - kernel console output, formatted by llvm-libc's vsnprintf and
 * written to every console (COM1 and VGA).
 */
#ifndef FLUID_KPRINTF_H
#define FLUID_KPRINTF_H

#include <stdarg.h>
#include <stddef.h>

/* printf-style; returns the number of bytes written (output longer than
 * 1024 bytes per call is truncated). */
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vkprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Write n raw bytes / a NUL-terminated string. */
void kwrite(const char *s, size_t n);
void kputs(const char *s);

#endif
