/*
 * stage2_check.c - stage 2's check of the image header, in real mode.
 *
 * Compiled with clang -m16 (32-bit code with operand/address-size
 * prefixes, run with CS = DS = SS = 0, as Linux's arch/x86/boot does), so
 * stage2.S can call it before its first BIOS read uses a header field.
 * The check itself is fluid_image_check() (fluid/image_check.h), the one
 * the hosted platform and mkimage make.
 */
#include <stdint.h>
#include "fluid/image_check.h"

static char msg[160];
static unsigned len;

static void add(const char *s)
{
    while (*s && len < sizeof msg - 1)
        msg[len++] = *s++;
}

static void add_hex(uint64_t v)
{
    char d[19] = "0x";
    int n = 2;
    for (int sh = 60; sh >= 0; sh -= 4)
        if ((v >> sh) || sh == 0 || n > 2)
            d[n++] = "0123456789abcdef"[(v >> sh) & 15];
    d[n] = 0;
    add(d);
}

/* h: the header stage 1 read (a copy of LBA 1); disk: the boot drive's
 * size in 512-byte sectors from INT 13h AH=48h, 0 when the BIOS does not
 * say.  Returns NULL when the header is sound, else a NUL-terminated line
 * ("stage2: ...\r\n") to print before halting.
 * Called from stage2.S with calll; cdecl, 4-byte arguments. */
const char *stage2_check_image(const struct fluid_image_header *h, uint32_t disk_lo, uint32_t disk_hi)
{
    int where;
    enum fluid_image_fault f = fluid_image_check(h, ((uint64_t)disk_hi << 32) | disk_lo, &where);
    if (f == FLUID_IMG_OK)
        return 0;
    len = 0;
    add("stage2: ");
    if (where >= 0) {
        add("image header: the ");
        add(fluid_region_name(where));
        add(" region ");
    }
    add(fluid_image_fault_text(f));
    if (f == FLUID_IMG_EDISK) {
        const struct fluid_region *r = &h->region[where];
        add(": LBA ");
        add_hex(r->lba);
        add(", ");
        add_hex(r->bytes);
        add(" bytes; the disk has ");
        add_hex(((uint64_t)disk_hi << 32) | disk_lo);
        add(" sectors");
    }
    add("\r\n");
    msg[len] = 0;
    return msg;
}
