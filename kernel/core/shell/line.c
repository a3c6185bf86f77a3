/* line.c - line editing with incremental redraw using only '\b' and
 * plain bytes, which both a serial terminal and the VGA console follow. */
#include <string.h>
#include "plat/plat.h"
#include "lib/kprintf.h"
#include "shell/line.h"

#define HIST 16
static char history[HIST][LINE_MAX_BYTES + 1];
static int hist_count;   /* entries stored (<= HIST); newest at (hist_count-1) % HIST */
static int last_was_cr;
static unsigned char ahead[512];   /* typed while a command ran (line_interrupted) */
static size_t n_ahead, ahead_pos;

int line_interrupted(void)
{
    int c;
    while ((c = plat_console_poll()) >= 0) {
        if (c == 3) {
            n_ahead = ahead_pos = 0;
            return 1;
        }
        if (n_ahead < sizeof ahead)
            ahead[n_ahead++] = (unsigned char)c;
    }
    return 0;
}

int line_interrupted_poll(void *ctx)
{
    (void)ctx;
    return line_interrupted();
}

/* The next input byte: typed-ahead ones first. */
static int next_byte(void)
{
    if (ahead_pos < n_ahead) {
        int c = ahead[ahead_pos++];
        if (ahead_pos == n_ahead)
            n_ahead = ahead_pos = 0;
        return c;
    }
    return plat_console_getc();
}

static void backspaces(size_t n)
{
    while (n--)
        kwrite("\b", 1);
}

static void spaces(size_t n)
{
    while (n--)
        kwrite(" ", 1);
}

/* Replace what is on screen (old_len bytes, cursor at cur) by buf. */
static void redraw_all(const char *buf, size_t len, size_t old_len, size_t cur)
{
    backspaces(cur);
    kwrite(buf, len);
    if (old_len > len) {
        spaces(old_len - len);
        backspaces(old_len - len);
    }
}

/* Read the rest of an ESC sequence; returns its final byte (or 0). */
static int read_escape(void)
{
    int c = next_byte();
    if (c != '[' && c != 'O')
        return 0;
    c = next_byte();
    if (c >= '0' && c <= '9') {
        int d = next_byte();   /* "3~" delete, "1~"/"7~" home, "4~"/"8~" end */
        if (d != '~')
            return 0;
        return c == '3' ? 'X' : (c == '1' || c == '7') ? 'H' : (c == '4' || c == '8') ? 'F' : 0;
    }
    return c;
}

int line_read(const char *prompt, char *buf, size_t cap)
{
    size_t len = 0, cur = 0;
    int overflow = 0, hist_pos = hist_count;
    kputs(prompt);
    for (;;) {
        int c = next_byte();
        if (c == '\n' && last_was_cr) {   /* CR LF counts as one Enter */
            last_was_cr = 0;
            continue;
        }
        last_was_cr = (c == '\r');
        if (c == '\r' || c == '\n')
            break;
        if (c == 3) {                     /* Ctrl-C */
            kputs("^C\n");
            return -2;
        }
        if (c == 4) {                     /* Ctrl-D on an empty line: end of input */
            if (len == 0)
                plat_console_eof();
            continue;
        }
        if (c == 0x15) {                  /* Ctrl-U */
            redraw_all(buf, 0, len, cur);
            len = cur = 0;
            overflow = 0;
            continue;
        }
        if (c == 0x7F || c == 0x08) {     /* backspace */
            if (cur == 0)
                continue;
            memmove(buf + cur - 1, buf + cur, len - cur);
            len--, cur--;
            kwrite("\b", 1);
            kwrite(buf + cur, len - cur);
            spaces(1);
            backspaces(len - cur + 1);
            continue;
        }
        if (c == 0x1B) {
            int k = read_escape();
            if ((k == 'A' && hist_pos > 0 && hist_pos > hist_count - HIST) ||
                (k == 'B' && hist_pos < hist_count)) {
                hist_pos += k == 'A' ? -1 : 1;
                size_t old = len;
                if (hist_pos == hist_count) {
                    len = 0;
                } else {
                    const char *h = history[hist_pos % HIST];
                    len = strlen(h);
                    if (len > cap - 1) len = cap - 1;
                    memcpy(buf, h, len);
                }
                redraw_all(buf, len, old, cur);
                cur = len;
            } else if (k == 'C' && cur < len) {
                kwrite(buf + cur, 1);
                cur++;
            } else if (k == 'D' && cur > 0) {
                kwrite("\b", 1);
                cur--;
            } else if (k == 'H') {
                backspaces(cur);
                cur = 0;
            } else if (k == 'F') {
                kwrite(buf + cur, len - cur);
                cur = len;
            } else if (k == 'X' && cur < len) {
                memmove(buf + cur, buf + cur + 1, len - cur - 1);
                len--;
                kwrite(buf + cur, len - cur);
                spaces(1);
                backspaces(len - cur + 1);
            }
            continue;
        }
        if (c < 0x20 && c != '\t')
            continue;                     /* other control bytes: ignore */
        if (len + 1 >= cap) {
            overflow = 1;                 /* keep reading until Enter */
            continue;
        }
        memmove(buf + cur + 1, buf + cur, len - cur);
        buf[cur] = (char)c;
        len++;
        kwrite(buf + cur, len - cur);
        cur++;
        backspaces(len - cur);
    }
    kputs("\n");
    if (overflow) {
        kprintf("error: line too long (the limit is %zu bytes); nothing was run\n", cap - 1);
        return -1;
    }
    buf[len] = 0;
    if (len > 0 && (hist_count == 0 || strcmp(history[(hist_count - 1) % HIST], buf) != 0)) {
        memcpy(history[hist_count % HIST], buf, len + 1);
        hist_count++;
    }
    return (int)len;
}
