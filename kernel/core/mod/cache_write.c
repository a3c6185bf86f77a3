/* cache_write.c - a new cache generation with tuned choices (see
 * cache_write.h; layout: modules/module_abi.h). */
#include <stdio.h>
#include <string.h>
#include "fluid/crc32.h"
#include "lib/kprintf.h"
#include "lib/sha256.h"
#include "mod/cache.h"
#include "mod/cache_write.h"
#include "plat/plat.h"

#define WRITER "fluid kernel tune"
#define SECTOR 512u

static uint32_t up(uint32_t v, uint32_t a) { return (v + a - 1) / a * a; }

/* End of the module files of a checked slot (the registry's end when it
 * has none): everything before it is carried over unchanged. */
static uint32_t modules_end(const uint8_t *slot, const struct fluid_cache_slot *h)
{
    uint32_t end = h->registry_offset + h->registry_bytes;
    for (uint32_t i = 0; i < h->n_entries; i++) {
        struct fluid_cache_entry e;
        if (modfmt_slot_entry(slot, h, i, &e, NULL, 0) == 0 && e.offset + e.bytes > end)
            end = e.offset + e.bytes;
    }
    return end;
}

/* Write sectors [from, to) of the slot image at region sector base, but
 * stop (power cut) once *budget sectors are spent. */
static int write_part(struct blkdev *d, uint64_t base, const uint8_t *img, uint32_t from, uint32_t to,
                      long *budget)
{
    uint32_t n = to - from;
    if (*budget >= 0 && (long)n > *budget)
        n = (uint32_t)*budget;
    if (*budget >= 0)
        *budget -= (long)n;
    d->error[0] = 0;
    return n ? d->write(d, base + from, img + (uint64_t)from * SECTOR, (uint64_t)n * SECTOR) : 0;
}

