/* vga.h - the 80x25 VGA text console at 0xB8000. */
#ifndef FLUID_VGA_H
#define FLUID_VGA_H
void vga_init(void);
void vga_putc(char c);             /* handles \n, \r, \b, \t; scrolls */
#endif
