/* serial.h - COM1 console (16550, 115200 8N1, polled). */
#ifndef FLUID_SERIAL_H
#define FLUID_SERIAL_H
void serial_init(void);
void serial_putc(char c);          /* '\n' is sent as "\r\n" */
int serial_getc(void);             /* a byte, or -1 when none is waiting */
#endif
