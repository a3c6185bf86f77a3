/* loader.c - module loading into the op table (see loader.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "lib/sha256.h"
#include "llm/llama_model.h"
#include "mod/cache.h"
#include "mod/loader.h"
#include "mod/modfmt.h"
#include "mod/optab.h"
#include "plat/plat.h"

struct mod_state mods;
static const struct mod_loaded *op_owner[OP_COUNT];
static const struct mod_loaded *op_owner_dec[OP_COUNT];   /* of optab[op].dec */

static void set_impl(struct op_impl *d, const struct mod_loaded *m, void *fn)
{
    d->fn = fn;
    d->module = m->name;
    d->variant = m->variant;
    d->march = m->march;
    d->opt_level = m->opt_level;
    memcpy(d->hash, m->hash, sizeof d->hash);
}

void mod_reject(const char *what, const char *why)
{
    kprintf("modules: %s rejected: %s\n", what, why);
    if (mods.n_rejects < MOD_MAX_REJECTS) {
        struct mod_reject *r = &mods.rejects[mods.n_rejects++];
        snprintf(r->what, sizeof r->what, "%s", what);
        snprintf(r->why, sizeof r->why, "%s", why);
    }
}

const struct mod_loaded *mod_for_op(int op)
{
    return op >= 0 && op < OP_COUNT ? op_owner[op] : NULL;
}

void *mod_op_fn(const struct mod_loaded *m, int op)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entry[i].op == op)
            return (uint8_t *)m->base + m->entry[i].offset;
    return NULL;
}

int mod_install_op(struct mod_loaded *m, int op)
{
    void *fn = mod_op_fn(m, op);
    if (!fn)
        return -1;
    struct mod_loaded *old = (struct mod_loaded *)op_owner[op];
    if (old)
        old->n_ops--;
    op_owner[op] = m;
    m->n_ops++;
    struct op_slot *s = &optab[op];
    s->fn = fn;
    s->module = m->name;
    s->variant = m->variant;
    s->march = m->march;
    s->opt_level = m->opt_level;
    memcpy(s->hash, m->hash, sizeof s->hash);
    op_owner_dec[op] = m;
    set_impl(&s->dec, m, fn);
    return 0;
}

int mod_install_op_decode(struct mod_loaded *m, int op)
{
    void *fn = mod_op_fn(m, op);
    if (!fn || !optab[op].fn)
        return -1;
    op_owner_dec[op] = m;
    set_impl(&optab[op].dec, m, fn);
    return 0;
}

const struct mod_loaded *mod_for_op_decode(int op)
{
    return op >= 0 && op < OP_COUNT ? op_owner_dec[op] : NULL;
}

struct mod_loaded *mod_find(const uint8_t sha256[32], int op)
{
    for (int i = 0; i < mods.n_loaded; i++)
        if (memcmp(mods.loaded[i].sha256, sha256, sizeof mods.loaded[i].sha256) == 0 &&
            mod_op_fn(&mods.loaded[i], op))
            return &mods.loaded[i];
    return NULL;
}

/* A module this CPU cannot run, for `tune`'s report. */
static void record_skipped(const struct fluid_mod_header *h, const char *variant, const char *why)
{
    if (mods.n_skipped >= MOD_MAX_SKIPPED)
        return;
    struct mod_skipped *k = &mods.skipped[mods.n_skipped++];
    snprintf(k->name, sizeof k->name, "%s", h->name);
    snprintf(k->march, sizeof k->march, "%s", h->march);
    modfmt_param_label(h, k->label, sizeof k->label);
    k->variant = (h->flags & FLUID_MOD_F_ALT) && k->label[0] ? k->label : variant;
    k->flags = h->flags;
    k->opt_level = (int)h->opt_level;
    k->ops = 0;
    for (uint32_t i = 0; i < h->n_entries; i++)
        k->ops |= 1ull << h->entry[i].op;
    snprintf(k->why, sizeof k->why, "%s", why);
}

