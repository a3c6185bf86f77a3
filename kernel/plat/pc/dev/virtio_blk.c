/*
 * virtio_blk.c - virtio-blk over the legacy (0.9.5) PCI interface, polled.
 *
 * Virtio 1.x spec, sections 2.6 (split virtqueues), 4.1.4.8 (legacy PCI
 * registers) and 5.2 (block device).  One virtqueue; a transfer is split
 * into requests of up to REQ_BYTES, each a three-descriptor chain (header,
 * data, status; a flush is header and status), and up to MAX_INFLIGHT
 * requests are queued before the driver waits, so the device works on many
 * megabytes at once.  Buffers are physical addresses (identity map).
 *
 * Writes: VIRTIO_BLK_T_OUT, then VIRTIO_BLK_T_FLUSH when the device offers
 * VIRTIO_BLK_F_FLUSH (5.2.3; legacy name VIRTIO_BLK_F_WCE).  Per 5.2.5.1
 * (legacy interface: device initialisation) the cache is in writeback mode
 * after reset if and only if that feature is negotiated, so without it a
 * completed write is already durable.  A device offering VIRTIO_BLK_F_RO
 * is never written.
 *
 * Robustness: every wait for a completion has a TSC deadline
 * (BLK_TIMEOUT_MS); a device that misses it, or completes a descriptor
 * that is not a request in flight, is reset (which stops it touching our
 * buffers) and disabled, with one line saying why.  A queue too small for
 * one request chain, or not a power of two (2.6: split queue sizes are),
 * is refused at probe time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "x86/io.h"
#include "dev/blk.h"
#include "dev/pci.h"
#include "lib/kprintf.h"
#include "mm/phys.h"

/* Legacy register offsets from BAR0 (I/O space), 4.1.4.8. */
#define VIO_DEV_FEATURES 0x00
#define VIO_DRV_FEATURES 0x04
#define VIO_QUEUE_PFN 0x08
#define VIO_QUEUE_SIZE 0x0C
#define VIO_QUEUE_SEL 0x0E
#define VIO_QUEUE_NOTIFY 0x10
#define VIO_STATUS 0x12
#define VIO_BLK_CAPACITY 0x14

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FAILED 128

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

/* 5.2.3 feature bits, 5.2.6 request types and status values. */
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define STATUS_UNSET 0xFF      /* what we store before the device answers */

#define REQ_BYTES (4u << 20)
#define MAX_INFLIGHT 32
#define DESC_PER_REQ 3         /* header, data, status */

struct vring_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vring_avail { uint16_t flags, idx, ring[]; };
struct vring_used_elem { uint32_t id, len; };
struct vring_used { uint16_t flags, idx; struct vring_used_elem ring[]; };

struct blk_req_hdr { uint32_t type, reserved; uint64_t sector; };

struct vblk {
    struct blkdev blk;
    uint16_t io;
    uint16_t qsize;
    int slots;                 /* request chains in flight at most */
    int flush;                 /* VIRTIO_BLK_F_FLUSH negotiated */
    int dead;                  /* reset and disabled after a failure */
    struct vring_desc *desc;
    struct vring_avail *avail;
    volatile struct vring_used *used;
    uint16_t last_used;
    uint8_t busy[MAX_INFLIGHT];      /* chain s is with the device */
    uint64_t lba[MAX_INFLIGHT];      /* what chain s asked for (messages) */
    struct blk_req_hdr hdr[MAX_INFLIGHT];
    volatile uint8_t status[MAX_INFLIGHT];
    char name[32];
    char why_dead[128];
};

static struct vblk disks[4];
static int ndisks;

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static const char *type_name(uint32_t t)
{
    return t == VIRTIO_BLK_T_IN ? "read" : t == VIRTIO_BLK_T_OUT ? "write" : "cache flush";
}

/* Reset the device (it drops every request and stops using our memory,
 * 2.1 / 4.1.4.8) and refuse it from now on; the reason goes to blk.error
 * and to the console. */
static void disable(struct vblk *v, const char *why)
{
    outb((uint16_t)(v->io + VIO_STATUS), 0);
    v->dead = 1;
    snprintf(v->why_dead, sizeof v->why_dead, "%s", why);
    snprintf(v->blk.error, sizeof v->blk.error, "%s; device reset and disabled", why);
    kprintf("%s: %s\n", v->name, v->blk.error);
}

/* Queue size check and ring memory (legacy layout: descriptors, avail
 * ring, then the used ring on the next 4096-byte boundary).  Returns 0, or
 * -1 with the reason in why. */
