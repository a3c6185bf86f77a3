/* blk.h - disks as the kernel reads them: virtio-blk (QEMU) and AHCI SATA
 * (bare metal, and QEMU q35), polled, into identity-mapped memory. */
#ifndef FLUID_BLK_H
#define FLUID_BLK_H
#include <stdint.h>

struct blkdev {
    const char *name;            /* "virtio-blk 00:04.0" */
    uint64_t sectors;            /* capacity in 512-byte sectors */
    /* Read `bytes` (a multiple of 512) starting at `lba` into `buf`
     * (physically contiguous, identity-mapped).  Returns 0, or a negative
     * BLK_E* code. */
    int (*read)(struct blkdev *d, uint64_t lba, void *buf, uint64_t bytes);
    void *priv;
};

#define BLK_EIO -1        /* the device reported an error */
#define BLK_ERANGE -2     /* past the end of the disk */
#define BLK_EARG -3       /* length not a multiple of 512 */

/* Find the disk whose LBA 1 holds the image header stage 2 booted from
 * (probing the drivers on first use).  Returns NULL (after printing why)
 * when there is none. */
struct blkdev *blk_find_boot_disk(void);

/* For drivers: add a disk found while probing. */
void blk_register(struct blkdev *d);
void virtio_blk_probe(void);   /* dev/virtio_blk.c */
void ahci_probe(void);         /* dev/ahci.c */
#endif
