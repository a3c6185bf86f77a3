/* crc32_fast.h - CRC-32 (IEEE, as zlib.crc32 and fluid/crc32.h) for the
 * model region, which is hundreds of MB: carry-less-multiply folding
 * (Gopal et al., Intel 2009), 256 bits a step with VPCLMULQDQ, 128 with
 * PCLMULQDQ; slicing-by-8 (Intel, "A Systematic Approach to Building High
 * Performance Software-Based CRC Generators", 2006) without them and for
 * the last bytes.  Safe to call from every CPU at once. */
#ifndef FLUID_CRC32_FAST_H
#define FLUID_CRC32_FAST_H
#include <stddef.h>
#include <stdint.h>
/* Continue crc over n bytes at p (start with 0); same values as crc32_update. */
uint32_t crc32_fast(uint32_t crc, const void *p, size_t n);
/* Tests: use at most path `level` (0 slicing-by-8, 1 PCLMULQDQ, 2
 * VPCLMULQDQ: the default), so each runs on a CPU that has the best. */
void crc32_fast_limit(int level);
#endif