static int setup_queue(struct vblk *v, char *why, size_t cap)
{
    outw((uint16_t)(v->io + VIO_QUEUE_SEL), 0);
    uint16_t qs = inw((uint16_t)(v->io + VIO_QUEUE_SIZE));
    if (qs < DESC_PER_REQ) {
        snprintf(why, cap, "queue size %u is below the %d descriptors one request needs", qs, DESC_PER_REQ);
        return -1;
    }
    if (qs & (qs - 1)) {
        snprintf(why, cap, "queue size %u is not a power of two (virtio 2.6)", qs);
        return -1;
    }
    uint64_t avail_off = 16ull * qs;
    uint64_t used_off = align_up(avail_off + 6 + 2ull * qs, 4096);
    uint64_t bytes = used_off + align_up(6 + 8ull * qs, 4096);
    uint64_t mem = phys_alloc(&kphys, bytes, 4096);
    if (!mem || (mem >> 12) >> 32) {
        snprintf(why, cap, "no memory below 16 TiB for a queue of %u descriptors", qs);
        return -1;
    }
    memset((void *)mem, 0, bytes);
    v->qsize = qs;
    v->slots = qs / DESC_PER_REQ < MAX_INFLIGHT ? qs / DESC_PER_REQ : MAX_INFLIGHT;
    v->desc = (struct vring_desc *)mem;
    v->avail = (struct vring_avail *)(mem + avail_off);
    v->used = (volatile struct vring_used *)(mem + used_off);
    outl((uint16_t)(v->io + VIO_QUEUE_PFN), (uint32_t)(mem >> 12));
    return 0;
}

/* Queue one request as chain s: `type` of n bytes at lba, data at buf
 * (no data for a flush). */
static void queue_req(struct vblk *v, int s, uint32_t type, uint64_t lba, uint64_t buf, uint32_t n)
{
    uint16_t d = (uint16_t)(DESC_PER_REQ * s);
    v->hdr[s] = (struct blk_req_hdr){ type, 0, lba };
    v->status[s] = STATUS_UNSET;
    v->busy[s] = 1;
    v->lba[s] = lba;
    v->desc[d] = (struct vring_desc){ (uint64_t)&v->hdr[s], sizeof v->hdr[s], VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
    uint16_t st = (uint16_t)(d + 1);
    if (type != VIRTIO_BLK_T_FLUSH) {
        /* The data descriptor is device-writable for a read only. */
        uint16_t fl = VRING_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0);
        v->desc[d + 1] = (struct vring_desc){ buf, n, fl, (uint16_t)(d + 2) };
        st = (uint16_t)(d + 2);
    }
    v->desc[st] = (struct vring_desc){ (uint64_t)&v->status[s], 1, VRING_DESC_F_WRITE, 0 };
    v->avail->ring[v->avail->idx % v->qsize] = d;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    v->avail->idx++;
}

/* Wait for one completion (at most BLK_TIMEOUT_MS): 0 with its chain in
 * *slot, or BLK_ETIMEOUT / BLK_EIO after disabling the device. */
