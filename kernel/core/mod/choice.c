/* choice.c - tuned choices in force (see choice.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "lib/kprintf.h"
#include "lib/sha256.h"
#include "mod/choice.h"
#include "mod/loader.h"
#include "mod/modfmt.h"
#include "mod/optab.h"

struct choice_state choices;

static void set_meta(const char *tag, const char *brand, const char *model_id, uint64_t tsc_hz, uint64_t gen)
{
    snprintf(choices.tag, sizeof choices.tag, "%s", tag);
    snprintf(choices.cpu_brand, sizeof choices.cpu_brand, "%s", brand);
    snprintf(choices.model_id, sizeof choices.model_id, "%s", model_id);
    choices.tsc_hz = tsc_hz;
    choices.generation = gen;
}

struct mod_loaded *choice_default(int op)
{
    if (op < 0 || op >= OP_COUNT)
        return NULL;
    return choices.base[op] ? choices.base[op] : (struct mod_loaded *)mod_for_op(op);
}

void choice_keep_defaults(void)
{
    for (int op = 0; op < OP_COUNT; op++)
        if (!choices.base[op])
            choices.base[op] = (struct mod_loaded *)mod_for_op(op);
}

void choice_boot_apply(const uint8_t *slot, const struct fluid_cache_slot *h)
{
    char why[160];
    memset(&choices, 0, sizeof choices);
    choice_keep_defaults();
    int n = modfmt_slot_choices(slot, h, choices.c, why, sizeof why);
    if (n < 0) {
        snprintf(choices.error, sizeof choices.error, "the tuned choices of generation %llu are ignored: %s",
                 (unsigned long long)h->generation, why);
        kprintf("tune: %s; the default variants run\n", choices.error);
        return;
    }
    if (n == 0)
        return;
    choices.n = n;
    set_meta(h->choice_tag, h->choice_cpu, h->choice_model_id, h->choice_tsc_hz, h->generation);
    if (strcmp(h->choice_tag, cpu.tag) != 0) {
        snprintf(choices.error, sizeof choices.error,
                 "the tuned choices of generation %llu were measured on a %s CPU (%s); this one is %s",
                 (unsigned long long)h->generation, h->choice_tag, h->choice_cpu, cpu.tag);
        kprintf("tune: %s: not used (run `tune` here)\n", choices.error);
        return;
    }
    char changed[768];
    int nchanged = 0, len = 0, missing = 0;
    changed[0] = 0;
    /* every call first, then the one-token calls (decode choices) */
    for (unsigned phase = FLUID_CHOICE_ALL; phase <= FLUID_CHOICE_DECODE; phase++)
        for (int i = 0; i < n; i++) {
            const struct fluid_cache_choice *c = &choices.c[i];
            if (c->phase != phase)
                continue;
            int dec = phase == FLUID_CHOICE_DECODE;
            struct mod_loaded *m = mod_find(c->sha256, c->op);
            char hash[17];
            sha256_hex(c->sha256, 8, hash);
            if (!m) {
                kprintf("tune: the tuned choice for %s%s (%s %s -O%u, %s) is not among this image's modules; "
                        "its default runs\n", modfmt_op_name(c->op), dec ? " (decode)" : "", c->module, c->march,
                        c->opt_level, hash);
                missing++;
                continue;
            }
            const struct mod_loaded *before = dec ? mod_for_op_decode(c->op) : mod_for_op(c->op);
            if (dec ? mod_install_op_decode(m, c->op) : mod_install_op(m, c->op)) {
                missing++;
                continue;
            }
            if (dec)
                choices.in_force_dec |= 1ull << c->op;
            else
                choices.in_force |= 1ull << c->op;
            if (before != m && len < (int)sizeof changed) {
                nchanged++;
                len += snprintf(changed + len, sizeof changed - (size_t)len, "%s%s%s=%s %s -O%d", len ? ", " : "",
                                modfmt_op_name(c->op), dec ? " (decode)" : "", m->variant, m->march, m->opt_level);
            }
        }
    int in_force = n - missing;
    if (!in_force)
        snprintf(choices.error, sizeof choices.error, "none of the %d tuned choices names a module this image has",
                 n);
    kprintf("tune: tuned choice in force for %d of %d choices (generation %llu, measured on this CPU's tag %s, "
            "model %s)%s\n", in_force, n, (unsigned long long)h->generation, h->choice_tag, h->choice_model_id,
            missing ? "; see above for the rest" : "");
    if (nchanged)
        kprintf("tune: %d choice%s run%s another variant than the default: %s\n", nchanged,
                nchanged == 1 ? "" : "s", nchanged == 1 ? "s" : "", changed);
}

void choice_set(const struct fluid_cache_choice *c, int n, const char *tag, const char *cpu_brand,
                const char *model_id, uint64_t tsc_hz, uint64_t generation)
{
    choice_keep_defaults();
    struct mod_loaded *base[OP_COUNT];
    memcpy(base, choices.base, sizeof base);
    memset(&choices, 0, sizeof choices);
    memcpy(choices.base, base, sizeof base);
    choices.n = n;
    if (n)
        memcpy(choices.c, c, (size_t)n * sizeof *c);
    set_meta(tag, cpu_brand, model_id, tsc_hz, generation);
    for (int i = 0; i < n; i++) {
        if (c[i].phase == FLUID_CHOICE_DECODE)
            choices.in_force_dec |= 1ull << c[i].op;
        else
            choices.in_force |= 1ull << c[i].op;
    }
}

void choice_print(void)
{
    if (choices.error[0])
        kprintf("tuned:      %s\n", choices.error);
    if (!choices.n) {
        if (!choices.error[0])
            kprintf("tuned:      no tuned choices (run `tune`)\n");
        return;
    }
    kprintf("tuned:      %d choices, generation %llu, measured on %s (%s), model %s, TSC %llu MHz\n", choices.n,
            (unsigned long long)choices.generation, choices.tag, choices.cpu_brand, choices.model_id,
            (unsigned long long)(choices.tsc_hz / 1000000));
    for (int i = 0; i < choices.n; i++) {
        const struct fluid_cache_choice *c = &choices.c[i];
        char hash[17];
        sha256_hex(c->sha256, 8, hash);
        int dec = c->phase == FLUID_CHOICE_DECODE;
        char op[32];
        snprintf(op, sizeof op, "%s%s", modfmt_op_name(c->op), dec ? " decode" : "");
        kprintf("  %-21s %-11s %-16s -O%u %s %12llu cycles (default %llu)%s\n", op, c->module, c->march,
                c->opt_level, hash, (unsigned long long)c->cycles, (unsigned long long)c->default_cycles,
                ((dec ? choices.in_force_dec : choices.in_force) >> c->op) & 1 ? "" : "  [not in force]");
    }
}
