/* image_check.c - image header checks (see image_check.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "image_check.h"
#include "fluid/image_check.h"

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
    int where;
    enum fluid_image_fault f = fluid_image_check(h, file_bytes / FLUID_SECTOR_BYTES, &where);
    const struct fluid_region *r = where >= 0 ? &h->region[where] : NULL;
    switch (f) {
    case FLUID_IMG_OK:
        return IMAGE_OK;
    case FLUID_IMG_EDISK:
        return fail(IMAGE_E_TRUNCATED, why, why_size,
                    "truncated: the %s region ends at byte %llu but the file has %llu bytes",
                    fluid_region_name(where), (unsigned long long)(r->lba * FLUID_SECTOR_BYTES + r->bytes),
                    (unsigned long long)file_bytes);
    case FLUID_IMG_EMAGIC:
        return fail(IMAGE_E_MAGIC, why, why_size, "not a Fluid image (no %s magic at LBA %u)", FLUID_IMAGE_MAGIC,
                    FLUID_HEADER_LBA);
    case FLUID_IMG_ECRC:
        return fail(IMAGE_E_CRC, why, why_size, "%s", fluid_image_fault_text(f));
    case FLUID_IMG_EVERSION:
        return fail(IMAGE_E_VERSION, why, why_size,
                    "image version %u (header of %u bytes); this Fluid reads version %u", h->version,
                    h->header_bytes, FLUID_IMAGE_VERSION);
    case FLUID_IMG_ENAME:
        return fail(IMAGE_E_NAME, why, why_size, "%s", fluid_image_fault_text(f));
    default:
        break;
    }
    if (r)
        return fail(IMAGE_E_REGION, why, why_size, "image header: the %s region %s (LBA %llu, %llu bytes in %u sectors, flags 0x%x)",
                    fluid_region_name(where), fluid_image_fault_text(f), (unsigned long long)r->lba,
                    (unsigned long long)r->bytes, r->sectors, r->flags);
    return fail(IMAGE_E_REGION, why, why_size, "%s", fluid_image_fault_text(f));
}
