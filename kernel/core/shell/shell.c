/* shell.c - reads lines at `fluid> `, splits them into words and runs the
 * matching command; unknown commands get a hint and the prompt returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include "plat/plat.h"
#include "lib/kprintf.h"
#include "shell/line.h"
#include "shell/shell.h"

static const struct shell_cmd *const tables[] = { sys_commands, plat_commands, llm_commands, bench_commands,
                                                   mod_commands, tune_commands };

static int is_space(char c) { return c == ' ' || c == '\t'; }

const char *shell_rest(const char *line, int k)
{
    const char *p = line;
    while (is_space(*p))
        p++;
    for (int i = 0; i < k && *p; i++) {   /* skip k words ... */
        while (*p && !is_space(*p))
            p++;
        if (i + 1 < k)
            while (is_space(*p))
                p++;
    }
    return *p ? p + 1 : p;   /* ... and exactly one separator: the text keeps its own spaces */
}

int shell_parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);   /* decimal only: "010" is ten, not eight */
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

int shell_parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (!*s || *end || errno || !__builtin_isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Split s into words in place; returns their count (SHELL_MAX_ARGS bounds
 * it: a line of LINE_MAX_BYTES cannot hold more). */
static int split(char *s, char **argv)
{
    int argc = 0;
    while (*s && argc < SHELL_MAX_ARGS) {
        while (is_space(*s))
            *s++ = 0;
        if (!*s)
            break;
        argv[argc++] = s;
        while (*s && !is_space(*s))
            s++;
    }
    return argc;
}

static const struct shell_cmd *find(const char *name)
{
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const struct shell_cmd *c = tables[t]; c->name; c++)
            if (strcmp(c->name, name) == 0 && (!c->test_only || plat_test_mode()))
                return c;
    return NULL;
}

static int cmd_help(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    kprintf("Commands:\n  %-34s %s\n", "help", "list the commands");
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const struct shell_cmd *c = tables[t]; c->name; c++) {
            if (c->test_only && !plat_test_mode())
                continue;
            char usage[64];
            snprintf(usage, sizeof usage, "%s %s", c->name, c->args);
            kprintf("  %-34s %s\n", usage, c->help);
        }
    kprintf("Line editing: arrows, Home/End, Backspace, Ctrl-U clears, Ctrl-C cancels; up/down: history.\n");
    return 0;
}

static const struct shell_cmd help_cmd = { "help", "", "list the commands", cmd_help, 0 };

void shell_run(void)
{
    static char line[LINE_MAX_BYTES + 1], work[LINE_MAX_BYTES + 1];
    static char *argv[SHELL_MAX_ARGS];
    for (;;) {
        int n = line_read("fluid> ", line, sizeof line);
        if (n <= 0)
            continue;
        memcpy(work, line, (size_t)n + 1);
        int argc = split(work, argv);
        if (argc == 0)
            continue;
        const struct shell_cmd *c = strcmp(argv[0], "help") == 0 ? &help_cmd : find(argv[0]);
        if (!c) {
            kprintf("error: unknown command '%s' (type 'help' for the list)\n", argv[0]);
            continue;
        }
        c->run(argc, argv, line);
    }
}
