/*
 * fuzz_image.h - the smallest image the kernel boots around a GGUF file:
 * sector 0 zero (no stage 1: nothing here is booted by a BIOS), the image
 * header at LBA FLUID_HEADER_LBA, one zero sector each as the stage 2 and
 * kernel regions (fluid_image_check wants them non-empty; the hosted
 * platform and the fuzzer boot neither), then the file as the model
 * region, zero-padded to whole sectors.  No modules or cache region.  The header fields are those
 * tools/mkimage.c writes (magic, version, header_bytes, image_sectors,
 * model_name, header CRC); the region is only packed tighter (mkimage puts
 * regions on 1 MiB boundaries, which the kernel does not require).
 */
#ifndef FLUID_FUZZ_IMAGE_H
#define FLUID_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* How the model region's CRC is recorded (its flags). */
enum fuzz_image_crc {
    FUZZ_CRC_CHUNKED,   /* FLUID_REGION_HAS_CRC | FLUID_REGION_CRC_CHUNKED, as mkimage */
    FUZZ_CRC_PLAIN,     /* FLUID_REGION_HAS_CRC: one CRC-32 of the whole file */
    FUZZ_CRC_NONE,      /* no flag: the kernel checks no CRC */
};

/* Bytes of the image of an n-byte file (a whole number of sectors). */
uint64_t fuzz_image_bytes(size_t n);
/* Write the image of gguf[0..n) to img[0..fuzz_image_bytes(n)). */
void fuzz_image_wrap(const uint8_t *gguf, size_t n, enum fuzz_image_crc crc, uint8_t *img);

#endif
