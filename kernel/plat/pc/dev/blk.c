/* blk.c - the registry of disks the drivers found, and the search for the
 * one the kernel booted from (its LBA 1 holds the very image header stage 2
 * handed over). */
#include <string.h>
#include "boot.h"
#include "dev/blk.h"
#include "lib/kprintf.h"

#define MAX_DISKS 16
static struct blkdev *disks[MAX_DISKS];
static int ndisks;

void blk_register(struct blkdev *d)
{
    if (ndisks < MAX_DISKS)
        disks[ndisks++] = d;
}

struct blkdev *blk_find_boot_disk(void)
{
    static int probed;
    static struct blkdev *found;
    if (!probed) {
        probed = 1;
        virtio_blk_probe();
        ahci_probe();
        static uint8_t sector[512] __attribute__((aligned(512)));
        for (int i = 0; i < ndisks && !found; i++)
            if (disks[i]->read(disks[i], FLUID_HEADER_LBA, sector, 512) == 0 &&
                memcmp(sector, &boot->image, sizeof boot->image) == 0)
                found = disks[i];
        if (!found)
            kprintf("disk: none of the %d disks found (virtio-blk, AHCI) holds the image this "
                    "kernel booted from\n", ndisks);
    }
    return found;
}
