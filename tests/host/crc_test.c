/* crc_test.c - prints the CRC-32 of stdin twice: by fluid/crc32.h (the
 * bootloader's) and by crc32_fast (the kernel's, fed in 1000-byte pieces
 * so unaligned starts are exercised), in hex, space-separated. */
#include <stdio.h>
#include "fluid/crc32.h"
#include "lib/crc32_fast.h"

int main(void)
{
    static unsigned char buf[1000];
    size_t n;
    uint32_t crc = 0, fast = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        crc = crc32_update(crc, buf, n);
        fast = crc32_fast(fast, buf, n);
    }
    printf("%08x %08x\n", crc, fast);
    return 0;
}