static int load_module(const void *p, size_t avail, const char *variant, uint64_t generation,
                       const char *what, uint32_t *file_bytes, int install)
{
    struct mod_view v;
    char why[160];
    *file_bytes = 0;
    if (modfmt_check(p, avail, &v, why, sizeof why) != 0) {
        if (avail >= sizeof v.h && memcmp(v.h.magic, FLUID_MOD_MAGIC, 8) == 0 &&
            v.h.body_bytes <= avail - sizeof v.h)
            *file_bytes = (uint32_t)sizeof v.h + v.h.body_bytes;   /* skippable */
        mod_reject(what, why);
        return -1;
    }
    *file_bytes = v.file_bytes;
    if (v.h.flags & FLUID_MOD_F_ISA)
        variant = "image";
    if (v.h.flags & FLUID_MOD_F_ALT)
        install = 0;   /* tune's alternative: serves an op only when chosen */
    if (modfmt_check_features(&v.h, cpu.features, why, sizeof why) != 0) {
        if ((v.h.flags & FLUID_MOD_F_ISA) || !install) {
            record_skipped(&v.h, variant, why);
            return MOD_NOT_FOR_THIS_CPU;   /* a build for other CPUs: expected, not an error */
        }
        mod_reject(what, why);
        return -1;
    }
    if (mods.n_loaded >= MOD_MAX_LOADED) {
        mod_reject(what, "too many modules loaded");
        return -1;
    }
    uint8_t *base = plat_code_alloc(v.h.body_bytes);
    if (!base) {
        mod_reject(what, "out of memory for its code");
        return -1;
    }
    memcpy(base, v.body, v.h.body_bytes);
    /* W^X: seal the code read+execute first, then check the bytes that
     * will run (sealed, so nothing can change them after the check). */
    if (plat_code_seal(base, v.h.text_bytes, v.h.body_bytes) != 0) {
        plat_code_free(base, v.h.body_bytes);
        mod_reject(what, "the platform could not map its code read+execute");
        return -1;
    }
    uint8_t d[SHA256_BYTES];
    sha256(base, v.h.body_bytes, d);
    if (memcmp(d, v.h.sha256, SHA256_BYTES) != 0) {
        plat_code_free(base, v.h.body_bytes);
        mod_reject(what, "SHA-256 mismatch after copying (memory error?)");
        return -1;
    }
    struct mod_loaded *m = &mods.loaded[mods.n_loaded++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", v.h.name);
    snprintf(m->march, sizeof m->march, "%s", v.h.march);
    snprintf(m->compiler, sizeof m->compiler, "%s", v.h.compiler);
    sha256_hex(v.h.sha256, 8, m->hash);
    modfmt_param_label(&v.h, m->label, sizeof m->label);
    m->variant = (v.h.flags & FLUID_MOD_F_ALT) && m->label[0] ? m->label : variant;
    m->generation = generation;
    m->features = v.h.features;
    m->opt_level = (int)v.h.opt_level;
    m->flags = v.h.flags;
    m->base = base;
    m->bytes = v.h.body_bytes;
    m->n_shapes = v.h.n_shapes;
    memcpy(m->shape, v.h.shape, sizeof m->shape);
    m->shape_match = -1;
    memcpy(m->sha256, v.h.sha256, sizeof m->sha256);
    m->n_entries = v.h.n_entries;
    memcpy(m->entry, v.h.entry, sizeof m->entry);

    void (*init)(const struct fluid_services *) =
        (void (*)(const struct fluid_services *))((uint8_t *)base + v.h.init_offset);
    init(&kernel_services);
    for (uint32_t i = 0; install && i < v.h.n_entries; i++)
        mod_install_op(m, v.h.entry[i].op);
    return 0;
}

int mod_load_one(const void *p, size_t avail, const char *variant, uint64_t generation,
                 const char *what, uint32_t *file_bytes)
{
    return load_module(p, avail, variant, generation, what, file_bytes, 1);
}

int mod_load_candidate(const void *p, size_t avail, const char *variant, uint64_t generation,
                       const char *what, uint32_t *file_bytes)
{
    return load_module(p, avail, variant, generation, what, file_bytes, 0);
}

/* The module region the platform loaded and CRC-checked (pc: stage 2). */
static void load_baseline(void)
{
    static char isa_tags[160];
    uint64_t bytes;
    const uint8_t *base = plat_modules_region(&bytes);
    if (!base) {
        kprintf("modules: this image has no module region (build images with `make image`)\n");
        return;
    }
    uint64_t off = 0;
    int ops = 0;
    while (off < bytes) {
        char what[80];
        snprintf(what, sizeof what, "baseline module at byte %llu", (unsigned long long)off);
        if (bytes - off >= 8 && memcmp(base + off, FLUID_MOD_MAGIC, 8) == 0) {
            /* Name it in messages when the name field is readable. */
            const struct fluid_mod_header *h = (const void *)(base + off);
            if (bytes - off >= sizeof *h && memchr(h->name, 0, sizeof h->name))
                snprintf(what, sizeof what, "baseline %s", h->name);
        }
        uint32_t used;
        int n0 = mods.n_loaded;
        int rc = mod_load_one(base + off, bytes - off, "baseline", 0, what, &used);
        /* Checked (loaded or for other CPUs): its header is whole. */
        int alt = (rc == 0 || rc == MOD_NOT_FOR_THIS_CPU) &&
                  (((const struct fluid_mod_header *)(base + off))->flags & FLUID_MOD_F_ALT);
        if (alt && rc == 0) {
            mods.alt_loaded++;
        } else if (alt) {
            mods.alt_skipped++;   /* an alternative for other CPUs */
        } else if (rc == 0 && (mods.loaded[n0].flags & FLUID_MOD_F_ISA)) {
            mods.isa_loaded++;
            if (!strstr(isa_tags, mods.loaded[n0].march) && strlen(isa_tags) + 50 < sizeof isa_tags)
                snprintf(isa_tags + strlen(isa_tags), sizeof isa_tags - strlen(isa_tags), "%s%s",
                         isa_tags[0] ? " " : "", mods.loaded[n0].march);
        } else if (rc == 0) {
            mods.baseline_loaded++;
            ops += mods.loaded[n0].n_ops;
        } else if (rc == MOD_NOT_FOR_THIS_CPU) {
            mods.isa_skipped++;
        } else {
            mods.baseline_rejected++;
        }
        if (used == 0) {
            kprintf("modules: module region damaged at byte %llu; the rest of it is skipped\n",
                    (unsigned long long)off);
            break;
        }
        off = (off + used + FLUID_MOD_FILE_ALIGN - 1) / FLUID_MOD_FILE_ALIGN * FLUID_MOD_FILE_ALIGN;
    }
    kprintf("modules: %d baseline modules loaded (%d ops), %d rejected\n", mods.baseline_loaded, ops,
            mods.baseline_rejected);
    if (mods.isa_loaded || mods.isa_skipped)
        kprintf("modules: %d per-ISA builds loaded (%s), %d left for other CPUs; each op runs the "
                "highest this CPU (%s) allows\n", mods.isa_loaded, isa_tags[0] ? isa_tags : "none",
                mods.isa_skipped, cpu.tag);
    if (mods.alt_loaded || mods.alt_skipped)
        kprintf("modules: %d alternative builds (other prefetch distances) loaded for `tune`, %d left for "
                "other CPUs; they run only when `tune` chooses one\n", mods.alt_loaded, mods.alt_skipped);
}

int mod_boot_load(void)
{
    load_baseline();
    cache_boot_load();
    char missing[512];
    int n = optab_missing(missing, sizeof missing);
    if (n) {
        kprintf("modules: %d ops have no usable module: %s\n", n, missing);
        return -1;
    }
    return 0;
}

static uint32_t shape_of(const struct llama_hparams *hp, int id)
{
    switch (id) {
    case FLUID_SHAPE_ID_N_EMBD: return hp->n_embd;
    case FLUID_SHAPE_ID_N_FF: return hp->n_ff;
    case FLUID_SHAPE_ID_HEAD_DIM: return hp->head_dim;
    case FLUID_SHAPE_ID_N_HEAD: return hp->n_head;
    case FLUID_SHAPE_ID_N_HEAD_KV: return hp->n_head_kv;
    case FLUID_SHAPE_ID_N_EMBD_KV: return hp->n_embd_kv;
    case FLUID_SHAPE_ID_N_VOCAB: return hp->n_vocab;
    case FLUID_SHAPE_ID_N_LAYER: return hp->n_layer;
    default: return 0;
    }
}

void mod_check_shapes(const struct llama_hparams *hp)
{
    for (int i = 0; i < mods.n_loaded; i++) {
        struct mod_loaded *m = &mods.loaded[i];
        if (!m->n_shapes || !m->n_ops)
            continue;
        char list[160];
        int len = 0, match = 1;
        for (uint32_t k = 0; k < m->n_shapes && len < (int)sizeof list; k++) {
            uint32_t want = m->shape[k].value, have = shape_of(hp, m->shape[k].id);
            match &= want == have;
            len += snprintf(list + len, sizeof list - (size_t)len, "%s%s=%u%s", len ? " " : "",
                            modfmt_shape_name(m->shape[k].id), want,
                            want == have ? "" : " (model differs)");
        }
        m->shape_match = match;
        if (match)
            kprintf("modules: %s (%s) specialised for %s: matches the model\n", m->name, m->variant, list);
        else
            kprintf("modules: %s (%s) specialised for %s: does not match the model, its generic path runs\n",
                    m->name, m->variant, list);
    }
}
