/* crc32_fast.c - slicing-by-8 CRC-32 (see crc32_fast.h). */
#include <string.h>
#include "lib/crc32_fast.h"

static uint32_t T[8][256];
static int ready;

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        T[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            T[s][i] = (T[s - 1][i] >> 8) ^ T[0][T[s - 1][i] & 0xFF];
    ready = 1;
}

uint32_t crc32_fast(uint32_t crc, const void *data, size_t n)
{
    if (!ready)
        init();
    const uint8_t *p = data;
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = T[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        n--;
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = T[7][w & 0xFF] ^ T[6][(w >> 8) & 0xFF] ^ T[5][(w >> 16) & 0xFF] ^
              T[4][(w >> 24) & 0xFF] ^ T[3][(w >> 32) & 0xFF] ^ T[2][(w >> 40) & 0xFF] ^
              T[1][(w >> 48) & 0xFF] ^ T[0][w >> 56];
    }
    while (n--)
        crc = T[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
