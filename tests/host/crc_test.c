/* crc_test.c - prints the CRC-32 (fluid/crc32.h) of stdin in hex. */
#include <stdio.h>
#include "fluid/crc32.h"

int main(void)
{
    static unsigned char buf[1 << 16];
    size_t n;
    uint32_t crc = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        crc = crc32_update(crc, buf, n);
    printf("%08x\n", crc);
    return 0;
}
