/*
 * console.c - the terminal as Fluid's console.  Output goes to stdout
 * unbuffered (one write per kprintf, so lines from different threads stay
 * whole); input is stdin byte by byte.  On a terminal, raw mode hands the
 * line editor every key as the serial console would: no echo, no line
 * buffering, Ctrl-C as byte 3 (it stops a generation instead of killing
 * the process); output post-processing stays on so "\n" still starts a new
 * line.  From a pipe (the tests), bytes arrive as written.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>
#include "hosted.h"
#include "plat/plat.h"

static struct termios saved;
static int raw;
static unsigned char inbuf[256];
static int in_pos, in_len, in_eof;

void hosted_console_restore(void)
{
    if (raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        raw = 0;
    }
}

void hosted_console_init(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0)
        return;
    struct termios t = saved;
    t.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    t.c_cflag |= CS8;
    t.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
        raw = 1;
        atexit(hosted_console_restore);
    }
}

void plat_console_write(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;              /* stdout gone: nothing left to tell */
        s += w, n -= (size_t)w;
    }
}

/* Refill the input buffer, waiting up to timeout_ms (-1: forever).
 * Returns 1 when bytes are buffered, 0 when none came, -1 at EOF. */
static int fill(int timeout_ms)
{
    if (in_pos < in_len)
        return 1;
    if (in_eof)
        return -1;
    struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0)
        return 0;
    ssize_t n = read(STDIN_FILENO, inbuf, sizeof inbuf);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : (in_eof = 1, -1);
    if (n == 0) {
        in_eof = 1;
        return -1;
    }
    in_pos = 0;
    in_len = (int)n;
    return 1;
}

int plat_console_poll(void)
{
    return fill(0) == 1 ? inbuf[in_pos++] : -1;
}

int plat_console_getc(void)
{
    for (;;) {
        int r = fill(-1);
        if (r == 1)
            return inbuf[in_pos++];
        if (r < 0)
            plat_power_off();    /* end of input: no one is left to answer */
    }
}

void plat_console_eof(void)
{
    plat_power_off();
}
