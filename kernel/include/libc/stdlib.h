/* stdlib.h - the part of llvm-libc's <stdlib.h> the kernel uses. */
#ifndef FLUID_LIBC_STDLIB_H
#define FLUID_LIBC_STDLIB_H
#include <stddef.h>
long strtol(const char *restrict s, char **restrict end, int base);
unsigned long strtoul(const char *restrict s, char **restrict end, int base);
long long strtoll(const char *restrict s, char **restrict end, int base);
unsigned long long strtoull(const char *restrict s, char **restrict end, int base);
float strtof(const char *restrict s, char **restrict end);
double strtod(const char *restrict s, char **restrict end);
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
int abs(int v);
#endif
