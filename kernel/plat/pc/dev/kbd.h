/* kbd.h - PS/2 keyboard (i8042), polled, scancode set 1. */
#ifndef FLUID_KBD_H
#define FLUID_KBD_H
/* Next input byte, or -1.  Printable keys give ASCII; Enter '\r';
 * Backspace 0x7F; Ctrl+letter its control code; arrows the ANSI sequences
 * ESC [ A/B/C/D, so the line editor sees serial and keyboard alike. */
int kbd_getc(void);
#endif