static int wait_one(struct vblk *v, uint32_t type, int *slot)
{
    uint64_t end = rdtsc() + cpu.tsc_hz / 1000 * BLK_TIMEOUT_MS;
    while (v->used->idx == v->last_used) {
        if (rdtsc() > end) {
            char why[128];
            uint64_t lba = 0;
            for (int s = 0; s < v->slots; s++)
                if (v->busy[s]) {
                    lba = v->lba[s];
                    break;
                }
            snprintf(why, sizeof why, "no answer in %u s to a %s at LBA %llu", BLK_TIMEOUT_MS / 1000,
                     type_name(type), (unsigned long long)lba);
            disable(v, why);
            return BLK_ETIMEOUT;
        }
        cpu_relax();
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint32_t id = v->used->ring[v->last_used % v->qsize].id;
    v->last_used++;
    int s = (int)(id / DESC_PER_REQ);
    if (id % DESC_PER_REQ || s >= v->slots || !v->busy[s]) {
        char why[128];
        snprintf(why, sizeof why, "the device completed descriptor %u, which heads no request in flight", id);
        disable(v, why);
        return BLK_EIO;
    }
    v->busy[s] = 0;
    *slot = s;
    return 0;
}

/* Record the first failed request of a transfer in blk.error. */
static void request_error(struct vblk *v, uint32_t type, int s, uint8_t st)
{
    const char *what = st == VIRTIO_BLK_S_IOERR ? "I/O error (VIRTIO_BLK_S_IOERR)"
                     : st == VIRTIO_BLK_S_UNSUPP ? "request not supported (VIRTIO_BLK_S_UNSUPP)"
                     : st == STATUS_UNSET ? "completed without writing its status byte"
                     : "unknown status";
    if (type == VIRTIO_BLK_T_FLUSH)
        snprintf(v->blk.error, sizeof v->blk.error, "cache flush: %s (status %u)", what, st);
    else
        snprintf(v->blk.error, sizeof v->blk.error, "%s at LBA %llu: %s (status %u)", type_name(type),
                 (unsigned long long)v->lba[s], what, st);
}

/* Run one transfer: `type` (IN or OUT) of `bytes` at lba to/from buf, or a
 * flush (bytes 0).  Every request queued is waited for, even after one
 * fails, so the ring stays in step.  Returns 0 or a BLK_E* code. */
static int transfer(struct vblk *v, uint32_t type, uint64_t lba, uint64_t buf, uint64_t bytes)
{
    if (v->dead) {
        snprintf(v->blk.error, sizeof v->blk.error, "disabled after an earlier failure: %s", v->why_dead);
        return BLK_EDEAD;
    }
    int free_slots[MAX_INFLIGHT], nfree = 0, inflight = 0, err = 0;
    for (int s = v->slots - 1; s >= 0; s--)
        free_slots[nfree++] = s;
    uint64_t done = 0;
    int todo = 1;    /* a flush is one request with no data */
    while (todo || inflight) {
        int queued = 0;
        while (todo && nfree > 0 && !err) {
            uint32_t n = bytes - done < REQ_BYTES ? (uint32_t)(bytes - done) : REQ_BYTES;
            queue_req(v, free_slots[--nfree], type, lba + done / 512, buf + done, n);
            done += n;
            todo = done < bytes;
            inflight++;
            queued = 1;
        }
        if (err)
            todo = 0;      /* stop queueing after a failure; collect the rest */
        if (queued)
            outw((uint16_t)(v->io + VIO_QUEUE_NOTIFY), 0);
        if (!inflight)
            break;
        int s, rc = wait_one(v, type, &s);
        if (rc)
            return rc;     /* the device is reset: nothing is in flight any more */
        uint8_t st = v->status[s];
        if (st != VIRTIO_BLK_S_OK && !err) {
            request_error(v, type, s, st);
            err = BLK_EIO;
        }
        free_slots[nfree++] = s;
        inflight--;
    }
    return err;
}

static int check_range(struct blkdev *b, uint64_t lba, uint64_t bytes)
{
    if (bytes % 512) {
        snprintf(b->error, sizeof b->error, "%llu bytes is not a multiple of 512", (unsigned long long)bytes);
        return BLK_EARG;
    }
    if (lba > b->sectors || bytes / 512 > b->sectors - lba) {
        snprintf(b->error, sizeof b->error, "sectors %llu+%llu lie past the end of the disk (%llu sectors)",
                 (unsigned long long)lba, (unsigned long long)(bytes / 512), (unsigned long long)b->sectors);
        return BLK_ERANGE;
    }
    return 0;
}

static int vblk_read(struct blkdev *b, uint64_t lba, void *buf, uint64_t bytes)
{
    int err = check_range(b, lba, bytes);
    if (err || !bytes)
        return err;
    return transfer(b->priv, VIRTIO_BLK_T_IN, lba, (uint64_t)buf, bytes);
}

static int vblk_write(struct blkdev *b, uint64_t lba, const void *buf, uint64_t bytes)
{
    struct vblk *v = b->priv;
    int err = check_range(b, lba, bytes);
    if (err || !bytes)
        return err;
    err = transfer(v, VIRTIO_BLK_T_OUT, lba, (uint64_t)buf, bytes);
    if (!err && v->flush)
        err = transfer(v, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
    return err;
}

static int probe(const struct pci_dev *d, void *ctx)
{
    (void)ctx;
    /* 0x1001: transitional virtio-blk (legacy I/O BAR0). */
    if (d->vendor != 0x1AF4 || d->device != 0x1001 || ndisks == 4)
        return 0;
    int is_io;
    uint64_t bar = pci_bar(d, 0, &is_io);
    if (!is_io)
        return 0;
    pci_enable(d);
    struct vblk *v = &disks[ndisks];
    memset(v, 0, sizeof *v);
    v->io = (uint16_t)bar;
    snprintf(v->name, sizeof v->name, "virtio-blk %02x:%02x.%x", d->bus, d->dev, d->fn);
    outb((uint16_t)(v->io + VIO_STATUS), 0);   /* reset */
    outb((uint16_t)(v->io + VIO_STATUS), ST_ACK | ST_DRIVER);
    uint32_t offered = inl((uint16_t)(v->io + VIO_DEV_FEATURES));
    uint32_t want = offered & (1u << VIRTIO_BLK_F_FLUSH);
    outl((uint16_t)(v->io + VIO_DRV_FEATURES), want);
    v->flush = (want >> VIRTIO_BLK_F_FLUSH) & 1;
    char why[128];
    if (setup_queue(v, why, sizeof why) != 0) {
        outb((uint16_t)(v->io + VIO_STATUS), ST_FAILED);
        kprintf("%s: %s; device not used\n", v->name, why);
        return 0;
    }
    outb((uint16_t)(v->io + VIO_STATUS), ST_ACK | ST_DRIVER | ST_DRIVER_OK);
    uint64_t cap = inl((uint16_t)(v->io + VIO_BLK_CAPACITY)) |
                   (uint64_t)inl((uint16_t)(v->io + VIO_BLK_CAPACITY + 4)) << 32;
    v->blk = (struct blkdev){ .name = v->name, .sectors = cap, .read = vblk_read, .priv = v };
    if (offered & (1u << VIRTIO_BLK_F_RO))
        v->blk.read_only = "the device is read-only (VIRTIO_BLK_F_RO)";
    else
        v->blk.write = vblk_write;
    ndisks++;
    return 0;
}

void virtio_blk_probe(void)
{
    pci_scan(probe, NULL);
    for (int i = 0; i < ndisks; i++)
        blk_register(&disks[i].blk);
}
