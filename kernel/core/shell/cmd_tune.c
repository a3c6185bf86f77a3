/*
 * cmd_tune.c - `tune` at the prompt (mod/tune.h):
 *
 *   tune [-r N] [--no-save]   time every variant of every hot op on the
 *                             model's shapes, print the table, run the
 *                             fastest of each from now on and keep the
 *                             choice in the disk's cache region
 *   tune show                 the choices in force (also in `cache`)
 *   tune save                 write the choices in force as a new cache
 *                             generation (after `tune --no-save`)
 *   tune clear                back to the default variants; a new cache
 *                             generation without choices
 *
 * Test mode only: `tune --stop-after N` and `tune save --stop-after N`
 * write only the first N sectors of the new generation and power off, as
 * a power cut would.
 */
#include <string.h>
#include "lib/kprintf.h"
#include "llm/model.h"
#include "mod/choice.h"
#include "mod/optab.h"
#include "mod/tune.h"
#include "plat/plat.h"
#include "shell/line.h"
#include "shell/shell.h"

static struct tune_report report;

static void print_written(const struct cache_write_result *res)
{
    struct blkdev *d = plat_boot_disk();
    kprintf("tune: wrote generation %llu to cache slot %d of %s (%u bytes, %u cached modules carried over); "
            "later boots run these choices\n", (unsigned long long)res->generation, res->slot,
            d ? d->name : "the boot disk", res->slot_bytes, res->n_entries);
}

static int cmd_tune(int argc, char **argv, const char *line)
{
    (void)line;
    struct cache_write_result res;
    char err[240];
    if (argc == 2 && strcmp(argv[1], "show") == 0) {
        choice_print();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "clear") == 0) {
        if (tune_clear(&res, err, sizeof err) != 0) {
            kprintf("error: tune clear: %s\n", err);
            return 1;
        }
        kprintf("tune: every op runs its default variant again\n");
        print_written(&res);
        return 0;
    }
    long reps = TUNE_REPS, stop_after = -1;
    int save = 1, save_only = argc > 1 && strcmp(argv[1], "save") == 0;
    for (int i = 1 + save_only; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
            if (shell_parse_long(argv[++i], &reps) != 0 || reps < 1 || reps > TUNE_MAX_REPS) {
                kprintf("error: -r takes 1..%d repetitions\n", TUNE_MAX_REPS);
                return 1;
            }
        } else if (strcmp(argv[i], "--no-save") == 0) {
            save = 0;
        } else if (strcmp(argv[i], "--stop-after") == 0 && i + 1 < argc) {
            if (!plat_test_mode()) {
                kprintf("error: --stop-after (a simulated power cut) works in test mode only\n");
                return 1;
            }
            if (shell_parse_long(argv[++i], &stop_after) != 0 || stop_after < 0) {
                kprintf("error: --stop-after takes a sector count >= 0\n");
                return 1;
            }
        } else {
            kprintf("error: usage: tune [-r N] [--no-save] | tune show | tune save | tune clear\n");
            return 1;
        }
    }
    if (save_only) {
        if (!choices.n) {
            kprintf("error: tune save: no tuned choices to save (run `tune`)\n");
            return 1;
        }
        struct cache_choice_meta meta = { choices.tag, choices.cpu_brand, choices.model_id, choices.tsc_hz };
        if (cache_write_choices(choices.c, choices.n, &meta, stop_after, &res, err, sizeof err) != 0) {
            kprintf("error: tune save: %s\n", err);
            return 1;
        }
        choices.generation = res.generation;
        print_written(&res);
        return 0;
    }
    if (model_require())
        return 1;
    if (tune_measure((int)reps, line_interrupted_poll, NULL, &report, err, sizeof err) != 0) {
        kprintf("error: tune: %s\n", err);
        return 1;
    }
    tune_print(&report);
    int changed = 0, wrong = 0, skipped = 0, ops = 0;
    for (int i = 0; i < report.n_ops; i++) {
        const struct tune_op *o = &report.op[i];
        ops += i == 0 || report.op[i - 1].w->op != o->w->op;   /* an mm op's two workloads are adjacent */
        changed += o->chosen >= 0 && !o->v[o->chosen].is_default;
        for (int j = 0; j < o->n; j++) {
            wrong += o->v[j].status == TUNE_WRONG;
            skipped += o->v[j].status == TUNE_SKIPPED;
        }
    }
    int n = tune_commit(&report, save, stop_after, &res, err, sizeof err);
    kprintf("tune: chose %d variants for %d ops (%d differ from the default); %d variants wrong, %d skipped "
            "(this CPU lacks their features)\n", report.n_ops, ops, changed, wrong, skipped);
    if (n < 0) {
        kprintf("error: tune: %s; the choices run until reboot only\n", err);
        return 1;
    }
    if (save)
        print_written(&res);
    else
        kprintf("tune: not saved (--no-save): the choices run until reboot\n");
    return 0;
}

const struct shell_cmd tune_commands[] = {
    { "tune", "[-r N] [--no-save] | show | save | clear",
      "time every variant of each hot op on the model's shapes; run and keep the fastest", cmd_tune, 0 },
    { 0 },
};
