/*
 * image.c - the image file as the hosted platform boots it: the same
 * checks stage 2 makes (fluid_image_check, through image_check.c: header
 * CRC, version, every region against the others and the file's size;
 * CRC-32 of the stage 2, kernel and module regions), then the
 * MODULES region in memory and the file itself as the boot disk.  The
 * cache and model regions are read and checked by the portable core, as
 * on the unikernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fluid/image.h"
#include "fluid/image_check.h"
#include "hosted.h"
#include "image_check.h"
#include "lib/crc32_fast.h"
#include "plat/plat.h"

static struct fluid_image_header header;
static void *modules;
static uint64_t modules_bytes;
static int fd = -1;
static struct blkdev disk;


/* Read exactly n bytes at off; 0, or -1 with errno (EIO for a short read). */
static int pread_all(void *buf, uint64_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        p += r, off += (uint64_t)r, n -= (uint64_t)r;
    }
    return 0;
}

/* A large read is split over every worker thread: each faults in (and
 * the kernel zeroes) its own part of the destination and copies its part
 * of the page cache, so a model loads at several cores' copy speed. */
struct read_job { uint8_t *buf; uint64_t off, bytes; _Atomic int failed; };

#define READ_PIECE (4u << 20)

static void read_pieces(void *ctx, int begin, int end, int worker)
{
    (void)worker;
    struct read_job *j = ctx;
    for (int i = begin; i < end; i++) {
        uint64_t at = (uint64_t)i * READ_PIECE, n = j->bytes - at < READ_PIECE ? j->bytes - at : READ_PIECE;
        if (pread_all(j->buf + at, n, j->off + at) != 0)
            j->failed = 1;
    }
}

static int disk_read(struct blkdev *d, uint64_t lba, void *buf, uint64_t bytes)
{
    if (bytes % 512)
        return BLK_EARG;
    if (lba > d->sectors || bytes / 512 > d->sectors - lba)
        return BLK_ERANGE;
    if (bytes < 2 * READ_PIECE || plat_cpus_online() == 1)
        return pread_all(buf, bytes, lba * 512) == 0 ? 0 : BLK_EIO;
    struct read_job j = { buf, lba * 512, bytes, 0 };
    plat_parallel_for((int)((bytes + READ_PIECE - 1) / READ_PIECE), read_pieces, &j);
    return j.failed ? BLK_EIO : 0;
}

/* pwrite, then fdatasync: durable before it returns, as a disk flush.
 * Every failure says which call failed and errno's text in d->error. */
static int disk_write(struct blkdev *d, uint64_t lba, const void *buf, uint64_t bytes)
{
    if (bytes % 512) {
        snprintf(d->error, sizeof d->error, "%llu bytes is not a multiple of 512", (unsigned long long)bytes);
        return BLK_EARG;
    }
    if (lba > d->sectors || bytes / 512 > d->sectors - lba) {
        snprintf(d->error, sizeof d->error, "sectors %llu+%llu lie past the end of the image (%llu sectors)",
                 (unsigned long long)lba, (unsigned long long)(bytes / 512), (unsigned long long)d->sectors);
        return BLK_ERANGE;
    }
    const uint8_t *p = buf;
    uint64_t off = lba * 512;
    while (bytes) {
        ssize_t w = pwrite(fd, p, bytes, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(d->error, sizeof d->error, "pwrite at byte %llu: %s", (unsigned long long)off,
                     w == 0 ? "nothing written" : strerror(errno));
            return BLK_EIO;
        }
        p += w, off += (uint64_t)w, bytes -= (uint64_t)w;
    }
    if (fdatasync(fd) != 0) {
        snprintf(d->error, sizeof d->error, "fdatasync: %s", strerror(errno));
        return BLK_EIO;
    }
    return 0;
}

static const char *image_path;
static int opened_read_only;   /* no write permission: the disk cannot be written */

/* Print "fluid-hosted: IMAGE: <why>" on stderr and return -1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fluid-hosted: %s: %s\n", image_path, why);
    return -1;
}


int hosted_image_open(const char *path)
{
    image_path = path;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS))
        fd = open(path, O_RDONLY | O_CLOEXEC), opened_read_only = 1;
    if (fd < 0)
        return fail("cannot open the image: %s (build one with: make image)", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return fail("not a regular file");
    uint64_t size = (uint64_t)st.st_size;
    char why[256];
    if (image_check_size(size, why, sizeof why) != IMAGE_OK)
        return fail("%s", why);
    if (pread_all(&header, sizeof header, FLUID_HEADER_LBA * 512ull) != 0)
        return fail("cannot read the image header: %s", strerror(errno));
    /* The one header check stage 2 makes, the file as the disk: CRC first,
     * then every region against the others, the boot regions against the
     * file's size (the cache and model regions are the core's to check,
     * with the unikernel's messages). */
    if (image_check_header(&header, size, why, sizeof why) != IMAGE_OK)
        return fail("%s", why);
    disk = (struct blkdev){ .name = path, .sectors = size / 512, .read = disk_read, .write = disk_write };

    /* Stage 2 and kernel: checked as stage 2 checks them (this process
     * runs neither, but a damaged image must not pass here and then fail
     * on the machine).  Modules: read, checked, kept. */
    for (int i = FLUID_REGION_STAGE2; i <= FLUID_REGION_MODULES; i++) {
        const struct fluid_region *r = &header.region[i];
        if (r->bytes == 0 || !(r->flags & FLUID_REGION_HAS_CRC))
            continue;
        void *buf = malloc(r->bytes);
        if (!buf)
            return fail("out of memory reading the %s region (%llu bytes)", fluid_region_name(i),
                        (unsigned long long)r->bytes);
        if (pread_all(buf, r->bytes, r->lba * 512) != 0)
            return fail("cannot read the %s region: %s", fluid_region_name(i), strerror(errno));
        if (crc32_fast(0, buf, r->bytes) != r->crc32) {
            free(buf);
            return fail("%s region checksum mismatch: the image is damaged", fluid_region_name(i));
        }
        if (i == FLUID_REGION_MODULES) {
            modules = buf;
            modules_bytes = r->bytes;
        } else {
            free(buf);
        }
    }
    return 0;
}

const struct fluid_image_header *plat_image(void) { return &header; }

struct blkdev *plat_boot_disk(void)
{
    if (fd >= 0 && opened_read_only) {
        disk.write = NULL;
        disk.read_only = "the image file is not writable by this process (opened read-only)";
    }
    return fd >= 0 ? &disk : NULL;
}

const void *plat_modules_region(uint64_t *bytes)
{
    *bytes = modules_bytes;
    return modules;
}
