/* crc32_fast.h - CRC-32 (IEEE, as zlib.crc32 and fluid/crc32.h) by
 * slicing-by-8 (Intel, "A Systematic Approach to Building High Performance
 * Software-Based CRC Generators", 2006): 8 bytes per step.  For the model
 * region, which is hundreds of MB. */
#ifndef FLUID_CRC32_FAST_H
#define FLUID_CRC32_FAST_H
#include <stddef.h>
#include <stdint.h>
/* Continue crc over n bytes at p (start with 0); same values as crc32_update. */
uint32_t crc32_fast(uint32_t crc, const void *p, size_t n);
#endif
