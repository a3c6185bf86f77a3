/* modfmt.c - module file and cache slot checks (see modfmt.h). */
#include <stdio.h>
#include <string.h>
#include "fluid/crc32.h"
#include "lib/sha256.h"
#include "mod/modfmt.h"

#define WHY(...) do { if (why && cap) snprintf(why, cap, __VA_ARGS__); } while (0)

static const char *const op_names[OP_COUNT] = {
#define OPN(id, name) name,
    FLUID_OP_LIST(OPN)
#undef OPN
};

const char *modfmt_op_name(int op)
{
    return op >= 0 && op < OP_COUNT ? op_names[op] : "?";
}

const char *modfmt_shape_name(int id)
{
#define SHN(i, num, name) if (id == num) return name;
    FLUID_SHAPE_LIST(SHN)
#undef SHN
    return "?";
}

const char *modfmt_param_name(int id)
{
#define PRN(i, num, name) if (id == num) return name;
    FLUID_PARAM_LIST(PRN)
#undef PRN
    return "?";
}

void modfmt_param_label(const struct fluid_mod_header *h, char *buf, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return;
    buf[0] = 0;
    for (uint32_t i = 0; i < h->n_params && i < FLUID_MOD_MAX_PARAMS && n < cap; i++) {
        uint32_t v = h->param[i].value;
        const char *nm = h->param[i].id == FLUID_PARAM_ID_PREFETCH ? "pf" : modfmt_param_name(h->param[i].id);
        int k = v && v % 1024 == 0 ? snprintf(buf + n, cap - n, "%s%s=%uK", n ? "," : "", nm, v / 1024)
                                   : snprintf(buf + n, cap - n, "%s%s=%u", n ? "," : "", nm, v);
        if (k < 0)
            break;
        n += (size_t)k;
    }
}

static const char *feature_name(int bit)
{
#define FN(n, b, leaf, reg, bt) if (bit == b) return #n;
    FLUID_CPUFEAT_LIST(FN)
#undef FN
    return NULL;
}

void modfmt_feature_names(uint64_t mask, char *buf, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return;
    buf[0] = 0;
    for (int b = 0; b < 64 && n < cap; b++) {
        if (!((mask >> b) & 1))
            continue;
        const char *nm = feature_name(b);
        char tmp[16];
        if (!nm) {
            snprintf(tmp, sizeof tmp, "bit%d", b);
            nm = tmp;
        }
        int k = snprintf(buf + n, cap - n, "%s%s", n ? " " : "", nm);
        if (k < 0)
            break;
        n += (size_t)k;
    }
}

/* 1 if s (cap bytes) holds a NUL. */
static int terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

