/* kbd.c - PS/2 keyboard through the i8042 controller (ports 0x60/0x64),
 * polled; translates scancode set 1 (US layout) into console bytes. */
#include <stdint.h>
#include "x86/io.h"
#include "dev/kbd.h"

static const char normal[128] =
    "\0\0331234567890-=\x7f\tqwertyuiop[]\r\0asdfghjkl;'`\0\\zxcvbnm,./\0*\0 ";
static const char shifted[128] =
    "\0\033!@#$%^&*()_+\x7f\tQWERTYUIOP{}\r\0ASDFGHJKL:\"~\0|ZXCVBNM<>?\0*\0 ";

static int shift, ctrl, caps, extended;
static char pending[4];
static int npending, ipending;

/* Queue the terminal escape sequence ESC [ <seq> for a navigation key, as
 * a serial terminal sends it (the line editor reads both alike). */
static void push_seq(const char *seq)
{
    pending[0] = 0x1b;
    pending[1] = '[';
    npending = 2;
    while (*seq && npending < (int)sizeof pending)
        pending[npending++] = *seq++;
    ipending = 0;
}

int kbd_getc(void)
{
    if (ipending < npending)
        return (uint8_t)pending[ipending++];
    uint8_t status = inb(0x64);
    if (!(status & 1) || (status & 0x20))   /* no data, or mouse data */
        return -1;
    uint8_t sc = inb(0x60);
    if (sc == 0xE0) {
        extended = 1;
        return -1;
    }
    int release = sc & 0x80;
    sc &= 0x7F;
    if (extended) {
        extended = 0;
        if (sc == 0x1D) {                  /* right Ctrl: its release counts too */
            ctrl = !release;
            return -1;
        }
        if (release)
            return -1;
        switch (sc) {
        case 0x48: push_seq("A"); break;   /* up */
        case 0x50: push_seq("B"); break;   /* down */
        case 0x4D: push_seq("C"); break;   /* right */
        case 0x4B: push_seq("D"); break;   /* left */
        case 0x47: push_seq("H"); break;   /* Home */
        case 0x4F: push_seq("F"); break;   /* End */
        case 0x53: push_seq("3~"); break;  /* Delete */
        case 0x1C: return '\r';            /* keypad enter */
        default: return -1;
        }
        return kbd_getc();
    }
    switch (sc) {
    case 0x2A: case 0x36: shift = !release; return -1;
    case 0x1D: ctrl = !release; return -1;
    case 0x3A: if (!release) caps = !caps; return -1;
    }
    if (release)
        return -1;
    char c = shift ? shifted[sc] : normal[sc];
    if (caps && c >= 'a' && c <= 'z' && !shift)
        c -= 32;
    if (!c)
        return -1;
    if (ctrl && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return (c & 0x1F);
    return (uint8_t)c;
}
