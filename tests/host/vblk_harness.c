/*
 * vblk_harness.c - kernel/plat/pc/dev/virtio_blk.c against a model of a
 * legacy virtio-blk device (virtio 1.x 4.1.4.8 registers, 2.6 split
 * virtqueue, 5.2 requests) that can misbehave in ways QEMU will not:
 * never answer, a queue of 2 or 3 descriptors, I/O errors, unsupported
 * flushes, completions of descriptors that were never queued, a missing
 * status byte.  Port I/O goes to the model through tests/host/fakepc.
 *
 *   vblk_harness SCENARIO     prints what the driver did, one fact a line
 *
 * The TSC runs at its real rate but cpu.tsc_hz is set to 1 MHz, so the
 * driver's 30 s timeout passes in about 30 million TSC ticks (~10 ms).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "arch/x86/cpu.h"
#include "dev/blk.h"
#include "dev/pci.h"
#include "lib/kprintf.h"
#include "mm/phys.h"

/* ---- what the driver links against ---- */

struct cpu_info cpu;
struct phys_alloc kphys;
static struct blkdev *registered;

int kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("console: ");
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

void blk_register(struct blkdev *d) { registered = d; }

/* Below 4 GiB (MAP_32BIT: the first 2 GiB), so legacy's 32-bit queue PFN
 * holds it, as identity-mapped memory does on the machine. */
uint64_t phys_alloc(struct phys_alloc *pa, uint64_t bytes, uint64_t align)
{
    (void)pa, (void)align;
    void *p = mmap(NULL, (bytes + 4095) & ~4095ull, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
                   -1, 0);
    return p == MAP_FAILED ? 0 : (uint64_t)(uintptr_t)p;
}

#define IOBASE 0xC000
static const struct pci_dev fake_pci = { 0, 4, 0, 0x1AF4, 0x1001, 1, 0, 0 };

int pci_scan(int (*fn)(const struct pci_dev *d, void *ctx), void *ctx) { return fn(&fake_pci, ctx); }
uint64_t pci_bar(const struct pci_dev *d, int i, int *is_io)
{
    (void)d, (void)i;
    *is_io = 1;
    return IOBASE;
}
void pci_enable(const struct pci_dev *d) { (void)d; }

/* ---- the device ---- */

#define SECTORS 65536u   /* a 32 MiB disk */
static struct {
    uint32_t features, drv_features;
    uint16_t qsize, last_avail;
    uint8_t *ring;       /* queue memory (legacy layout) */
    uint8_t status;
    int resets;          /* writes of 0 to the status register after DRIVER_OK */
    int flushes, reads, writes;
    /* misbehaviour */
    int hang, ioerr_write, unsupp_flush, bad_id, no_status;
    uint8_t *disk;
} dev;

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

static void process(void)
{
    uint16_t qs = dev.qsize;
    struct desc *d = (struct desc *)dev.ring;
    volatile uint16_t *avail = (uint16_t *)(dev.ring + 16u * qs);
    uint64_t used_off = (16u * qs + 6 + 2u * qs + 4095) & ~4095u;
    volatile uint16_t *used = (uint16_t *)(dev.ring + used_off);
    while (dev.last_avail != avail[1]) {
        uint16_t head = avail[2 + dev.last_avail % qs];
        dev.last_avail++;
        struct desc *h = &d[head];
        const uint32_t *hdr = (const uint32_t *)(uintptr_t)h->addr;
        uint32_t type = hdr[0];
        uint64_t sector = *(const uint64_t *)(hdr + 2);
        struct desc *data = NULL, *st = &d[h->next];
        if (type != 4) {
            data = st;
            st = &d[data->next];
        }
        uint8_t status = 0;
        if (type == 0 || type == 1) {
            if (sector * 512 + data->len > (uint64_t)SECTORS * 512) {
                status = 1;
            } else if (type == 0) {
                memcpy((void *)(uintptr_t)data->addr, dev.disk + sector * 512, data->len);
                dev.reads++;
            } else if (dev.ioerr_write) {
                status = 1;
            } else {
                memcpy(dev.disk + sector * 512, (void *)(uintptr_t)data->addr, data->len);
                dev.writes++;
            }
        } else if (type == 4) {
            dev.flushes++;
            status = dev.unsupp_flush ? 2 : 0;
        } else {
            status = 2;
        }
        if (!dev.no_status)
            *(volatile uint8_t *)(uintptr_t)st->addr = status;
        uint16_t ui = used[1];
        volatile uint32_t *elem = (volatile uint32_t *)(used + 2) + 2u * (ui % qs);
        elem[0] = dev.bad_id ? head + 1u : head;
        elem[1] = data && type == 0 ? data->len + 1 : 1;
        __atomic_thread_fence(__ATOMIC_RELEASE);
        used[1] = (uint16_t)(ui + 1);
    }
}

