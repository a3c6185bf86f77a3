/*
 * modfmt_harness.c - runs the kernel's module-file and cache-slot checks
 * (kernel/core/mod/modfmt.c) and SHA-256 (kernel/core/lib/sha256.c) on host files,
 * for tests/host/test_modpack.py.
 *
 *   modfmt_harness sha256 FILE         hex digest of FILE
 *   modfmt_harness module FILE [FEATS] "ok <name> <ops>" or "reject <why>";
 *                                      FEATS: CPU feature mask (hex) to check
 *   modfmt_harness slot FILE           state of a cache slot image (FILE is
 *                                      the slot's bytes), each entry's
 *                                      module check and the tuned choices,
 *                                      one line each
 *   modfmt_harness tag TAG             feature mask of a CPU tag, or "unknown"
 * Exit status 0 whenever the input was examined (valid or not).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fluid/image.h"
#include "lib/sha256.h"
#include "mod/modfmt.h"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "read error\n");
        exit(2);
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    char why[256];
    if (!strcmp(argv[1], "tag")) {
        uint64_t m;
        if (modfmt_tag_features(argv[2], &m) != 0)
            printf("unknown\n");
        else
            printf("0x%llx\n", (unsigned long long)m);
        return 0;
    }
    size_t n;
    unsigned char *p = slurp(argv[2], &n);
    if (!strcmp(argv[1], "sha256")) {
        unsigned char d[32];
        char hex[65];
        sha256(p, n, d);
        sha256_hex(d, 32, hex);
        printf("%s\n", hex);
    } else if (!strcmp(argv[1], "module")) {
        struct mod_view v;
        if (modfmt_check(p, n, &v, why, sizeof why) != 0) {
            printf("reject %s\n", why);
        } else if (argc > 3 && modfmt_check_features(&v.h, strtoull(argv[3], NULL, 16), why, sizeof why) != 0) {
            printf("reject %s\n", why);
        } else {
            printf("ok %s", v.h.name);
            for (uint32_t i = 0; i < v.h.n_entries; i++)
                printf(" %s", modfmt_op_name(v.h.entry[i].op));
            printf("\n");
        }
    } else if (!strcmp(argv[1], "slot")) {
        struct fluid_cache_slot h;
        if (n < 512) {
            printf("state unreadable short\n");
            goto done;
        }
        enum cache_slot_state s = modfmt_slot_header(p, FLUID_CACHE_SLOT_BYTES, &h, why, sizeof why);
        if (s == SLOT_VALID)
            s = modfmt_slot_check(p, n, &h, why, sizeof why);
        printf("state %s%s%s\n", modfmt_slot_state_name(s), s == SLOT_VALID ? "" : ": ", s == SLOT_VALID ? "" : why);
        if (s != SLOT_VALID)
            goto done;
        printf("generation %llu entries %u\n", (unsigned long long)h.generation, h.n_entries);
        for (uint32_t i = 0; i < h.n_entries; i++) {
            struct fluid_cache_entry e;
            struct mod_view v;
            if (modfmt_slot_entry(p, &h, i, &e, why, sizeof why) != 0)
                printf("entry %u reject %s\n", i, why);
            else if (modfmt_check(p + e.offset, e.bytes, &v, why, sizeof why) != 0)
                printf("entry %u %s %s reject %s\n", i, e.tag, e.name, why);
            else
                printf("entry %u %s %s ok\n", i, e.tag, e.name);
        }
        static struct fluid_cache_choice c[FLUID_CACHE_MAX_CHOICES];
        int nc = modfmt_slot_choices(p, &h, c, why, sizeof why);
        if (nc < 0)
            printf("choices reject %s\n", why);
        else
            printf("choices %d tag %s model %s\n", nc, h.choice_tag, h.choice_model_id);
        for (int i = 0; i < nc; i++)
            printf("choice %s%s %s %s -O%u\n", modfmt_op_name(c[i].op), c[i].phase ? " decode" : "", c[i].module,
                   c[i].march, c[i].opt_level);
    } else {
        free(p);
        return 2;
    }
done:
    free(p);
    return 0;
}
