/*
 * choice.h - tuned choices: for each op, the module variant `tune`
 * (mod/tune.h) measured fastest on this machine, kept in the cache slot
 * (modules/module_abi.h struct fluid_cache_choice) and put in force at
 * every boot with no host involved, as FFTW's wisdom is.
 *
 * A matrix product may have two: one for every call (timed on a prefill
 * batch) and one for its one-token calls (decode steps), put in force in
 * that order (modules/module_abi.h FLUID_CHOICE_*).
 *
 * A choice names its module by the SHA-256 of its body, so it matches
 * exactly one build of the image's MODULES region or of the cache; it is
 * used only when the booting CPU has the CPU tag the choices were
 * measured on (another machine must measure for itself).  A choice whose
 * module this image does not carry is reported and the op keeps its
 * default (the highest per-ISA build, or the cache's module).
 */
#ifndef FLUID_CHOICE_H
#define FLUID_CHOICE_H

#include <stdint.h>
#include "module_abi.h"

struct mod_loaded;

struct choice_state {
    int n;                          /* records read from the active slot */
    struct fluid_cache_choice c[FLUID_CACHE_MAX_CHOICES];
    char tag[FLUID_CACHE_TAG_BYTES];/* CPU tag they were measured on */
    char cpu_brand[48];
    char model_id[64];              /* model whose shapes were timed */
    uint64_t tsc_hz;
    uint64_t generation;            /* slot generation they came from */
    uint64_t in_force;              /* bit op: its tuned choice (FLUID_CHOICE_ALL) runs now */
    uint64_t in_force_dec;          /* bit op: its decode choice runs its one-token calls */
    struct mod_loaded *base[OP_COUNT]; /* what the loader chose per op, before any choice */
    char error[200];                /* why none are in force ("" if they are, or there are none) */
};

extern struct choice_state choices;

/* Read the tuned choices of the active, checked slot (slot: its bytes, h:
 * its header) and put in force each one measured on this CPU's tag whose
 * module is loaded.  Prints "tune: tuned choice in force for N ops ..."
 * or one line saying why not.  Never fails. */
void choice_boot_apply(const uint8_t *slot, const struct fluid_cache_slot *h);

/* Make records c[0..n) with their metadata the choices in force (after
 * `tune` wrote them in `generation`); their modules are loaded and
 * already installed by the caller. */
void choice_set(const struct fluid_cache_choice *c, int n, const char *tag, const char *cpu_brand,
                const char *model_id, uint64_t tsc_hz, uint64_t generation);

/* The variant the loader put on op (the highest per-ISA build, or the
 * cache's module) before any tuned choice: what runs without one. */
struct mod_loaded *choice_default(int op);
/* Record every op's current module as its default where none is recorded
 * yet (before the first choice is installed). */
void choice_keep_defaults(void);

/* Report lines for `cache` and `tune show`: what was measured where, and
 * per op the chosen variant, its cycles and the default's. */
void choice_print(void);
#endif
