/* line.h - the prompt's line editor: backspace, Ctrl-U (clear), Ctrl-C
 * (cancel), left/right, Home/End, Delete, history with up/down; reads
 * every console the platform has (plat_console_getc). */
#ifndef FLUID_LINE_H
#define FLUID_LINE_H
#include <stddef.h>

#define LINE_MAX_BYTES 8192   /* longest accepted line, NUL excluded */

/* Print `prompt`, read one line into buf (NUL-terminated; cap bytes).
 * Returns its length in bytes, or -1 when the line was longer than
 * cap - 1 bytes (an error is printed and the whole line dropped), or -2
 * when cancelled with Ctrl-C. */
int line_read(const char *prompt, char *buf, size_t cap);

/* For long-running commands: 1 when Ctrl-C was typed since the last call
 * (what was typed before it is dropped, as a terminal's ^C flushes),
 * else 0.  Other bytes typed meanwhile are kept and become the start of
 * the next line_read(), so typing ahead during a generation loses nothing.
 * Never blocks. */
int line_interrupted(void);
/* line_interrupted() as a session's poll callback (llm/session.h); ctx unused. */
int line_interrupted_poll(void *ctx);
#endif
