/*
 * image_check.h - the checks the hosted platform makes on an image file's
 * header before it boots it: the one check stage 2 makes on the machine
 * (fluid/image_check.h: fluid_image_check) with the file as the disk, and
 * the file's own size, each turned into a one-line message.  Pure
 * functions, no I/O: hosted_image_open() (image.c) runs them on the
 * file, the load-path fuzzer (tests/host/load_fuzz.c) on its inputs.
 *
 * The cache and model regions are not checked here: the portable core
 * checks them against the boot disk (mod/cache.c, llm/model.c), with the
 * same messages on both platforms.
 */
#ifndef FLUID_HOSTED_IMAGE_CHECK_H
#define FLUID_HOSTED_IMAGE_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include "fluid/image.h"

enum image_check_status {
    IMAGE_OK = 0,
    IMAGE_E_TRUNCATED = -1,   /* the file ends before the header or a boot region */
    IMAGE_E_MAGIC = -2,       /* no FLUID_IMAGE_MAGIC at LBA FLUID_HEADER_LBA */
    IMAGE_E_VERSION = -3,     /* version or header_bytes is not this Fluid's */
    IMAGE_E_CRC = -4,         /* header_crc is not the CRC-32 of the bytes before it */
    IMAGE_E_NAME = -5,        /* model_name has no terminating NUL */
    IMAGE_E_REGION = -6,      /* a region's fields contradict each other or the image size
                               * (fluid_image_check's other faults) */
};

/* The byte count a file needs before its header can be read:
 * (FLUID_HEADER_LBA + 1) sectors. */
#define IMAGE_MIN_BYTES ((FLUID_HEADER_LBA + 1) * (uint64_t)FLUID_SECTOR_BYTES)

/* Is a file of file_bytes long enough to hold the header?  IMAGE_OK, or
 * IMAGE_E_TRUNCATED with one line in why[why_size] ("truncated: ..."). */
int image_check_size(uint64_t file_bytes, char *why, size_t why_size);

/*
 * Check the header h read from byte FLUID_HEADER_LBA * 512 of a file of
 * file_bytes bytes (>= IMAGE_MIN_BYTES) with fluid_image_check(), the
 * file's sectors as the disk: magic, CRC, version, NUL-terminated model
 * name, every region against the others, stage 2 / kernel / modules inside
 * their load areas and inside the file.  Returns IMAGE_OK or the first
 * fault as an IMAGE_E_*, with one line (no newline) in why[why_size].
 */
int image_check_header(const struct fluid_image_header *h, uint64_t file_bytes, char *why, size_t why_size);

#endif
