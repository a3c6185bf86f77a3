/* errno.h - llvm-libc reports errors through __errno_location(), which the
 * kernel provides (kernel/lib/libc_glue.c). */
#ifndef FLUID_LIBC_ERRNO_H
#define FLUID_LIBC_ERRNO_H
int *__errno_location(void);
#define errno (*__errno_location())
#define EDOM 33
#define ERANGE 34
#define EINVAL 22
#endif