void outb(uint16_t port, uint8_t v)
{
    if (port == IOBASE + 0x12) {
        if (v == 0 && (dev.status & 4))
            dev.resets++;
        dev.status = v;
    }
}
void outw(uint16_t port, uint16_t v)
{
    if (port == IOBASE + 0x10 && !dev.hang && dev.ring)
        process();
    (void)v;
}
void outl(uint16_t port, uint32_t v)
{
    if (port == IOBASE + 0x04)
        dev.drv_features = v;
    if (port == IOBASE + 0x08)
        dev.ring = (uint8_t *)(uintptr_t)((uint64_t)v << 12);
}
uint8_t inb(uint16_t port) { return port == IOBASE + 0x12 ? dev.status : 0; }
uint16_t inw(uint16_t port) { return port == IOBASE + 0x0C ? dev.qsize : 0; }
uint32_t inl(uint16_t port)
{
    if (port == IOBASE + 0x00)
        return dev.features;
    if (port == IOBASE + 0x14)
        return SECTORS;
    return 0;
}

/* ---- scenarios ---- */

#define F_RO (1u << 5)
#define F_FLUSH (1u << 9)

static uint8_t *buffer(size_t n, int seed)
{
    uint8_t *p = (uint8_t *)(uintptr_t)phys_alloc(&kphys, n, 4096);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + (size_t)seed * 7 + (i >> 9));
    return p;
}

static void result(const char *what, int rc)
{
    printf("%s %d%s%s\n", what, rc, rc && registered ? " " : "", rc && registered ? registered->error : "");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *s = argv[1];
    cpu.tsc_hz = 1000000;
    dev.disk = calloc(SECTORS, 512);
    dev.qsize = 256;
    dev.features = F_FLUSH;
    if (!strcmp(s, "noflush"))
        dev.features = 0;
    if (!strcmp(s, "ro"))
        dev.features = F_RO | F_FLUSH;
    if (!strncmp(s, "qsize", 5))
        dev.qsize = (uint16_t)atoi(s + 5);
    virtio_blk_probe();
    printf("registered %d\nnegotiated 0x%x\n", registered != NULL, dev.drv_features);
    if (!registered)
        return 0;
    printf("writable %d%s%s\n", registered->write != NULL, registered->read_only ? " " : "",
           registered->read_only ? registered->read_only : "");
    dev.hang = !strcmp(s, "hang");
    dev.ioerr_write = !strcmp(s, "ioerr");
    dev.unsupp_flush = !strcmp(s, "flusherr");
    dev.bad_id = !strcmp(s, "badid");
    dev.no_status = !strcmp(s, "nostatus");
    const size_t n = (9u << 20) + 512;   /* three requests of up to 4 MiB */
    uint8_t *out = buffer(n, 1), *back = buffer(n, 2);
    if (registered->write) {
        result("write", registered->write(registered, 100, out, n));
        printf("flushes %d writes %d\n", dev.flushes, dev.writes);
    }
    result("read", registered->read(registered, 100, back, n));
    printf("match %d\n", memcmp(out, back, n) == 0);
    result("read-again", registered->read(registered, 0, back, 512));
    result("past-end", registered->read(registered, SECTORS - 1, back, 1024));
    printf("resets %d\n", dev.resets);
    return 0;
}
