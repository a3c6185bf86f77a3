/* fuzz_image.c - a GGUF file wrapped into a minimal image (see fuzz_image.h).
 *
 * Built with -DFUZZ_IMAGE_MAIN it is also a tool that writes such images
 * (the load fuzzer's image-mode seeds):
 *   fuzz_image [--crc chunked|plain|none] IN.gguf OUT.img
 */
#include <stdlib.h>
#include <string.h>
#include "fluid/image.h"
#include "fuzz_image.h"
#include "lib/crc32_fast.h"

/* FLUID_REGION_CRC_CHUNKED (fluid/image.h): the CRC-32 of the
 * little-endian CRC-32s of each FLUID_CRC_CHUNK_BYTES piece. */
static uint32_t chunked_crc(const uint8_t *p, size_t n)
{
    uint32_t crc = 0;
    for (size_t off = 0; off < n; off += FLUID_CRC_CHUNK_BYTES) {
        size_t len = n - off < FLUID_CRC_CHUNK_BYTES ? n - off : FLUID_CRC_CHUNK_BYTES;
        uint32_t c = crc32_fast(0, p + off, len);
        uint8_t le[4] = { (uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24) };
        crc = crc32_fast(crc, le, 4);
    }
    return crc;
}

/* After the header: one zero sector each for stage 2 and the kernel (the
 * header check wants both non-empty; the hosted platform boots neither),
 * then the model. */
#define LBA_STAGE2 (FLUID_HEADER_LBA + 1)
#define LBA_KERNEL (FLUID_HEADER_LBA + 2)
#define LBA_MODEL (FLUID_HEADER_LBA + 3)

uint64_t fuzz_image_bytes(size_t n)
{
    return (LBA_MODEL + (n + FLUID_SECTOR_BYTES - 1) / FLUID_SECTOR_BYTES) * FLUID_SECTOR_BYTES;
}

void fuzz_image_wrap(const uint8_t *gguf, size_t n, enum fuzz_image_crc crc, uint8_t *img)
{
    const uint64_t S = FLUID_SECTOR_BYTES, lba = LBA_MODEL, bytes = fuzz_image_bytes(n);
    uint64_t sectors = bytes / S - lba;
    memset(img, 0, (size_t)(lba * S));
    memset(img + bytes - S, 0, (size_t)S);   /* the padding of the last sector */
    struct fluid_image_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FLUID_IMAGE_MAGIC, 8);
    h.version = FLUID_IMAGE_VERSION;
    h.header_bytes = sizeof h;
    h.image_sectors = lba + sectors;
    h.region[FLUID_REGION_STAGE2] = (struct fluid_region){ .lba = LBA_STAGE2, .bytes = S, .sectors = 1 };
    h.region[FLUID_REGION_KERNEL] = (struct fluid_region){ .lba = LBA_KERNEL, .bytes = S, .sectors = 1 };
    struct fluid_region *r = &h.region[FLUID_REGION_MODEL];
    r->lba = lba;
    r->bytes = n;
    r->sectors = (uint32_t)sectors;
    if (crc == FUZZ_CRC_CHUNKED) {
        r->flags = FLUID_REGION_HAS_CRC | FLUID_REGION_CRC_CHUNKED;
        r->crc32 = chunked_crc(gguf, n);
    } else if (crc == FUZZ_CRC_PLAIN) {
        r->flags = FLUID_REGION_HAS_CRC;
        r->crc32 = crc32_fast(0, gguf, n);
    }
    strcpy(h.model_name, "fuzz.gguf");
    h.header_crc = crc32_fast(0, &h, offsetof(struct fluid_image_header, header_crc));
    memcpy(img + FLUID_HEADER_LBA * S, &h, sizeof h);
    if (n)
        memcpy(img + lba * S, gguf, n);
}

#ifdef FUZZ_IMAGE_MAIN
#include <stdio.h>

int main(int argc, char **argv)
{
    enum fuzz_image_crc crc = FUZZ_CRC_CHUNKED;
    int a = 1;
    int bad = 0;
    if (argc == 5 && !strcmp(argv[1], "--crc")) {
        crc = !strcmp(argv[2], "plain") ? FUZZ_CRC_PLAIN : !strcmp(argv[2], "none") ? FUZZ_CRC_NONE
            : FUZZ_CRC_CHUNKED;
        bad = crc == FUZZ_CRC_CHUNKED && strcmp(argv[2], "chunked") != 0;
        a = 3;
    }
    if (bad || argc - a != 2) {
        fprintf(stderr, "usage: fuzz_image [--crc chunked|plain|none] IN.gguf OUT.img\n");
        return 2;
    }
    FILE *in = fopen(argv[a], "rb");
    if (!in) {
        perror(argv[a]);
        return 2;
    }
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, in) != (size_t)n) {
        perror(argv[a]);
        return 2;
    }
    fclose(in);
    uint64_t bytes = fuzz_image_bytes((size_t)n);
    uint8_t *img = malloc((size_t)bytes);
    if (img)
        fuzz_image_wrap(buf, (size_t)n, crc, img);
    FILE *out = fopen(argv[a + 1], "wb");
    if (!img || !out || fwrite(img, 1, (size_t)bytes, out) != bytes || fclose(out) != 0) {
        perror(argv[a + 1]);
        return 2;
    }
    free(img);
    free(buf);
    return 0;
}
#endif
