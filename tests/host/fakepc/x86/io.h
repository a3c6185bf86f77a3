/*
 * fakepc/x86/io.h - port I/O for host tests of pc drivers: the same
 * names as kernel/plat/pc/x86/io.h, but calls into a device model the
 * test harness provides (tests/host/vblk_harness.c).  Found first through
 * -iquote, so the driver source compiles unchanged.
 */
#ifndef FLUID_X86_IO_H
#define FLUID_X86_IO_H

#include <stdint.h>
#include "arch/x86/insn.h"

void outb(uint16_t port, uint8_t v);
void outw(uint16_t port, uint16_t v);
void outl(uint16_t port, uint32_t v);
uint8_t inb(uint16_t port);
uint16_t inw(uint16_t port);
uint32_t inl(uint16_t port);

#endif
