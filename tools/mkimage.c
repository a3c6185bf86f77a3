/*
 * mkimage.c - writes and inspects Fluid disk images (layout: image.h).
 *
 *   mkimage -o IMG --stage1 F --stage2 F --kernel F [--modules F]
 *           [--cache F] [--model F.gguf]     build a new image
 *   mkimage --write-cache IMG F              replace the cache region's
 *                                            contents in place
 *   mkimage --info IMG                       print the header
 *
 * Every region starts on a 1 MiB boundary; CRC-32s are computed here and
 * checked by stage 2 (kernel, modules) and the kernel (model).  Errors
 * name the file and what is wrong and exit with status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fluid/crc32.h"
#include "fluid/image.h"
#include "fluid/image_check.h"

#define SECTOR FLUID_SECTOR_BYTES
#define ALIGN_BYTES ((uint64_t)FLUID_REGION_ALIGN_SECTORS * SECTOR)
#define COPY_CHUNK (8u << 20)

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "mkimage: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        die("cannot read %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Copy `path` to `out` at byte offset `at`; returns its CRC-32, plain or
 * (chunked != 0) in the FLUID_REGION_CRC_CHUNKED form. */
static uint32_t copy_in(FILE *out, uint64_t at, const char *path, uint64_t bytes, int chunked)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        die("cannot open %s: %s", path, strerror(errno));
    static uint8_t buf[FLUID_CRC_CHUNK_BYTES];
    uint32_t crc = 0;
    if (fseeko(out, (off_t)at, SEEK_SET) != 0)
        die("seek failed in output: %s%s", strerror(errno), "");
    for (uint64_t done = 0; done < bytes;) {
        size_t want = bytes - done < sizeof buf ? (size_t)(bytes - done) : sizeof buf;
        size_t got = fread(buf, 1, want, in);
        if (got != want)
            die("short read from %s%s", path, "");
        if (chunked) {
            uint32_t c = crc32_update(0, buf, got);
            uint8_t le[4] = { (uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24) };
            crc = crc32_update(crc, le, 4);
        } else {
            crc = crc32_update(crc, buf, got);
        }
        if (fwrite(buf, 1, got, out) != got)
            die("write failed: %s%s", strerror(errno), "");
        done += got;
    }
    fclose(in);
    return crc;
}

static void header_crc(struct fluid_image_header *h)
{
    h->header_crc = crc32_update(0, h, offsetof(struct fluid_image_header, header_crc));
}

static void set_partition(uint8_t *mbr, uint64_t total_sectors)
{
    uint8_t *p = mbr + 446;
    uint64_t n = total_sectors - 1;
    if (n > 0xFFFFFFFFu)
        n = 0xFFFFFFFFu;
    memset(p, 0, 64);
    p[0] = 0x80;                       /* bootable */
    p[1] = 0xFE; p[2] = 0xFF; p[3] = 0xFF;   /* CHS: use LBA */
    p[4] = 0xDA;                       /* "non-filesystem data" */
    p[5] = 0xFE; p[6] = 0xFF; p[7] = 0xFF;
    uint32_t start = 1, count = (uint32_t)n;
    memcpy(p + 8, &start, 4);
    memcpy(p + 12, &count, 4);
}

static int build(const char *out_path, const char *paths[FLUID_REGION_COUNT], const char *stage1)
{
    static const uint64_t max_bytes[FLUID_REGION_COUNT] = {
        FLUID_STAGE2_MAX_BYTES, FLUID_KERNEL_MAX_BYTES, FLUID_MODULES_MAX_BYTES,
        FLUID_CACHE_BYTES, UINT64_MAX,
    };
    static const char *names[FLUID_REGION_COUNT] = { "stage 2", "kernel", "modules", "cache", "model" };
    struct fluid_image_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FLUID_IMAGE_MAGIC, 8);
    h.version = FLUID_IMAGE_VERSION;
    h.header_bytes = sizeof h;

    uint8_t mbr[SECTOR];
    FILE *s1 = fopen(stage1, "rb");
    if (!s1 || fread(mbr, 1, SECTOR, s1) != SECTOR)
        die("cannot read 512 bytes of stage 1 from %s%s", stage1, "");
    fclose(s1);
    if (mbr[510] != 0x55 || mbr[511] != 0xAA)
        die("%s has no boot signature%s", stage1, "");

    FILE *out = fopen(out_path, "wb+");
    if (!out)
        die("cannot create %s: %s", out_path, strerror(errno));
    uint64_t next = 2 * SECTOR;   /* stage 2 right after the header */
    for (int r = 0; r < FLUID_REGION_COUNT; r++) {
        uint64_t bytes = paths[r] ? file_size(paths[r]) : 0;
        if (bytes > max_bytes[r])
            die("%s region: file too large (%s)", names[r], paths[r]);
        uint64_t cap = r == FLUID_REGION_CACHE ? FLUID_CACHE_BYTES : align_up(bytes, SECTOR);
        h.region[r].lba = next / SECTOR;
        h.region[r].bytes = bytes;
        h.region[r].sectors = (uint32_t)(cap / SECTOR);
        if (cap / SECTOR > 0xFFFFFFFFu)
            die("%s region: file too large (%s)", names[r], paths[r]);
        if (paths[r] && bytes) {
            int chunked = r == FLUID_REGION_MODEL;
            h.region[r].crc32 = copy_in(out, next, paths[r], bytes, chunked);
            h.region[r].flags = FLUID_REGION_HAS_CRC | (chunked ? FLUID_REGION_CRC_CHUNKED : 0);
        }
        next = align_up(next + cap, ALIGN_BYTES);
    }
    if (paths[FLUID_REGION_MODEL]) {
        const char *base = strrchr(paths[FLUID_REGION_MODEL], '/');
        snprintf(h.model_name, sizeof h.model_name, "%s", base ? base + 1 : paths[FLUID_REGION_MODEL]);
    }
    h.image_sectors = next / SECTOR;
    header_crc(&h);
    int where;
    enum fluid_image_fault f = fluid_image_check(&h, 0, &where);
    if (f != FLUID_IMG_OK)   /* what no reader would accept is never written */
        die("internal error: the header fails its own check (region %s): %s",
            where >= 0 ? fluid_region_name(where) : "none", fluid_image_fault_text(f));
    set_partition(mbr, h.image_sectors);
    if (fseeko(out, 0, SEEK_SET) != 0 || fwrite(mbr, 1, SECTOR, out) != SECTOR ||
        fwrite(&h, 1, SECTOR, out) != SECTOR)
        die("write failed: %s%s", strerror(errno), "");
    if (ftruncate(fileno(out), (off_t)next) != 0)
        die("cannot size %s: %s", out_path, strerror(errno));
    if (fclose(out) != 0)
        die("write failed: %s%s", strerror(errno), "");
    return 0;
}

