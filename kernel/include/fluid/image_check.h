/*
 * image_check.h - the one check of an image header (image.h), made by every
 * reader before it uses any field: stage 2 (in real mode, before its first
 * BIOS read), the hosted platform, and tools/mkimage.c (on what it writes
 * and what it reads).  Header-only, like crc32.h, so 16-bit, 32-bit and
 * 64-bit code and the host tools share one definition.
 *
 * fluid_image_check(h, disk_sectors) looks at the 512 header bytes in this
 * order and returns the first fault (FLUID_IMG_OK when there is none):
 *   1. magic, then the header CRC (computed over the raw 508 bytes, before
 *      any field is read), then version and header_bytes;
 *   2. model_name has a NUL inside its 64 bytes;
 *   3. image_sectors covers at least the MBR and the header;
 *   4. each region, in index order: only known flag bits; `bytes` fits in
 *      its `sectors` (compared without rounding `bytes` up, so a value near
 *      2^64 cannot wrap); a non-empty region starts after the header and
 *      after the end of the region before it (no overlap, in order) and
 *      ends inside image_sectors; stage 2, kernel and modules fit their
 *      load areas (FLUID_*_MAX_BYTES), stage 2 and the kernel are not
 *      empty, and, when the disk's size is known (disk_sectors != 0, in
 *      512-byte sectors), the bytes of these three are on the disk.
 * The cache and model regions are checked against the disk by the kernel
 * when it reads them (mod/cache.c, llm/model.c), so an image cut short
 * inside them still boots and says what is missing.
 * After FLUID_IMG_OK every region satisfies lba + sectors <= image_sectors
 * and bytes <= sectors * 512 < 2^41, so no sector or 2 MiB round-up of
 * `bytes` can overflow 64 bits.
 * `where` (may be NULL) receives the region index, or -1 for the header.
 */
#ifndef FLUID_IMAGE_CHECK_H
#define FLUID_IMAGE_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include "fluid/crc32.h"
#include "fluid/image.h"

enum fluid_image_fault {
    FLUID_IMG_OK = 0,
    FLUID_IMG_EMAGIC,    /* no FLUID_IMAGE_MAGIC at FLUID_HEADER_LBA */
    FLUID_IMG_ECRC,      /* header_crc is not the CRC-32 of the bytes before it */
    FLUID_IMG_EVERSION,  /* version or header_bytes is not this build's */
    FLUID_IMG_ENAME,     /* model_name is not NUL-terminated inside its field */
    FLUID_IMG_ESIZE,     /* image_sectors does not cover the MBR and the header */
    FLUID_IMG_EFLAGS,    /* a region has unknown flag bits */
    FLUID_IMG_EBYTES,    /* a region's bytes exceed its sectors * 512 */
    FLUID_IMG_EORDER,    /* a region overlaps the header or the region before it */
    FLUID_IMG_EBOUNDS,   /* a region ends past image_sectors */
    FLUID_IMG_ELIMIT,    /* stage 2 / kernel / modules: empty or larger than its load area */
    FLUID_IMG_EDISK,     /* stage 2 / kernel / modules: bytes past the end of the disk */
};

/* A phrase for each fault, no newline.  Header faults (where == -1) are
 * whole sentences; region faults follow "image header: the <name> region ". */
static inline const char *fluid_image_fault_text(enum fluid_image_fault f)
{
    switch (f) {
    case FLUID_IMG_OK: return "no fault";
    case FLUID_IMG_EMAGIC: return "not a Fluid image (no " FLUID_IMAGE_MAGIC " magic)";
    case FLUID_IMG_ECRC: return "image header checksum mismatch: the header is damaged";
    case FLUID_IMG_EVERSION: return "image header: version or size is not the one this Fluid reads";
    case FLUID_IMG_ENAME: return "image header: the model name is not terminated inside its field";
    case FLUID_IMG_ESIZE: return "image header: the image is smaller than its own MBR and header";
    case FLUID_IMG_EFLAGS: return "has unknown flags";
    case FLUID_IMG_EBYTES: return "holds more bytes than its sectors";
    case FLUID_IMG_EORDER: return "overlaps the header or the region before it";
    case FLUID_IMG_EBOUNDS: return "ends past the end of the image";
    case FLUID_IMG_ELIMIT: return "is empty or larger than its load area";
    case FLUID_IMG_EDISK: return "ends past the end of the disk (truncated image?)";
    }
    return "unknown fault";
}

