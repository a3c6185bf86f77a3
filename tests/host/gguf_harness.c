/*
 * gguf_harness.c - host driver for kernel/core/llm/gguf.c and llama_model.c,
 * used by tests/host/test_gguf.py.
 *
 *   gguf_harness [options] FILE
 *     --parse-only      stop after gguf_parse
 *     --arena BYTES     arena size (default 64 MiB)
 *     --tensors         list every tensor record
 *     --views           list the llama weight views
 *     --tokens N        print the first N tokens (id, type, score, text)
 *     --get KEY         run every typed getter on KEY
 *     --prefixes MAX    parse every strict prefix of FILE no longer than MAX
 *                       bytes (each in an exactly-sized copy) and count the
 *                       outcomes: "prefixes N ok K truncated T bounds B other O"
 *
 * Output: "OK" then details, exit 0; or "ERR <code> <message>", exit 1.
 * Exit 2 for usage / I/O problems.
 */
#include "llm/gguf.h"
#include "llm/llama_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *read_file(const char *path, uint64_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    /* exact-size allocation so ASan catches reads past the end */
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *size = (uint64_t)(n > 0 ? n : 0);
    return buf;
}

static void print_str(struct gguf_str s)
{
    fwrite(s.ptr, 1, (size_t)s.len, stdout);
}

/* Every getter on one key: "<getter> <status> <value>" lines. */
static void run_getters(const struct gguf_file *f, const char *key)
{
    uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; float f32; bool b;
    struct gguf_str s;
    int rc;
    rc = gguf_get_u32(f, key, &u32);
    printf("u32 %s %u\n", gguf_status_name(rc), rc ? 0 : u32);
    rc = gguf_get_i32(f, key, &i32);
    printf("i32 %s %d\n", gguf_status_name(rc), rc ? 0 : i32);
    rc = gguf_get_u64(f, key, &u64);
    printf("u64 %s %" PRIu64 "\n", gguf_status_name(rc), rc ? 0 : u64);
    rc = gguf_get_i64(f, key, &i64);
    printf("i64 %s %" PRId64 "\n", gguf_status_name(rc), rc ? 0 : i64);
    rc = gguf_get_f32(f, key, &f32);
    printf("f32 %s %.9g\n", gguf_status_name(rc), rc ? 0.0 : (double)f32);
    rc = gguf_get_bool(f, key, &b);
    printf("bool %s %d\n", gguf_status_name(rc), rc ? 0 : (int)b);
    rc = gguf_get_str(f, key, &s);
    printf("str %s ", gguf_status_name(rc));
    if (!rc)
        print_str(s);
    printf("\n");
    uint32_t et; uint64_t count; const void *elems;
    rc = gguf_get_arr(f, key, &et, &count, &elems);
    printf("arr %s %s %" PRIu64 "\n", gguf_status_name(rc), rc ? "-" : gguf_value_type_name(et),
           rc ? 0 : count);
}

static void print_tensors(const struct gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        printf("tensor ");
        print_str(t->name);
        printf(" %s %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
               ggml_type_name(t->type), t->n_dims, t->ne[0], t->ne[1], t->ne[2], t->ne[3],
               (uint64_t)((const uint8_t *)t->data - f->data), t->n_bytes);
    }
}

static void print_view(const struct gguf_file *f, const char *name, const struct llama_tensor *t)
{
    printf("view %s %s %" PRIu64 " %" PRIu64 " %zu %" PRIu64 " %" PRIu64 "\n", name,
           ggml_type_name((uint32_t)t->type), t->ne0, t->ne1, t->row_bytes,
           (uint64_t)((const uint8_t *)t->data - f->data), llama_tensor_bytes(t));
}

static void print_views(const struct gguf_file *f, const struct llama_weights *w)
{
    print_view(f, "token_embd", &w->token_embd);
    print_view(f, "output_norm", &w->output_norm);
    print_view(f, "output", &w->output);
    for (uint32_t il = 0; il < w->n_layer; il++) {
        const struct llama_layer *ly = &w->layers[il];
        char name[64];
#define V(field) snprintf(name, sizeof name, "blk.%u." #field, il); print_view(f, name, &ly->field)
        V(attn_norm); V(attn_q); V(attn_k); V(attn_v); V(attn_output);
        V(ffn_norm); V(ffn_gate); V(ffn_up); V(ffn_down);
#undef V
    }
}

static void print_tokens(const struct llama_model *m, uint32_t n)
{
    for (uint32_t i = 0; i < n && i < m->hp.n_vocab; i++) {
        struct gguf_str s;
        float score;
        int64_t type;
        if (gguf_arr_str(m->tokens, i, &s) || gguf_arr_f32(m->scores, i, &score) ||
            gguf_arr_int(m->token_type, i, &type)) {
            printf("token %u accessor failed\n", i);
            continue;
        }
        printf("token %u %" PRId64 " %.9g ", i, type, (double)score);
        print_str(s);
        printf("\n");
    }
}

