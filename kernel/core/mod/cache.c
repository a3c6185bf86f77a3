/* cache.c - reading the PGO module cache at boot (see cache.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "mod/cache.h"
#include "mod/choice.h"
#include "mod/loader.h"
#include "plat/plat.h"

struct cache_info cache_info = { .active = -1 };

static uint8_t hdr_buf[2][512] __attribute__((aligned(4096)));

static void region_error(const char *fmt, const char *a, unsigned long long x, unsigned long long y)
{
    snprintf(cache_info.error, sizeof cache_info.error, fmt, a, x, y);
    kprintf("cache: %s; the image's modules run\n", cache_info.error);
}

/* Distinct tags of the registry of a checked slot into out. */
static void slot_tags(const uint8_t *slot, const struct fluid_cache_slot *h, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < h->n_entries; i++) {
        struct fluid_cache_entry e;
        if (modfmt_slot_entry(slot, h, i, &e, NULL, 0) != 0)
            continue;
        int seen = 0;
        for (uint32_t j = 0; j < i && !seen; j++) {
            struct fluid_cache_entry f;
            seen = modfmt_slot_entry(slot, h, j, &f, NULL, 0) == 0 && strcmp(f.tag, e.tag) == 0;
        }
        if (!seen && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", e.tag);
    }
}

/* Choose the tag to load: this CPU's own, else the usable one with the
 * most features.  Prints a line for each tag rejected. */
static int choose_tag(const char *tags, char *out)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s", tags);
    int best_bits = -1;
    out[0] = 0;
    for (char *t = buf, *next; t && *t; t = next) {
        next = strchr(t, ' ');
        if (next)
            *next++ = 0;
        if (strcmp(t, cpu.tag) == 0) {
            snprintf(out, FLUID_CACHE_TAG_BYTES, "%s", t);
            return 0;
        }
    }
    snprintf(buf, sizeof buf, "%s", tags);
    for (char *t = buf, *next; t && *t; t = next) {
        next = strchr(t, ' ');
        if (next)
            *next++ = 0;
        uint64_t need;
        char what[96], why[200];
        snprintf(what, sizeof what, "cache tag %s", t);
        if (modfmt_tag_features(t, &need) != 0) {
            mod_reject(what, "unknown CPU tag");
            continue;
        }
        if (need & ~cpu.features) {
            char names[160];
            modfmt_feature_names(need & ~cpu.features, names, sizeof names);
            snprintf(why, sizeof why, "requires %s, which this CPU (%s) lacks", names, cpu.tag);
            mod_reject(what, why);
            continue;
        }
        int bits = __builtin_popcountll(need);
        if (bits > best_bits) {
            best_bits = bits;
            snprintf(out, FLUID_CACHE_TAG_BYTES, "%s", t);
        }
    }
    return out[0] ? 0 : -1;
}

/* Load the chosen tag's modules over what runs now; with tag "" (none
 * usable) only candidates.  Modules of other tags become candidates for
 * `tune` (not serving any op), or skipped variants when this CPU cannot
 * run them. */
static void load_modules(const uint8_t *slot, const struct fluid_cache_slot *h)
{
    for (uint32_t i = 0; i < h->n_entries; i++) {
        struct fluid_cache_entry e;
        char what[96], why[160];
        if (modfmt_slot_entry(slot, h, i, &e, why, sizeof why) != 0) {
            snprintf(what, sizeof what, "cache gen %llu entry %u", (unsigned long long)h->generation, i);
            mod_reject(what, why);
            cache_info.rejected++;
            continue;
        }
        int mine = strcmp(e.tag, cache_info.tag) == 0;
        snprintf(what, sizeof what, "cache %s gen %llu: %s", e.tag, (unsigned long long)h->generation, e.name);
        struct fluid_mod_header mh;
        memcpy(&mh, slot + e.offset, sizeof mh);
        if (memcmp(mh.sha256, e.sha256, sizeof e.sha256) != 0) {
            mod_reject(what, "its SHA-256 differs from the registry's (damaged module header or registry)");
            cache_info.rejected++;
            continue;
        }
        uint32_t used;
        int rc = mine ? mod_load_one(slot + e.offset, e.bytes, "cache", h->generation, what, &used)
                      : mod_load_candidate(slot + e.offset, e.bytes, "cache", h->generation, what, &used);
        if (rc == 0 && mine)
            cache_info.loaded++;
        else if (rc == 0)
            cache_info.candidates++;
        else if (rc != MOD_NOT_FOR_THIS_CPU)
            cache_info.rejected++;
    }
}