int modfmt_check(const void *p, size_t avail, struct mod_view *v, char *why, size_t cap)
{
    struct fluid_mod_header *h = &v->h;
    if (avail < sizeof *h) {
        WHY("truncated: %zu bytes, a module header needs %u", avail, FLUID_MOD_HEADER_BYTES);
        return -1;
    }
    memcpy(h, p, sizeof *h);
    if (memcmp(h->magic, FLUID_MOD_MAGIC, 8) != 0) {
        WHY("bad magic (not a module)");
        return -1;
    }
    if (h->abi_version != FLUID_MOD_ABI_VERSION) {
        WHY("module ABI version %u, this kernel speaks %u", h->abi_version, FLUID_MOD_ABI_VERSION);
        return -1;
    }
    if (h->header_bytes != FLUID_MOD_HEADER_BYTES) {
        WHY("header size %u, expected %u", h->header_bytes, FLUID_MOD_HEADER_BYTES);
        return -1;
    }
    if (crc32_update(0, h, offsetof(struct fluid_mod_header, header_crc)) != h->header_crc) {
        WHY("header checksum mismatch (damaged header)");
        return -1;
    }
    if (!terminated(h->name, sizeof h->name) || !terminated(h->march, sizeof h->march) ||
        !terminated(h->compiler, sizeof h->compiler)) {
        WHY("unterminated name, tag or compiler string");
        return -1;
    }
    if (h->body_bytes == 0 || h->body_bytes > FLUID_MOD_MAX_BODY) {
        WHY("body size %u out of range (1..%u)", h->body_bytes, FLUID_MOD_MAX_BODY);
        return -1;
    }
    if (h->body_bytes > avail - sizeof *h) {
        WHY("truncated: body of %u bytes, only %zu present", h->body_bytes, avail - sizeof *h);
        return -1;
    }
    if (h->opt_level > 3) {
        WHY("opt level %u out of range", h->opt_level);
        return -1;
    }
    if (h->n_entries == 0 || h->n_entries > FLUID_MOD_MAX_ENTRIES) {
        WHY("%u entries (1..%d allowed)", h->n_entries, FLUID_MOD_MAX_ENTRIES);
        return -1;
    }
    if (h->n_shapes > FLUID_MOD_MAX_SHAPES) {
        WHY("%u shape constants (at most %d)", h->n_shapes, FLUID_MOD_MAX_SHAPES);
        return -1;
    }
    if (h->n_params > FLUID_MOD_MAX_PARAMS) {
        WHY("%u build parameters (at most %d)", h->n_params, FLUID_MOD_MAX_PARAMS);
        return -1;
    }
    if ((h->flags & FLUID_MOD_F_ALT) && !(h->flags & FLUID_MOD_F_ISA)) {
        WHY("flags 0x%x: an alternative build (ALT) outside the image's per-ISA set", h->flags);
        return -1;
    }
    if (h->init_offset >= h->body_bytes) {
        WHY("init offset 0x%x outside the body", h->init_offset);
        return -1;
    }
    if (h->text_bytes == 0 || h->text_bytes % FLUID_MOD_PAGE || h->text_bytes > h->body_bytes) {
        WHY("text size %u is not a whole number of %u-byte pages within the body (%u bytes)",
            h->text_bytes, FLUID_MOD_PAGE, h->body_bytes);
        return -1;
    }
    if (h->init_offset >= h->text_bytes) {
        WHY("init offset 0x%x outside the text", h->init_offset);
        return -1;
    }
    for (uint32_t i = 0; i < h->n_entries; i++) {
        if (h->entry[i].op >= OP_COUNT) {
            WHY("entry %u: unknown op id %u", i, h->entry[i].op);
            return -1;
        }
        if (h->entry[i].offset >= h->text_bytes) {
            WHY("entry %s: offset 0x%x outside the text", op_names[h->entry[i].op], h->entry[i].offset);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (h->entry[j].op == h->entry[i].op) {
                WHY("op %s listed twice", op_names[h->entry[i].op]);
                return -1;
            }
    }
    for (uint32_t i = 0; i < h->n_shapes; i++)
        if (h->shape[i].id == 0 || h->shape[i].id > FLUID_SHAPE_ID_MAX || h->shape[i].value == 0) {
            WHY("shape constant %u: bad id %u or value %u", i, h->shape[i].id, h->shape[i].value);
            return -1;
        }
    for (uint32_t i = 0; i < h->n_params; i++)
        if (h->param[i].id == 0 || h->param[i].id > FLUID_PARAM_ID_MAX || h->param[i].reserved) {
            WHY("build parameter %u: bad id %u or value %u", i, h->param[i].id, h->param[i].value);
            return -1;
        }
    for (size_t i = 0; i < sizeof h->reserved; i++)
        if (h->reserved[i]) {
            WHY("reserved header bytes are not zero");
            return -1;
        }
    const uint8_t *body = (const uint8_t *)p + sizeof *h;
    uint8_t d[SHA256_BYTES];
    sha256(body, h->body_bytes, d);
    if (memcmp(d, h->sha256, SHA256_BYTES) != 0) {
        char want[17], got[17];
        sha256_hex(h->sha256, 8, want);
        sha256_hex(d, 8, got);
        WHY("SHA-256 mismatch: body hashes to %s..., header says %s... (damaged body)", got, want);
        return -1;
    }
    v->body = body;
    v->file_bytes = (uint32_t)sizeof *h + h->body_bytes;
    return 0;
}

int modfmt_check_features(const struct fluid_mod_header *h, uint64_t cpu_features, char *why, size_t cap)
{
    uint64_t missing = h->features & ~cpu_features;
    if (!missing)
        return 0;
    char names[256];
    modfmt_feature_names(missing, names, sizeof names);
    WHY("requires %s, which this CPU lacks", names);
    return -1;
}

int modfmt_tag_features(const char *tag, uint64_t *mask)
{
    uint64_t m = FEAT_BIT(SSE) | FEAT_BIT(SSE2);
    const char *base = "x86-64";
    size_t bl = strlen(base);
    if (strncmp(tag, base, bl) != 0)
        return -1;
    const char *p = tag + bl;
    int level = 1;
    if (p[0] == '-' && p[1] == 'v' && p[2] >= '2' && p[2] <= '4') {
        level = p[2] - '0';
        p += 3;
    }
    if (level >= 2)
        m |= FLUID_LEVEL_V2;
    if (level >= 3)
        m |= FLUID_LEVEL_V3;
    if (level >= 4)
        m |= FLUID_LEVEL_V4;
    while (*p) {
        if (level == 4 && strncmp(p, "+vnni", 5) == 0) {
            m |= FEAT_BIT(AVX512VNNI);
            p += 5;
        } else if (level == 4 && strncmp(p, "+bf16", 5) == 0) {
            m |= FEAT_BIT(AVX512BF16);
            p += 5;
        } else {
            return -1;
        }
    }
    *mask = m;
    return 0;
}

const char *modfmt_slot_state_name(enum cache_slot_state s)
{
    switch (s) {
    case SLOT_UNREAD: return "unreadable";
    case SLOT_EMPTY: return "empty";
    case SLOT_BAD_MAGIC: return "not a cache slot";
    case SLOT_BAD_VERSION: return "unsupported version";
    case SLOT_BAD_HEADER: return "damaged header";
    case SLOT_TORN: return "incomplete (interrupted write)";
    case SLOT_BAD_REGISTRY: return "damaged registry";
    case SLOT_VALID: return "valid";
    }
    return "?";
}

enum cache_slot_state modfmt_slot_header(const void *hdr, uint32_t slot_cap,
                                         struct fluid_cache_slot *h, char *why, size_t cap)
{
    memcpy(h, hdr, sizeof *h);
    const uint8_t *b = hdr;
    int zero = 1;
    for (size_t i = 0; i < sizeof *h && zero; i++)
        zero = b[i] == 0;
    if (zero) {
        WHY("never written (all zeros)");
        return SLOT_EMPTY;
    }
    if (memcmp(h->magic, FLUID_CACHE_MAGIC, 8) != 0) {
        WHY("bad magic");
        return SLOT_BAD_MAGIC;
    }
    if (h->version != FLUID_CACHE_VERSION || h->header_bytes != sizeof *h) {
        WHY("version %u / header size %u, this kernel reads version %u", h->version,
            h->header_bytes, FLUID_CACHE_VERSION);
        return SLOT_BAD_VERSION;
    }
    if (crc32_update(0, h, offsetof(struct fluid_cache_slot, header_crc)) != h->header_crc) {
        WHY("header checksum mismatch");
        return SLOT_BAD_HEADER;
    }
    uint64_t reg_end = (uint64_t)h->registry_offset + h->registry_bytes;
    if (h->generation == 0 || h->slot_bytes % 512 || h->slot_bytes < 1024 || h->slot_bytes > slot_cap ||
        h->n_entries > FLUID_CACHE_MAX_ENTRIES || h->registry_offset != sizeof *h ||
        h->registry_bytes != h->n_entries * sizeof(struct fluid_cache_entry) ||
        reg_end > h->slot_bytes - sizeof(struct fluid_cache_trailer) ||
        !terminated(h->writer, sizeof h->writer) || !terminated(h->model_id, sizeof h->model_id)) {
        WHY("inconsistent header (generation %llu, %u bytes, %u entries)",
            (unsigned long long)h->generation, h->slot_bytes, h->n_entries);
        return SLOT_BAD_HEADER;
    }
    uint64_t choice_end = (uint64_t)h->choice_offset + (uint64_t)h->n_choices * sizeof(struct fluid_cache_choice);
    if (h->n_choices == 0 ? h->choice_offset != 0
                          : h->n_choices > FLUID_CACHE_MAX_CHOICES || h->choice_offset % FLUID_CACHE_CHOICE_ALIGN ||
                                h->choice_offset < reg_end ||
                                choice_end > h->slot_bytes - sizeof(struct fluid_cache_trailer) ||
                                !terminated(h->choice_tag, sizeof h->choice_tag) ||
                                !terminated(h->choice_cpu, sizeof h->choice_cpu) ||
                                !terminated(h->choice_model_id, sizeof h->choice_model_id)) {
        WHY("inconsistent tuned-choice table (%u choices at byte %u of %u)", h->n_choices, h->choice_offset,
            h->slot_bytes);
        return SLOT_BAD_HEADER;
    }
    return SLOT_VALID;
}

enum cache_slot_state modfmt_slot_check(const uint8_t *slot, size_t bytes,
                                        const struct fluid_cache_slot *h, char *why, size_t cap)
{
    if (bytes < h->slot_bytes) {
        WHY("only %zu of %u bytes readable", bytes, h->slot_bytes);
        return SLOT_TORN;
    }
    struct fluid_cache_trailer t;
    memcpy(&t, slot + h->slot_bytes - sizeof t, sizeof t);
    if (memcmp(t.magic, FLUID_CACHE_END_MAGIC, 8) != 0 ||
        crc32_update(0, &t, offsetof(struct fluid_cache_trailer, trailer_crc)) != t.trailer_crc) {
        WHY("no commit record at byte %u (the write of generation %llu was interrupted)",
            h->slot_bytes - (uint32_t)sizeof t, (unsigned long long)h->generation);
        return SLOT_TORN;
    }
    if (t.generation != h->generation || t.header_crc != h->header_crc || t.slot_bytes != h->slot_bytes) {
        WHY("commit record is for generation %llu, header says %llu (interrupted write)",
            (unsigned long long)t.generation, (unsigned long long)h->generation);
        return SLOT_TORN;
    }
    uint8_t d[SHA256_BYTES];
    sha256(slot + h->registry_offset, h->registry_bytes, d);
    if (memcmp(d, h->registry_sha256, SHA256_BYTES) != 0) {
        WHY("registry SHA-256 mismatch");
        return SLOT_BAD_REGISTRY;
    }
    return SLOT_VALID;
}

int modfmt_slot_entry(const uint8_t *slot, const struct fluid_cache_slot *h, uint32_t i,
                      struct fluid_cache_entry *e, char *why, size_t cap)
{
    if (i >= h->n_entries) {
        WHY("no entry %u", i);
        return -1;
    }
    memcpy(e, slot + h->registry_offset + (size_t)i * sizeof *e, sizeof *e);
    if (!terminated(e->tag, sizeof e->tag) || !terminated(e->name, sizeof e->name)) {
        WHY("entry %u: unterminated tag or name", i);
        return -1;
    }
    uint64_t lo = (uint64_t)h->registry_offset + h->registry_bytes;
    uint64_t hi = h->n_choices ? h->choice_offset : h->slot_bytes - sizeof(struct fluid_cache_trailer);
    if (e->offset < lo || e->bytes < FLUID_MOD_HEADER_BYTES || (uint64_t)e->offset + e->bytes > hi) {
        WHY("entry %u (%s): module at %u+%u lies outside the slot's module area", i, e->name,
            e->offset, e->bytes);
        return -1;
    }
    return 0;
}

int modfmt_slot_choices(const uint8_t *slot, const struct fluid_cache_slot *h, struct fluid_cache_choice *out,
                        char *why, size_t cap)
{
    if (h->n_choices == 0)
        return 0;
    size_t bytes = (size_t)h->n_choices * sizeof *out;
    uint8_t d[SHA256_BYTES];
    sha256(slot + h->choice_offset, bytes, d);
    if (memcmp(d, h->choice_sha256, SHA256_BYTES) != 0) {
        WHY("tuned-choice table SHA-256 mismatch (damaged)");
        return -1;
    }
    memcpy(out, slot + h->choice_offset, bytes);
    for (uint32_t i = 0; i < h->n_choices; i++) {
        const struct fluid_cache_choice *c = &out[i];
        if (c->op >= OP_COUNT || !terminated(c->module, sizeof c->module) ||
            !terminated(c->march, sizeof c->march)) {
            WHY("tuned choice %u: op %u unknown or its names unterminated", i, c->op);
            return -1;
        }
        if (c->phase > FLUID_CHOICE_DECODE) {
            WHY("tuned choice %u (%s): unknown phase %u", i, modfmt_op_name(c->op), c->phase);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (out[j].op == c->op && out[j].phase == c->phase) {
                WHY("tuned choices %u and %u are both for %s%s", j, i, modfmt_op_name(c->op),
                    c->phase == FLUID_CHOICE_DECODE ? " (decode)" : "");
                return -1;
            }
    }
    return (int)h->n_choices;
}