/* Every tensor must be found by name through the hash index. */
static int check_lookups(const struct gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        char name[512];
        const struct gguf_tensor *t = &f->tensors[i];
        if (t->name.len >= sizeof name || memchr(t->name.ptr, 0, (size_t)t->name.len))
            continue;
        memcpy(name, t->name.ptr, (size_t)t->name.len);
        name[t->name.len] = '\0';
        if (gguf_find_tensor(f, name) != t) {
            printf("lookup of tensor %s failed\n", name);
            return 1;
        }
    }
    return 0;
}

static int run(const uint8_t *data, uint64_t size, struct gguf_arena *arena, const char *get_key,
               bool parse_only, bool tensors, bool views, uint32_t n_tokens)
{
    struct gguf_file f;
    char err[256];
    int rc = gguf_parse(&f, data, size, arena, err, sizeof err);
    if (rc) {
        printf("ERR %d %s\n", rc, err);
        return 1;
    }
    if (check_lookups(&f))
        return 3;
    if (get_key)
        run_getters(&f, get_key);
    if (tensors)
        print_tensors(&f);
    if (parse_only) {
        printf("OK parsed %" PRIu64 " keys %" PRIu64 " tensors data_offset %" PRIu64 " arena %zu\n",
               f.n_kv, f.n_tensors, f.data_offset, arena->used);
        return 0;
    }
    struct llama_model m;
    rc = llama_model_load(&f, arena, &m, err, sizeof err);
    if (rc) {
        printf("ERR %d %s\n", rc, err);
        return 1;
    }
    const struct llama_hparams *hp = &m.hp;
    printf("OK\n");
    printf("hparams n_vocab=%u n_embd=%u n_layer=%u n_head=%u n_head_kv=%u head_dim=%u "
           "n_embd_kv=%u n_ff=%u n_ctx_train=%u rope_dim=%u rms_eps=%.9g rope_freq_base=%.9g "
           "bos=%u eos=%u unk=%u\n",
           hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim,
           hp->n_embd_kv, hp->n_ff, hp->n_ctx_train, hp->rope_dim, (double)hp->rms_eps,
           (double)hp->rope_freq_base, hp->bos_id, hp->eos_id, hp->unk_id);
    char summary[256];
    llama_weights_summary(&m.w, summary, sizeof summary);
    printf("summary %s\n", summary);
    printf("weights_bytes %" PRIu64 "\n", llama_weights_bytes(&m.w));
    printf("output_tied %d\n", (int)m.w.output_tied);
    printf("arena_used %zu\n", arena->used);
    if (views)
        print_views(&f, &m.w);
    print_tokens(&m, n_tokens);
    return 0;
}

/* Every strict prefix of a file whose data ends at EOF must fail as a
 * truncation (or, for cuts inside the data, as a tensor out of bounds). */
static int run_prefixes(const uint8_t *data, uint64_t size, uint64_t max, struct gguf_arena *arena)
{
    uint64_t n_ok = 0, n_trunc = 0, n_bounds = 0, n_other = 0, tried = 0;
    for (uint64_t n = 0; n < size && n <= max; n++, tried++) {
        uint8_t *copy = malloc(n ? (size_t)n : 1);
        memcpy(copy, data, (size_t)n);
        struct gguf_file f;
        char err[256];
        arena->used = 0;
        int rc = gguf_parse(&f, copy, n, arena, err, sizeof err);
        if (rc == GGUF_OK) n_ok++;
        else if (rc == GGUF_E_TRUNCATED) n_trunc++;
        else if (rc == GGUF_E_BOUNDS) n_bounds++;
        else if (n_other++ == 0) printf("other at %" PRIu64 ": %s\n", n, err);
        free(copy);
    }
    printf("prefixes %" PRIu64 " ok %" PRIu64 " truncated %" PRIu64 " bounds %" PRIu64
           " other %" PRIu64 "\n", tried, n_ok, n_trunc, n_bounds, n_other);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *get_key = NULL;
    bool parse_only = false, tensors = false, views = false;
    uint64_t arena_size = 64ull << 20;
    uint32_t n_tokens = 0;
    uint64_t prefixes = 0;
    bool do_prefixes = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--parse-only")) parse_only = true;
        else if (!strcmp(argv[i], "--tensors")) tensors = true;
        else if (!strcmp(argv[i], "--views")) views = true;
        else if (!strcmp(argv[i], "--arena") && i + 1 < argc) arena_size = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) n_tokens = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--get") && i + 1 < argc) get_key = argv[++i];
        else if (!strcmp(argv[i], "--prefixes") && i + 1 < argc) {
            do_prefixes = true;
            prefixes = strtoull(argv[++i], NULL, 0);
        }
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else { fprintf(stderr, "usage: gguf_harness [options] FILE\n"); return 2; }
    }
    if (!path) { fprintf(stderr, "usage: gguf_harness [options] FILE\n"); return 2; }
    uint64_t size;
    uint8_t *data = read_file(path, &size);
    if (!data) { perror(path); return 2; }

    struct gguf_arena arena = {.base = malloc(arena_size ? arena_size : 1), .size = arena_size};
    int status = do_prefixes ? run_prefixes(data, size, prefixes, &arena)
                             : run(data, size, &arena, get_key, parse_only, tensors, views, n_tokens);
    free(arena.base);
    free(data);
    return status;
}
