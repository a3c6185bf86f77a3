/* fwcfg.c - QEMU fw_cfg file lookup over the legacy I/O ports
 * (docs/specs/fw_cfg.rst in QEMU: selector 0x510, data 0x511; file
 * directory at selector 0x19, big-endian fields). */
#include <stdint.h>
#include <string.h>
#include "x86/io.h"
#include "dev/fwcfg.h"

#define FW_SEL 0x510
#define FW_DATA 0x511

static void fw_read(void *buf, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = inb(FW_DATA);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int fwcfg_read_file(const char *name, char *buf, size_t cap)
{
    char sig[4];
    outw(FW_SEL, 0x0000);
    fw_read(sig, 4);
    if (memcmp(sig, "QEMU", 4) != 0)
        return -1;
    uint8_t cnt[4];
    outw(FW_SEL, 0x0019);
    fw_read(cnt, 4);
    uint32_t n = be32(cnt);
    for (uint32_t i = 0; i < n && i < 4096; i++) {
        uint8_t e[64];   /* be32 size, be16 select, u16 reserved, name[56] */
        fw_read(e, sizeof e);
        if (strncmp((const char *)e + 8, name, 56) != 0)
            continue;
        uint32_t size = be32(e);
        uint16_t sel = (uint16_t)(e[4] << 8 | e[5]);
        outw(FW_SEL, sel);
        size_t take = size < cap - 1 ? size : cap - 1;
        fw_read(buf, take);
        buf[take] = 0;
        return (int)take;
    }
    return -1;
}