int cache_scan(struct cache_scan *sc, uint8_t *buf, char *err, size_t cap)
{
    const struct fluid_region *r = &plat_image()->region[FLUID_REGION_CACHE];
    const uint32_t slot_sectors = FLUID_CACHE_SLOT_BYTES / 512;
    memset(sc, 0, sizeof *sc);
    sc->active = -1;
    sc->lba = r->lba;
    if (r->sectors < 2 * slot_sectors) {
        snprintf(err, cap, "this image has no cache region");
        return CACHE_NO_REGION;
    }
    struct blkdev *d = sc->disk = plat_boot_disk();
    if (!d) {
        snprintf(err, cap, "cannot find the boot disk to read the cache from");
        return CACHE_NO_DISK;
    }
    int order[2], n = 0;
    for (int s = 0; s < 2; s++) {
        struct cache_slot_info *si = &sc->slot[s];
        uint64_t lba = r->lba + (uint64_t)s * slot_sectors;
        si->state = SLOT_UNREAD;
        if (lba + 1 > d->sectors) {
            snprintf(si->why, sizeof si->why, "past the end of the disk (sector %llu of %llu): image truncated",
                     (unsigned long long)lba, (unsigned long long)d->sectors);
            continue;
        }
        d->error[0] = 0;
        int rc = d->read(d, lba, hdr_buf[s], 512);
        if (rc) {
            snprintf(si->why, sizeof si->why, "disk read error: %s", d->error[0] ? d->error : blk_strerror(rc));
            continue;
        }
        si->state = modfmt_slot_header(hdr_buf[s], FLUID_CACHE_SLOT_BYTES, &sc->h[s], si->why, sizeof si->why);
        if (si->state == SLOT_VALID) {
            si->generation = sc->h[s].generation;
            si->slot_bytes = sc->h[s].slot_bytes;
            si->n_entries = sc->h[s].n_entries;
            si->n_choices = sc->h[s].n_choices;
            if (n == 1 && sc->h[s].generation > sc->h[order[0]].generation) {
                order[1] = order[0];
                order[0] = s;
            } else {
                order[n] = s;
            }
            n++;
        }
    }
    for (int k = 0; k < n && sc->active < 0; k++) {
        int s = order[k];
        struct cache_slot_info *si = &sc->slot[s];
        const struct fluid_cache_slot *h = &sc->h[s];
        uint64_t lba = r->lba + (uint64_t)s * slot_sectors;
        if (lba + h->slot_bytes / 512 > d->sectors) {
            si->state = SLOT_TORN;
            snprintf(si->why, sizeof si->why, "generation %llu ends past the end of the disk (image truncated)",
                     (unsigned long long)h->generation);
            continue;
        }
        d->error[0] = 0;
        int rc = d->read(d, lba, buf, h->slot_bytes);
        if (rc) {
            si->state = SLOT_UNREAD;
            snprintf(si->why, sizeof si->why, "disk read error: %s", d->error[0] ? d->error : blk_strerror(rc));
            continue;
        }
        si->state = modfmt_slot_check(buf, h->slot_bytes, h, si->why, sizeof si->why);
        if (si->state == SLOT_VALID) {
            sc->active = s;
            slot_tags(buf, h, si->tags, sizeof si->tags);
        }
    }
    return 0;
}

