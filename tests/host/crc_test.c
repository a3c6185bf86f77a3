/* crc_test.c - prints the CRC-32 of stdin twice: by fluid/crc32.h (the
 * bootloader's) and by crc32_fast (the kernel's, fed in pieces of argv[1]
 * bytes, default 1000, so unaligned starts and every path are exercised:
 * the PCLMULQDQ folding from 256 bytes on, slicing-by-8 below and for the
 * tail), in hex, space-separated.  argv[2]: the highest path crc32_fast
 * may take (crc32_fast_limit: 0 slicing-by-8, 1 PCLMULQDQ, 2 VPCLMULQDQ). */
#include <stdio.h>
#include <stdlib.h>
#include "fluid/crc32.h"
#include "lib/crc32_fast.h"

int main(int argc, char **argv)
{
    static unsigned char buf[1 << 20];
    size_t piece = argc > 1 ? (size_t)atol(argv[1]) : 1000, n;
    if (piece == 0 || piece > sizeof buf)
        piece = 1000;
    if (argc > 2)
        crc32_fast_limit(atoi(argv[2]));
    uint32_t crc = 0, fast = 0;
    while ((n = fread(buf, 1, piece, stdin)) > 0) {
        crc = crc32_update(crc, buf, n);
        fast = crc32_fast(fast, buf, n);
    }
    printf("%08x %08x\n", crc, fast);
    return 0;
}
