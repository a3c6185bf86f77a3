/*
 * cache.h - the PGO module cache on the boot disk (layout:
 * modules/module_abi.h; written by tools/pgo.py apply and by the kernel's
 * `tune` (mod/cache_write.h); documented in cache/README.md).
 *
 * The image's CACHE region holds two slots.  At boot the kernel reads
 * both slot headers with its own disk driver, takes the valid slot with
 * the highest generation (a slot whose write was interrupted has no
 * matching commit record and is skipped), picks the registry tag for this
 * CPU (its own tag if present, else the richest tag whose features this
 * CPU has; tags needing features it lacks are rejected with the reason)
 * and loads that tag's modules over the baselines through the module
 * loader, which checks each one; modules of the other tags this CPU can
 * run are loaded too, as variants `tune` may choose, without serving any
 * op.  Then the slot's tuned choices (mod/choice.h) are put in force.
 * Any problem - unreadable, truncated, zeroed or damaged region - prints
 * one line and the baselines run.
 */
#ifndef FLUID_CACHE_H
#define FLUID_CACHE_H

#include <stdint.h>
#include "mod/modfmt.h"

struct blkdev;

struct cache_slot_info {
    enum cache_slot_state state;
    char why[160];             /* reason when not valid */
    uint64_t generation;       /* from the header (0 when unreadable) */
    uint32_t slot_bytes, n_entries, n_choices;
    char tags[160];            /* distinct registry tags (valid slots) */
};

struct cache_info {
    int present;               /* the image has a cache region */
    char error[200];           /* region-level problem, "" if none */
    uint64_t lba;              /* first sector of the region */
    uint32_t sectors;
    struct cache_slot_info slot[2];
    int active;                /* slot in use, -1 none */
    uint64_t generation;       /* of the active slot */
    char tag[FLUID_CACHE_TAG_BYTES]; /* tag whose modules were loaded, "" none */
    char model_id[64];         /* what the active slot was built for */
    int loaded, rejected;      /* cache modules */
    int candidates;            /* modules of other tags kept for `tune` */
};

extern struct cache_info cache_info;

/* What cache_scan() found on the disk. */
struct cache_scan {
    struct blkdev *disk;
    uint64_t lba;                        /* first sector of the region */
    struct cache_slot_info slot[2];
    struct fluid_cache_slot h[2];        /* headers (valid ones meaningful) */
    int active;                          /* newest valid slot, -1 none */
};

#define CACHE_NO_REGION -1   /* cache_scan(): the image has no cache region */
#define CACHE_NO_DISK -2     /* cache_scan(): the boot disk was not found */

/*
 * Read both slot headers of the image's cache region and the newest valid
 * slot, whole, into buf (FLUID_CACHE_SLOT_BYTES, 4 KiB aligned); fills
 * *sc (each slot's state and reason).  Returns 0 (sc->active may be -1:
 * no valid slot), or CACHE_NO_REGION / CACHE_NO_DISK with the reason in
 * err.
 */
int cache_scan(struct cache_scan *sc, uint8_t *buf, char *err, size_t cap);

/* Read the cache region and load its modules for this CPU (after the
 * baselines), then its tuned choices.  Never fails: problems are printed
 * and recorded. */
void cache_boot_load(void);

/* The `cache` command's report: region, both slots, active tag and
 * generation, modules loaded/rejected, tuned choices. */
void cache_print(void);
#endif
