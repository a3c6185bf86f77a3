/* shell.h - the `fluid> ` prompt and its command table. */
#ifndef FLUID_SHELL_H
#define FLUID_SHELL_H

#include "shell/line.h"

/* Words on one line, at most: every word of the longest line (one byte and
 * a separator each), so `eval` can take a whole context of token ids. */
#define SHELL_MAX_ARGS (LINE_MAX_BYTES / 2 + 1)

/* A command: argv[0] is its name; `line` is the whole raw line, for
 * commands that take free text (shell_rest()).  Returns 0 on success, or
 * nonzero after printing an error. */
struct shell_cmd {
    const char *name;
    const char *args;      /* usage, e.g. "[-n N] <text>" */
    const char *help;
    int (*run)(int argc, char **argv, const char *line);
    int test_only;         /* listed and usable only in test mode */
};

/* Commands are grouped in tables defined by each cmd_*.c file. */
extern const struct shell_cmd sys_commands[];
extern const struct shell_cmd llm_commands[];
extern const struct shell_cmd bench_commands[];
extern const struct shell_cmd mod_commands[];    /* modules, cache, prof */
extern const struct shell_cmd tune_commands[];   /* tune */
extern const struct shell_cmd plat_commands[];   /* the platform's own (plat/plat.h) */

/* Raw text of `line` after its first k words and one separating space
 * (k >= 1): free text keeps its own leading and trailing spaces. */
const char *shell_rest(const char *line, int k);
/* Parse a whole-string decimal integer / float; 0 on success, -1 if
 * malformed or out of range. */
int shell_parse_long(const char *s, long *out);
int shell_parse_float(const char *s, float *out);

/* Run the prompt forever. */
__attribute__((noreturn)) void shell_run(void);
#endif