int cache_write_choices(const struct fluid_cache_choice *c, int n, const struct cache_choice_meta *meta,
                        long stop_after, struct cache_write_result *res, char *err, size_t cap)
{
    if (n < 0 || n > FLUID_CACHE_MAX_CHOICES) {
        snprintf(err, cap, "%d choices do not fit a slot's table (at most %d)", n, FLUID_CACHE_MAX_CHOICES);
        return -1;
    }
    uint8_t *img = plat_alloc(FLUID_CACHE_SLOT_BYTES, 4096);
    uint8_t *back = plat_alloc(FLUID_CACHE_SLOT_BYTES, 4096);
    int rc = -1;
    if (!img || !back) {
        snprintf(err, cap, "no memory for two cache slots (%u KiB each)", FLUID_CACHE_SLOT_BYTES / 1024);
        goto out;
    }
    struct cache_scan sc;
    char why[160];
    if (cache_scan(&sc, img, why, sizeof why) != 0) {
        snprintf(err, cap, "%s", why);
        goto out;
    }
    struct blkdev *d = sc.disk;
    for (int s = 0; s < 2; s++)
        if (sc.slot[s].state == SLOT_UNREAD) {
            /* Which slot holds the generation in force is unknown: writing
             * either could destroy it. */
            snprintf(err, cap, "cannot read cache slot %d (%s); nothing written", s, sc.slot[s].why);
            goto out;
        }
    if (!d->write) {
        snprintf(err, cap, "%s cannot be written: %s", d->name, d->read_only ? d->read_only : "no write support");
        goto out;
    }
    /* The new slot: the newest valid slot's header, registry and modules
     * (already in img), or an empty one. */
    struct fluid_cache_slot h;
    uint32_t carry;
    if (sc.active >= 0) {
        h = sc.h[sc.active];
        carry = modules_end(img, &h);
    } else {
        memset(&h, 0, sizeof h);
        memcpy(h.magic, FLUID_CACHE_MAGIC, 8);
        h.version = FLUID_CACHE_VERSION;
        h.header_bytes = sizeof h;
        h.registry_offset = sizeof h;
        sha256(img, 0, h.registry_sha256);
        snprintf(h.model_id, sizeof h.model_id, "%s", meta->model_id);
        carry = sizeof h;
    }
    uint32_t choice_off = n ? up(carry, FLUID_CACHE_CHOICE_ALIGN) : 0;
    uint32_t end = n ? choice_off + (uint32_t)n * (uint32_t)sizeof *c : carry;
    uint32_t slot_bytes = up(end, SECTOR) + (uint32_t)sizeof(struct fluid_cache_trailer);
    if (slot_bytes > FLUID_CACHE_SLOT_BYTES) {
        snprintf(err, cap, "the slot would need %u bytes; it holds %u", slot_bytes, FLUID_CACHE_SLOT_BYTES);
        goto out;
    }
    memset(img + carry, 0, slot_bytes - carry);
    if (n)
        memcpy(img + choice_off, c, (size_t)n * sizeof *c);
    uint64_t old_gen = sc.active >= 0 ? h.generation : 0;
    h.generation = old_gen + 1;
    h.slot_bytes = slot_bytes;
    memset(h.writer, 0, sizeof h.writer);
    snprintf(h.writer, sizeof h.writer, "%s", WRITER);
    h.choice_offset = choice_off;
    h.n_choices = (uint32_t)n;
    sha256(img + choice_off, (size_t)n * sizeof *c, h.choice_sha256);
    memset(h.choice_tag, 0, sizeof h.choice_tag);
    memset(h.choice_cpu, 0, sizeof h.choice_cpu);
    memset(h.choice_model_id, 0, sizeof h.choice_model_id);
    h.choice_tsc_hz = 0;
    if (n) {
        snprintf(h.choice_tag, sizeof h.choice_tag, "%s", meta->tag);
        snprintf(h.choice_cpu, sizeof h.choice_cpu, "%s", meta->cpu_brand);
        snprintf(h.choice_model_id, sizeof h.choice_model_id, "%s", meta->model_id);
        h.choice_tsc_hz = meta->tsc_hz;
    }
    memset(h.reserved, 0, sizeof h.reserved);
    h.header_crc = crc32_update(0, &h, offsetof(struct fluid_cache_slot, header_crc));
    memcpy(img, &h, sizeof h);
    struct fluid_cache_trailer t;
    memset(&t, 0, sizeof t);
    memcpy(t.magic, FLUID_CACHE_END_MAGIC, 8);
    t.generation = h.generation;
    t.header_crc = h.header_crc;
    t.slot_bytes = slot_bytes;
    t.trailer_crc = crc32_update(0, &t, offsetof(struct fluid_cache_trailer, trailer_crc));
    memcpy(img + slot_bytes - sizeof t, &t, sizeof t);

    int target = sc.active >= 0 ? 1 - sc.active : 0;
    uint64_t base = sc.lba + (uint64_t)target * (FLUID_CACHE_SLOT_BYTES / SECTOR);
    uint32_t sectors = slot_bytes / SECTOR;
    long budget = stop_after;
    /* 1: everything but the trailer, durable; 2: the trailer, durable. */
    int e = write_part(d, base, img, 0, sectors - 1, &budget), in_trailer = 0;
    if (!e && budget != 0) {
        in_trailer = 1;
        e = write_part(d, base, img, sectors - 1, sectors, &budget);
    }
    if (e) {
        /* A failed commit-record write may still have reached the disk
         * (its flush failed, or the device finished it when reset). */
        snprintf(err, cap, "writing generation %llu to slot %d failed: %s; %s", (unsigned long long)h.generation,
                 target, d->error[0] ? d->error : blk_strerror(e),
                 in_trailer ? "the next boot runs the previous generation or, if the commit record reached the "
                              "disk after all, this one (both whole)"
                            : "the previous generation stays in force");
        if (e == BLK_ETIMEOUT)
            img = back = NULL;   /* a device that timed out may still read them: never reuse them */
        goto out;
    }
    if (stop_after >= 0 && stop_after < (long)sectors) {
        kprintf("tune: SIMULATED POWER CUT after %ld of %u sectors of generation %llu (slot %d)\n", stop_after,
                sectors, (unsigned long long)h.generation, target);
        plat_power_off();
    }
    /* Read it back and check it as the next boot will. */
    d->error[0] = 0;
    e = d->read(d, base, back, slot_bytes);
    if (e) {
        snprintf(err, cap, "reading generation %llu back failed: %s", (unsigned long long)h.generation,
                 d->error[0] ? d->error : blk_strerror(e));
        goto out;
    }
    struct fluid_cache_slot hb;
    enum cache_slot_state st = modfmt_slot_header(back, FLUID_CACHE_SLOT_BYTES, &hb, why, sizeof why);
    if (st == SLOT_VALID)
        st = modfmt_slot_check(back, slot_bytes, &hb, why, sizeof why);
    if (st != SLOT_VALID || memcmp(back, img, slot_bytes) != 0) {
        snprintf(err, cap, "generation %llu reads back %s%s%s", (unsigned long long)h.generation,
                 st != SLOT_VALID ? modfmt_slot_state_name(st) : "different from what was written",
                 st != SLOT_VALID ? ": " : "", st != SLOT_VALID ? why : "");
        goto out;
    }
    res->generation = h.generation;
    res->slot = target;
    res->slot_bytes = slot_bytes;
    res->n_entries = h.n_entries;
    /* What `cache` reports from now on. */
    struct cache_slot_info *si = &cache_info.slot[target];
    struct cache_slot_info keep = sc.active >= 0 ? sc.slot[sc.active] : (struct cache_slot_info){ 0 };
    *si = keep;
    si->state = SLOT_VALID;
    si->why[0] = 0;
    si->generation = h.generation;
    si->slot_bytes = slot_bytes;
    si->n_entries = h.n_entries;
    si->n_choices = (uint32_t)n;
    if (sc.active >= 0)
        cache_info.slot[sc.active] = sc.slot[sc.active];
    cache_info.present = 1;
    cache_info.error[0] = 0;
    cache_info.active = target;
    cache_info.generation = h.generation;
    if (sc.active < 0)
        snprintf(cache_info.model_id, sizeof cache_info.model_id, "%s", h.model_id);
    rc = 0;
out:
    if (img)
        plat_free(img, FLUID_CACHE_SLOT_BYTES);
    if (back)
        plat_free(back, FLUID_CACHE_SLOT_BYTES);
    return rc;
}
