/* console.h - every console at once: COM1 and VGA out; COM1 and the PS/2
 * keyboard in. */
#ifndef FLUID_CONSOLE_H
#define FLUID_CONSOLE_H
#include <stddef.h>
void console_init(void);
void console_write(const char *s, size_t n);
/* For the fatal-error path only: the CPU that faulted may have held the
 * output lock, so drop it rather than deadlock before the report. */
void console_break_lock(void);
/* Next input byte from either source, or -1 (never blocks). */
int console_poll(void);
/* Block until a byte arrives. */
int console_getc(void);
#endif
