/* line.h - the prompt's line editor: backspace, Ctrl-U (clear), Ctrl-C
 * (cancel), left/right, Home/End, Delete, history with up/down; reads
 * serial and PS/2 keyboard alike (dev/console.h). */
#ifndef FLUID_LINE_H
#define FLUID_LINE_H
#include <stddef.h>

#define LINE_MAX_BYTES 8192   /* longest accepted line, NUL excluded */

/* Print `prompt`, read one line into buf (NUL-terminated; cap bytes).
 * Returns its length in bytes, or -1 when the line was longer than
 * cap - 1 bytes (an error is printed and the whole line dropped), or -2
 * when cancelled with Ctrl-C. */
int line_read(const char *prompt, char *buf, size_t cap);
#endif
