/* console.c - mirrors output to COM1 and VGA; merges input from COM1 and
 * the PS/2 keyboard.  A spinlock keeps lines from different CPUs whole. */
#include <stdatomic.h>
#include "x86/io.h"
#include "x86/irq.h"
#include "dev/console.h"
#include "dev/serial.h"
#include "dev/vga.h"
#include "dev/kbd.h"

static atomic_flag lock = ATOMIC_FLAG_INIT;

void console_init(void)
{
    serial_init();
    vga_init();
}

void console_write(const char *s, size_t n)
{
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
        cpu_relax();
    for (size_t i = 0; i < n; i++) {
        serial_putc(s[i]);
        vga_putc(s[i]);
    }
    atomic_flag_clear_explicit(&lock, memory_order_release);
}

void console_break_lock(void)
{
    atomic_flag_clear_explicit(&lock, memory_order_release);
}

int console_poll(void)
{
    int c = serial_getc();
    if (c < 0)
        c = kbd_getc();
    return c;
}

int console_getc(void)
{
    int c;
    while ((c = console_poll()) < 0)
        irq_wait();   /* sleep until COM1 or the keyboard interrupts */
    return c;
}