/* "stage 2", "kernel", "modules", "cache", "model" for a region index. */
static inline const char *fluid_region_name(int i)
{
    switch (i) {
    case FLUID_REGION_STAGE2: return "stage 2";
    case FLUID_REGION_KERNEL: return "kernel";
    case FLUID_REGION_MODULES: return "modules";
    case FLUID_REGION_CACHE: return "cache";
    case FLUID_REGION_MODEL: return "model";
    }
    return "?";
}

static inline enum fluid_image_fault fluid_image_check(const struct fluid_image_header *h,
                                                        uint64_t disk_sectors, int *where)
{
    int dummy;
    int *w = where ? where : &dummy;
    *w = -1;
    /* The CRC first, over raw bytes: no field is trusted before it. */
    uint32_t crc = crc32_update(0, h, offsetof(struct fluid_image_header, header_crc));
    const char *m = FLUID_IMAGE_MAGIC;
    for (int i = 0; i < 8; i++)
        if (h->magic[i] != m[i])
            return FLUID_IMG_EMAGIC;
    if (crc != h->header_crc)
        return FLUID_IMG_ECRC;
    if (h->version != FLUID_IMAGE_VERSION || h->header_bytes != sizeof *h)
        return FLUID_IMG_EVERSION;
    int named = 0;
    for (size_t i = 0; i < sizeof h->model_name; i++)
        named |= h->model_name[i] == 0;
    if (!named)
        return FLUID_IMG_ENAME;
    const uint64_t first = FLUID_HEADER_LBA + 1;   /* regions start after the header */
    if (h->image_sectors < first)
        return FLUID_IMG_ESIZE;
    static const uint32_t max_bytes[FLUID_REGION_MODULES + 1] = {
        FLUID_STAGE2_MAX_BYTES, FLUID_KERNEL_MAX_BYTES, FLUID_MODULES_MAX_BYTES,
    };
    uint64_t prev_end = first;
    for (int i = 0; i < FLUID_REGION_COUNT; i++) {
        const struct fluid_region *r = &h->region[i];
        *w = i;
        if (r->flags & ~(uint32_t)(FLUID_REGION_HAS_CRC | FLUID_REGION_CRC_CHUNKED))
            return FLUID_IMG_EFLAGS;
        /* bytes <= sectors * 512, without rounding bytes up. */
        uint64_t full = r->bytes / FLUID_SECTOR_BYTES, part = r->bytes % FLUID_SECTOR_BYTES != 0;
        if (full > r->sectors || full + part > r->sectors)
            return FLUID_IMG_EBYTES;
        if (i <= FLUID_REGION_MODULES &&
            (r->bytes > max_bytes[i] || (r->bytes == 0 && i != FLUID_REGION_MODULES)))
            return FLUID_IMG_ELIMIT;
        if (r->sectors == 0)
            continue;   /* empty: its lba names no sector */
        if (r->lba < prev_end)
            return FLUID_IMG_EORDER;
        if (r->lba > h->image_sectors || r->sectors > h->image_sectors - r->lba)
            return FLUID_IMG_EBOUNDS;
        prev_end = r->lba + r->sectors;
        uint64_t used = full + part;   /* sectors holding its bytes */
        if (i <= FLUID_REGION_MODULES && disk_sectors && (r->lba > disk_sectors || used > disk_sectors - r->lba))
            return FLUID_IMG_EDISK;
    }
    *w = -1;
    return FLUID_IMG_OK;
}

#endif
