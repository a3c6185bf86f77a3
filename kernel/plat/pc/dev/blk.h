/* blk.h - disks as the kernel reads them: virtio-blk (QEMU) and AHCI SATA
 * (bare metal, and QEMU q35), polled, into identity-mapped memory; the
 * disk interface itself is plat/plat.h's struct blkdev. */
#ifndef FLUID_BLK_H
#define FLUID_BLK_H
#include <stdint.h>
#include "plat/plat.h"   /* struct blkdev, BLK_E* */

/* How long a driver waits for a device to complete one request (a read
 * or write of up to 16 MiB, or a cache flush) before it gives up with
 * BLK_ETIMEOUT: generous for a disk spinning up, short enough that a dead
 * device ends in a message instead of a hang.  Measured with the TSC. */
#define BLK_TIMEOUT_MS 30000u

/* Find the disk whose LBA 1 holds the image header stage 2 booted from
 * (probing the drivers on first use).  Returns NULL (after printing why)
 * when there is none. */
struct blkdev *blk_find_boot_disk(void);

/* For drivers: add a disk found while probing. */
void blk_register(struct blkdev *d);
void virtio_blk_probe(void);   /* dev/virtio_blk.c */
void ahci_probe(void);         /* dev/ahci.c */
#endif