/* Read and check the header as stage 2 does (fluid_image_check, with the
 * file's size as the disk's); dies naming the fault. */
static int read_header(FILE *f, struct fluid_image_header *h, const char *path)
{
    if (fseeko(f, (off_t)FLUID_HEADER_LBA * SECTOR, SEEK_SET) != 0 || fread(h, 1, sizeof *h, f) != sizeof *h)
        die("%s: too short to be a Fluid image%s", path, "");
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        die("cannot stat %s: %s", path, strerror(errno));
    int where;
    enum fluid_image_fault fault = fluid_image_check(h, (uint64_t)st.st_size / SECTOR, &where);
    if (fault != FLUID_IMG_OK) {
        char why[160];
        snprintf(why, sizeof why, "%s%s%s", where >= 0 ? "image header: the " : "",
                 where >= 0 ? fluid_region_name(where) : "", where >= 0 ? " region " : "");
        snprintf(why + strlen(why), sizeof why - strlen(why), "%s", fluid_image_fault_text(fault));
        die("%s: %s", path, why);
    }
    return 0;
}

/* Replace the cache region's contents.  Writes only inside the region;
 * the cache format itself (two slots) makes a torn write safe. */
static int write_cache(const char *img, const char *cache)
{
    FILE *f = fopen(img, "rb+");
    if (!f)
        die("cannot open %s: %s", img, strerror(errno));
    struct fluid_image_header h;
    read_header(f, &h, img);
    uint64_t bytes = file_size(cache);
    const struct fluid_region *r = &h.region[FLUID_REGION_CACHE];
    if (bytes > (uint64_t)r->sectors * SECTOR)
        die("%s does not fit the cache region of %s", cache, img);
    copy_in(f, r->lba * SECTOR, cache, bytes, 0);
    if (fclose(f) != 0)
        die("write failed: %s%s", strerror(errno), "");
    return 0;
}

static int info(const char *img)
{
    FILE *f = fopen(img, "rb");
    if (!f)
        die("cannot open %s: %s", img, strerror(errno));
    struct fluid_image_header h;
    read_header(f, &h, img);
    static const char *names[FLUID_REGION_COUNT] = { "stage2", "kernel", "modules", "cache", "model" };
    /* model_name is NUL-terminated: read_header checked it. */
    printf("image: %llu sectors, model '%s'\n", (unsigned long long)h.image_sectors, h.model_name);
    for (int r = 0; r < FLUID_REGION_COUNT; r++)
        printf("%-8s lba %-10llu bytes %-12llu sectors %-10u crc32 %08x%s\n", names[r],
               (unsigned long long)h.region[r].lba, (unsigned long long)h.region[r].bytes,
               h.region[r].sectors, h.region[r].crc32,
               h.region[r].flags & FLUID_REGION_HAS_CRC ? "" : " (none)");
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *paths[FLUID_REGION_COUNT] = { 0 }, *out = NULL, *stage1 = NULL;
    if (argc == 3 && strcmp(argv[1], "--info") == 0)
        return info(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--write-cache") == 0)
        return write_cache(argv[2], argv[3]);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "-o")) out = v;
        else if (!strcmp(k, "--stage1")) stage1 = v;
        else if (!strcmp(k, "--stage2")) paths[FLUID_REGION_STAGE2] = v;
        else if (!strcmp(k, "--kernel")) paths[FLUID_REGION_KERNEL] = v;
        else if (!strcmp(k, "--modules")) paths[FLUID_REGION_MODULES] = v;
        else if (!strcmp(k, "--cache")) paths[FLUID_REGION_CACHE] = v;
        else if (!strcmp(k, "--model")) paths[FLUID_REGION_MODEL] = *v ? v : NULL;
        else die("unknown option %s%s", k, "");
    }
    if (!out || !stage1 || !paths[FLUID_REGION_STAGE2] || !paths[FLUID_REGION_KERNEL]) {
        fprintf(stderr, "usage: mkimage -o IMG --stage1 F --stage2 F --kernel F [--modules F] [--cache F] [--model F]\n"
                        "       mkimage --write-cache IMG F\n       mkimage --info IMG\n");
        return 2;
    }
    return build(out, paths, stage1);
}
