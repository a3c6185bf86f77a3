/* vga.c - VGA text mode console: 80x25 cells at 0xB8000, hardware cursor
 * moved through the CRTC index/data ports 0x3D4/0x3D5. */
#include <stdint.h>
#include <string.h>
#include "x86/io.h"
#include "dev/vga.h"

#define COLS 80
#define ROWS 25
#define ATTR 0x0700   /* light grey on black */

static volatile uint16_t *const screen = (volatile uint16_t *)0xB8000;
static int row, col;

static void move_cursor(void)
{
    uint16_t pos = (uint16_t)(row * COLS + col);
    outb(0x3D4, 0x0F);
    outb(0x3D5, (uint8_t)pos);
    outb(0x3D4, 0x0E);
    outb(0x3D5, (uint8_t)(pos >> 8));
}

void vga_init(void)
{
    for (int i = 0; i < COLS * ROWS; i++)
        screen[i] = ATTR | ' ';
    row = col = 0;
    move_cursor();
}

static void scroll(void)
{
    for (int i = 0; i < COLS * (ROWS - 1); i++)
        screen[i] = screen[i + COLS];
    for (int i = COLS * (ROWS - 1); i < COLS * ROWS; i++)
        screen[i] = ATTR | ' ';
    row = ROWS - 1;
}

void vga_putc(char c)
{
    switch (c) {
    case '\n': col = 0; row++; break;
    case '\r': col = 0; break;
    case '\b': if (col > 0) col--; break;
    case '\t': col = (col + 8) & ~7; break;
    default:
        if ((uint8_t)c < 0x20)
            return;
        screen[row * COLS + col] = ATTR | (uint8_t)c;
        col++;
    }
    if (col >= COLS) {
        col = 0;
        row++;
    }
    if (row >= ROWS)
        scroll();
    move_cursor();
}