void cache_boot_load(void)
{
    struct cache_info *ci = &cache_info;
    struct cache_scan sc;
    ci->active = -1;
    ci->lba = plat_image()->region[FLUID_REGION_CACHE].lba;
    ci->sectors = plat_image()->region[FLUID_REGION_CACHE].sectors;
    uint8_t *buf = plat_alloc(FLUID_CACHE_SLOT_BYTES, 4096);
    if (!buf) {
        region_error("no memory to read the cache%s", "", 0, 0);
        return;
    }
    char err[160];
    int rc = cache_scan(&sc, buf, err, sizeof err);
    if (rc != 0) {
        ci->present = rc != CACHE_NO_REGION;
        region_error("%s", err, 0, 0);
        plat_free(buf, FLUID_CACHE_SLOT_BYTES);
        return;
    }
    ci->present = 1;
    memcpy(ci->slot, sc.slot, sizeof ci->slot);
    ci->active = sc.active;
    for (int s = 0; s < 2; s++) {
        struct cache_slot_info *si = &ci->slot[s];
        if (si->state == SLOT_VALID && s == ci->active)
            kprintf("cache: slot %d: generation %llu, %u modules, tags %s (active)\n", s,
                    (unsigned long long)si->generation, si->n_entries, si->tags[0] ? si->tags : "(none)");
        else if (si->state == SLOT_VALID)
            kprintf("cache: slot %d: generation %llu, %u modules (older; header checked)\n", s,
                    (unsigned long long)si->generation, si->n_entries);
        else
            kprintf("cache: slot %d: %s%s%s\n", s, modfmt_slot_state_name(si->state),
                    si->why[0] ? ": " : "", si->why);
    }
    if (ci->active < 0) {
        kprintf("cache: no valid slot; the image's modules run\n");
        plat_free(buf, FLUID_CACHE_SLOT_BYTES);
        return;
    }
    const struct fluid_cache_slot *a = &sc.h[ci->active];
    ci->generation = a->generation;
    snprintf(ci->model_id, sizeof ci->model_id, "%s", a->model_id);
    if (a->n_entries == 0) {
        /* A slot `tune` wrote on an image without cached modules. */
    } else if (choose_tag(ci->slot[ci->active].tags, ci->tag) != 0) {
        kprintf("cache: no cached modules usable by this CPU (tag %s); the image's modules run\n", cpu.tag);
        load_modules(buf, a);
    } else {
        kprintf("cache: tag %s found%s, generation %llu (slot %d)\n", ci->tag,
                strcmp(ci->tag, cpu.tag) ? " (this CPU's own tag has no cache)" : "",
                (unsigned long long)ci->generation, ci->active);
        load_modules(buf, a);
        kprintf("cache: %d modules loaded, %d rejected\n", ci->loaded, ci->rejected);
    }
    if (ci->candidates)
        kprintf("cache: %d modules of other tags kept as variants for `tune`\n", ci->candidates);
    choice_boot_apply(buf, a);
    plat_free(buf, FLUID_CACHE_SLOT_BYTES);
}

void cache_print(void)
{
    const struct cache_info *ci = &cache_info;
    if (!ci->present) {
        kprintf("cache: %s\n", ci->error[0] ? ci->error : "no cache region");
        return;
    }
    kprintf("region:     sector %llu, %u sectors (2 slots of %u KiB)\n", (unsigned long long)ci->lba,
            ci->sectors, FLUID_CACHE_SLOT_BYTES / 1024);
    if (ci->error[0])
        kprintf("problem:    %s\n", ci->error);
    for (int s = 0; s < 2; s++) {
        const struct cache_slot_info *si = &ci->slot[s];
        if (si->state == SLOT_VALID && s == ci->active)
            kprintf("slot %d:     valid, generation %llu, %u bytes, %u modules, %u tuned choices, tags %s  "
                    "[active]\n", s, (unsigned long long)si->generation, si->slot_bytes, si->n_entries,
                    si->n_choices, si->tags[0] ? si->tags : "(none)");
        else if (si->state == SLOT_VALID)
            kprintf("slot %d:     older generation %llu, %u bytes, %u modules, %u tuned choices (header "
                    "checked)\n", s, (unsigned long long)si->generation, si->slot_bytes, si->n_entries,
                    si->n_choices);
        else
            kprintf("slot %d:     %s%s%s\n", s, modfmt_slot_state_name(si->state), si->why[0] ? ": " : "",
                    si->why);
    }
    kprintf("this CPU:   tag %s\n", cpu.tag);
    if (ci->active < 0) {
        kprintf("active:     none (the image's modules run)\n");
        return;
    }
    kprintf("active:     slot %d, generation %llu, tag %s, built for model %s\n", ci->active,
            (unsigned long long)ci->generation, ci->tag[0] ? ci->tag : "(none usable)",
            ci->model_id[0] ? ci->model_id : "?");
    kprintf("modules:    %d loaded from the cache, %d rejected, %d kept for `tune`\n", ci->loaded, ci->rejected,
            ci->candidates);
    choice_print();
}
