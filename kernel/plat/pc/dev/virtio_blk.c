/*
 * virtio_blk.c - virtio-blk over the legacy (0.9.5) PCI interface, polled.
 *
 * Virtio 1.x spec, sections 2.6 (split virtqueues), 4.1.4.8 (legacy PCI
 * registers) and 5.2 (block device).  One virtqueue of up to 256
 * descriptors; a read is split into requests of up to REQ_BYTES, each a
 * three-descriptor chain (header, data, status), and up to MAX_INFLIGHT
 * requests are queued before the driver waits, so the device works on many
 * megabytes at once.  Buffers are physical addresses (identity map).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "x86/io.h"
#include "dev/blk.h"
#include "dev/pci.h"
#include "lib/kprintf.h"
#include "mm/phys.h"

/* Legacy register offsets from BAR0 (I/O space). */
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

#define VIRTIO_BLK_T_IN 0
#define REQ_BYTES (4u << 20)
#define MAX_INFLIGHT 32
#define QMAX 256

struct vring_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vring_avail { uint16_t flags, idx, ring[]; };
struct vring_used_elem { uint32_t id, len; };
struct vring_used { uint16_t flags, idx; struct vring_used_elem ring[]; };

struct blk_req_hdr { uint32_t type, reserved; uint64_t sector; };

struct vblk {
    struct blkdev blk;
    uint16_t io;
    uint16_t qsize;
    struct vring_desc *desc;
    struct vring_avail *avail;
    volatile struct vring_used *used;
    uint16_t last_used;
    struct blk_req_hdr hdr[MAX_INFLIGHT];
    volatile uint8_t status[MAX_INFLIGHT];
    char name[32];
};

static struct vblk disks[4];
static int ndisks;

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static int setup_queue(struct vblk *v)
{
    outw((uint16_t)(v->io + VIO_QUEUE_SEL), 0);
    uint16_t qs = inw((uint16_t)(v->io + VIO_QUEUE_SIZE));
    if (qs == 0)
        return -1;
    /* Legacy layout: descriptors, avail ring, then the used ring on the
     * next 4096-byte boundary; the device is told the size, not the layout. */
    uint64_t avail_off = 16ull * qs;
    uint64_t used_off = align_up(avail_off + 6 + 2ull * qs, 4096);
    uint64_t bytes = used_off + align_up(6 + 8ull * qs, 4096);
    uint64_t mem = phys_alloc(&kphys, bytes, 4096);
    if (!mem)
        return -1;
    memset((void *)mem, 0, bytes);
    v->qsize = qs;
    v->desc = (struct vring_desc *)mem;
    v->avail = (struct vring_avail *)(mem + avail_off);
    v->used = (volatile struct vring_used *)(mem + used_off);
    outl((uint16_t)(v->io + VIO_QUEUE_PFN), (uint32_t)(mem >> 12));
    return 0;
}

/* Queue one request of n bytes at lba into buf, as chain slot s. */
static void queue_req(struct vblk *v, int s, uint64_t lba, uint64_t buf, uint32_t n)
{
    uint16_t d = (uint16_t)(3 * s);
    v->hdr[s] = (struct blk_req_hdr){ VIRTIO_BLK_T_IN, 0, lba };
    v->status[s] = 0xFF;
    v->desc[d] = (struct vring_desc){ (uint64_t)&v->hdr[s], sizeof v->hdr[s], VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
    v->desc[d + 1] = (struct vring_desc){ buf, n, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (uint16_t)(d + 2) };
    v->desc[d + 2] = (struct vring_desc){ (uint64_t)&v->status[s], 1, VRING_DESC_F_WRITE, 0 };
    v->avail->ring[v->avail->idx % v->qsize] = d;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    v->avail->idx++;
}

/* Wait for one completion; returns the slot, with its status in *st. */
static int wait_one(struct vblk *v, int *st)
{
    while (v->used->idx == v->last_used)
        cpu_relax();
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint32_t id = v->used->ring[v->last_used % v->qsize].id;
    v->last_used++;
    int s = (int)(id / 3);
    *st = v->status[s];
    return s;
}

static int vblk_read(struct blkdev *b, uint64_t lba, void *buf, uint64_t bytes)
{
    struct vblk *v = b->priv;
    if (bytes % 512)
        return BLK_EARG;
    if (lba > b->sectors || bytes / 512 > b->sectors - lba)
        return BLK_ERANGE;
    int max_slots = v->qsize / 3 < MAX_INFLIGHT ? v->qsize / 3 : MAX_INFLIGHT;
    int free_slots[MAX_INFLIGHT], nfree = 0, inflight = 0, err = 0;
    for (int s = max_slots - 1; s >= 0; s--)
        free_slots[nfree++] = s;
    uint64_t done = 0, addr = (uint64_t)buf;
    while (done < bytes || inflight) {
        int queued = 0;
        while (done < bytes && nfree > 0) {
            uint32_t n = bytes - done < REQ_BYTES ? (uint32_t)(bytes - done) : REQ_BYTES;
            queue_req(v, free_slots[--nfree], lba + done / 512, addr + done, n);
            done += n;
            inflight++;
            queued = 1;
        }
        if (queued)
            outw((uint16_t)(v->io + VIO_QUEUE_NOTIFY), 0);
        int st;
        int s = wait_one(v, &st);
        if (st != 0)
            err = BLK_EIO;
        free_slots[nfree++] = s;
        inflight--;
    }
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
    v->io = (uint16_t)bar;
    outb((uint16_t)(v->io + VIO_STATUS), 0);   /* reset */
    outb((uint16_t)(v->io + VIO_STATUS), ST_ACK | ST_DRIVER);
    (void)inl((uint16_t)(v->io + VIO_DEV_FEATURES));
    outl((uint16_t)(v->io + VIO_DRV_FEATURES), 0);   /* no optional features */
    if (setup_queue(v) != 0) {
        outb((uint16_t)(v->io + VIO_STATUS), ST_FAILED);
        kprintf("virtio-blk %02x:%02x.%x: queue setup failed\n", d->bus, d->dev, d->fn);
        return 0;
    }
    outb((uint16_t)(v->io + VIO_STATUS), ST_ACK | ST_DRIVER | ST_DRIVER_OK);
    uint64_t cap = inl((uint16_t)(v->io + VIO_BLK_CAPACITY)) |
                   (uint64_t)inl((uint16_t)(v->io + VIO_BLK_CAPACITY + 4)) << 32;
    snprintf(v->name, sizeof v->name, "virtio-blk %02x:%02x.%x", d->bus, d->dev, d->fn);
    v->blk = (struct blkdev){ .name = v->name, .sectors = cap, .read = vblk_read, .priv = v };
    ndisks++;
    return 0;
}

void virtio_blk_probe(void)
{
    pci_scan(probe, NULL);
    for (int i = 0; i < ndisks; i++)
        blk_register(&disks[i].blk);
}
