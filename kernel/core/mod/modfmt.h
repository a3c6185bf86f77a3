/*
 * modfmt.h - checks of module files and PGO cache slots (layouts:
 * modules/module_abi.h).  Pure C with no hardware access and no kernel
 * state: the kernel's loader uses it and tests/host builds it into a
 * harness that feeds it damaged input.  Every failure returns -1 with ONE
 * line (no newline) saying what is wrong; nothing here trusts a length or
 * offset before checking it against the buffer it came with.
 */
#ifndef FLUID_MODFMT_H
#define FLUID_MODFMT_H

#include <stddef.h>
#include <stdint.h>
#include "module_abi.h"

/* A checked module file inside some buffer. */
struct mod_view {
    struct fluid_mod_header h;   /* copy of the header */
    const uint8_t *body;         /* h.body_bytes bytes, inside the buffer */
    uint32_t file_bytes;         /* header + body */
};

/*
 * Check the module file at p (avail bytes readable): magic, ABI version,
 * header size and CRC-32, body size (<= avail and FLUID_MOD_MAX_BODY),
 * entry and init offsets inside the body, op and shape ids known, strings
 * terminated, and the body's SHA-256.  Returns 0 and fills *v, or -1 with
 * the reason in why (cap bytes).
 */
int modfmt_check(const void *p, size_t avail, struct mod_view *v, char *why, size_t cap);

/* 0 if every feature the module requires is in cpu_features; else -1 and
 * why = "requires AVX512F AVX512BW, which this CPU lacks". */
int modfmt_check_features(const struct fluid_mod_header *h, uint64_t cpu_features,
                          char *why, size_t cap);

/* Features a CPU tag implies: "x86-64" (SSE SSE2), "x86-64-v2".."-v4"
 * (x86-64 psABI levels, fluid/cpufeat.h), optional "+vnni" (AVX512VNNI)
 * and "+bf16" (AVX512BF16) after v4 - the tags arch/x86/cpu.c derives.
 * Returns 0 and *mask, or -1 for a tag it does not know. */
int modfmt_tag_features(const char *tag, uint64_t *mask);

/* Feature names of the set bits of mask, space separated, into buf. */
void modfmt_feature_names(uint64_t mask, char *buf, size_t cap);

/* Name of an op id / shape id ("mm_q4_0", "n_embd"), or "?". */
const char *modfmt_op_name(int op);
const char *modfmt_shape_name(int id);
/* Name of a build parameter id (FLUID_PARAM_LIST), "?" if unknown. */
const char *modfmt_param_name(int id);
/* A short label of h's build parameters for tables: "pf=16K" (prefetch
 * 16 KiB), "pf=0" (none); "" when it has none.  Writes at most cap bytes. */
void modfmt_param_label(const struct fluid_mod_header *h, char *buf, size_t cap);

/* Slot states, from the worst to valid (modfmt_slot_state_name()). */
enum cache_slot_state {
    SLOT_UNREAD = 0,        /* not read (disk error) */
    SLOT_EMPTY,             /* all-zero header: never written */
    SLOT_BAD_MAGIC,         /* not a cache slot */
    SLOT_BAD_VERSION,
    SLOT_BAD_HEADER,        /* header CRC or sizes wrong */
    SLOT_TORN,              /* trailer missing or not this header's:
                               an interrupted write */
    SLOT_BAD_REGISTRY,      /* registry SHA-256 mismatch */
    SLOT_VALID,
};
const char *modfmt_slot_state_name(enum cache_slot_state s);

/*
 * Check the 512-byte slot header at hdr; slot_cap is the slot's capacity.
 * Returns SLOT_VALID (meaning: the header alone is good, the rest still to
 * be checked with modfmt_slot_check) and fills *out, or a worse state with
 * the reason in why.
 */
enum cache_slot_state modfmt_slot_header(const void *hdr, uint32_t slot_cap,
                                         struct fluid_cache_slot *out, char *why, size_t cap);

/*
 * Check a whole slot whose header passed modfmt_slot_header: slot points
 * at its first byte, `bytes` >= h->slot_bytes are readable.  Checks the
 * trailer (commit record) and the registry's SHA-256.  Returns SLOT_VALID
 * or SLOT_TORN / SLOT_BAD_REGISTRY with the reason in why.
 */
enum cache_slot_state modfmt_slot_check(const uint8_t *slot, size_t bytes,
                                        const struct fluid_cache_slot *h, char *why, size_t cap);

/*
 * Registry entry i of a checked slot, copied to *e after checking that its
 * strings are terminated and its module file lies between the registry
 * and the trailer.  Returns 0, or -1 with the reason.
 */
int modfmt_slot_entry(const uint8_t *slot, const struct fluid_cache_slot *h, uint32_t i,
                      struct fluid_cache_entry *e, char *why, size_t cap);

/*
 * The tuned choices of a slot that passed modfmt_slot_check (layout:
 * module_abi.h struct fluid_cache_choice): checks the table's SHA-256,
 * each op id and string, and that no op appears twice, then copies the
 * h->n_choices records to out (room for FLUID_CACHE_MAX_CHOICES).
 * Returns their count (0: the slot has none), or -1 with the reason (the
 * slot's modules stay usable; only its choices are ignored).
 */
int modfmt_slot_choices(const uint8_t *slot, const struct fluid_cache_slot *h, struct fluid_cache_choice *out,
                        char *why, size_t cap);

#endif
