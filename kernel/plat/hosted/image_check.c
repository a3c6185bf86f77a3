/* image_check.c - image header checks (see image_check.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "image_check.h"
#include "lib/crc32_fast.h"

static const char *const region_names[FLUID_REGION_COUNT] = { "stage 2", "kernel", "modules", "cache",
                                                              "model" };

__attribute__((format(printf, 4, 5))) static int fail(int code, char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why_size)
        vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return code;
}

int image_check_size(uint64_t file_bytes, char *why, size_t why_size)
{
    if (file_bytes < IMAGE_MIN_BYTES)
        return fail(IMAGE_E_TRUNCATED, why, why_size,
                    "truncated: %llu bytes, the image header alone ends at byte %llu",
                    (unsigned long long)file_bytes, (unsigned long long)IMAGE_MIN_BYTES);
    return IMAGE_OK;
}

int image_check_header(const struct fluid_image_header *h, uint64_t file_bytes, char *why, size_t why_size)
{
    if (memcmp(h->magic, FLUID_IMAGE_MAGIC, 8) != 0)
        return fail(IMAGE_E_MAGIC, why, why_size, "not a Fluid image (no %s magic at LBA %u)", FLUID_IMAGE_MAGIC,
                    FLUID_HEADER_LBA);
    if (h->version != FLUID_IMAGE_VERSION || h->header_bytes != sizeof *h)
        return fail(IMAGE_E_VERSION, why, why_size,
                    "image version %u (header of %u bytes); this Fluid reads version %u", h->version,
                    h->header_bytes, FLUID_IMAGE_VERSION);
    if (crc32_fast(0, h, offsetof(struct fluid_image_header, header_crc)) != h->header_crc)
        return fail(IMAGE_E_CRC, why, why_size, "image header checksum mismatch: the header is damaged");
    if (!memchr(h->model_name, 0, sizeof h->model_name))
        return fail(IMAGE_E_NAME, why, why_size, "image header: the model name is not terminated");
    for (int i = FLUID_REGION_STAGE2; i <= FLUID_REGION_MODULES; i++) {
        const struct fluid_region *r = &h->region[i];
        if (r->bytes == 0)
            continue;
        if (r->bytes > (uint64_t)r->sectors * FLUID_SECTOR_BYTES || r->lba <= FLUID_HEADER_LBA ||
            r->lba > file_bytes / FLUID_SECTOR_BYTES)
            return fail(IMAGE_E_REGION, why, why_size,
                        "image header: the %s region (LBA %llu, %llu bytes in %u sectors) is inconsistent",
                        region_names[i], (unsigned long long)r->lba, (unsigned long long)r->bytes, r->sectors);
        if (r->bytes > file_bytes - r->lba * FLUID_SECTOR_BYTES)
            return fail(IMAGE_E_TRUNCATED, why, why_size,
                        "truncated: the %s region ends at byte %llu but the file has %llu bytes", region_names[i],
                        (unsigned long long)(r->lba * FLUID_SECTOR_BYTES + r->bytes),
                        (unsigned long long)file_bytes);
    }
    return IMAGE_OK;
}
