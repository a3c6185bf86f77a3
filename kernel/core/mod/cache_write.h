/*
 * cache_write.h - the kernel writing its own PGO cache region: a new
 * generation holding tuned choices (mod/choice.h), committed with the
 * two-slot protocol of modules/module_abi.h, so a power cut at any moment
 * leaves the previous generation (and its choices) in force.
 *
 * The new slot repeats the newest valid slot's registry and module files
 * byte for byte (none when there is no valid slot), then the choice
 * table, then the trailer.  It goes into the slot that does NOT hold the
 * newest valid generation, in two writes, each durable when it returns
 * (struct blkdev's write: data past any volatile cache): first everything
 * but the trailer, then the trailer (the commit record).  Until the
 * trailer is on the disk the new slot has no matching commit record and
 * is ignored; the other slot is never written.  Afterwards the slot is
 * read back and checked as boot checks it.
 */
#ifndef FLUID_CACHE_WRITE_H
#define FLUID_CACHE_WRITE_H

#include <stdint.h>
#include "module_abi.h"

/* What the choices were measured with (copied into the slot header). */
struct cache_choice_meta {
    const char *tag;           /* CPU tag, e.g. "x86-64-v3" */
    const char *cpu_brand;     /* CPUID brand string */
    const char *model_id;      /* model whose shapes were timed */
    uint64_t tsc_hz;
};

struct cache_write_result {
    uint64_t generation;       /* the new generation */
    int slot;                  /* where it went */
    uint32_t slot_bytes;       /* bytes written, trailer included */
    uint32_t n_entries;        /* cached modules carried over */
};

/*
 * Write choices c[0..n) (n <= FLUID_CACHE_MAX_CHOICES; n = 0 clears them)
 * as a new generation.  stop_after >= 0 is a test hook (test mode only,
 * the caller checks): write only the first stop_after sectors of the
 * sequence (body sectors in order, then the trailer sector), each made
 * durable, then power off as a cut would; < 0 writes everything.
 * Returns 0 with *res filled and cache_info updated, or -1 with one line
 * in err (no cache region, disk not writable, write or flush error with
 * the driver's reason, read-back mismatch, slot full).  After a failure
 * the disk holds the previous generation in force, or - when the
 * trailer's write or flush failed but the write reached the disk anyway
 * (a device finishing it as it is reset) - the new one; never a mix (boot
 * checks both slots whole).  After a timeout the two slot buffers are not
 * given back (the device may still read them).
 */
int cache_write_choices(const struct fluid_cache_choice *c, int n, const struct cache_choice_meta *meta,
                        long stop_after, struct cache_write_result *res, char *err, size_t cap);
#endif
