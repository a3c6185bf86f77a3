/*
 * crc32.h - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the same
 * function as zlib.crc32, header-only so the 32-bit bootloader, the kernel
 * and the host tools share one definition.
 *
 * crc32_update(crc, p, n): continue a CRC over n bytes at p; start with 0.
 * Bitwise-per-byte with a 256-entry table built on first use.
 */
#ifndef FLUID_CRC32_H
#define FLUID_CRC32_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32_update(uint32_t crc, const void *data, size_t n)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#endif
