/*
 * gguf_fuzz.c - libFuzzer target for kernel/core/llm/gguf.c and llama_model.c.
 *
 * Build: clang-19 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
 * Parses arbitrary bytes, and whenever the parse succeeds, exercises every
 * accessor the kernel uses and checks the parser's promises (everything it
 * hands out lies inside the input), then runs the Llama validator. Any
 * broken promise aborts, which libFuzzer reports as a crash; out-of-bounds
 * reads are caught by ASan because libFuzzer passes an exactly-sized copy.
 */
#include "llm/gguf.h"
#include "llm/llama_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { \
        fprintf(stderr, "gguf_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
        abort(); } } while (0)

static uint8_t arena_mem[64u << 20];
static volatile uint8_t sink;   /* keeps the touching reads alive */

static const uint8_t *g_data;
static uint64_t g_size;

/* [p, p+n) must lie inside the input; touch both ends so ASan sees them. */
static void check_inside(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    CHECK(b >= g_data && b <= g_data + g_size);
    CHECK(n <= (uint64_t)(g_data + g_size - b));
    if (n) {
        sink ^= b[0];
        sink ^= b[n - 1];
    }
}

/* Errors must be one NUL-terminated line with the module prefix. */
static void check_message(const char *err, size_t cap, const char *prefix)
{
    CHECK(memchr(err, '\0', cap) != NULL);
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
    CHECK(strchr(err, '\n') == NULL);
}

static void exercise_kv(const struct gguf_file *f, const struct gguf_kv *kv)
{
    uint32_t u32; uint64_t u64; int64_t i64; float f32;
    struct gguf_str s;
    check_inside(kv->key.ptr, kv->key.len);
    (void)gguf_kv_u32(kv, &u32);
    (void)gguf_kv_u64(kv, &u64);
    (void)gguf_kv_i64(kv, &i64);
    (void)gguf_kv_f32(kv, &f32);
    if (gguf_kv_str(kv, &s) == GGUF_OK)
        check_inside(s.ptr, s.len);
    if (kv->type != GGUF_TYPE_ARRAY)
        return;
    for (uint64_t i = 0; i < kv->count; i++) {
        if (gguf_arr_str(kv, i, &s) == GGUF_OK)
            check_inside(s.ptr, s.len);
        (void)gguf_arr_f32(kv, i, &f32);
        (void)gguf_arr_int(kv, i, &i64);
    }
    CHECK(gguf_arr_int(kv, kv->count, &i64) != GGUF_OK);   /* index == count */
    /* lookup by name finds this record (or an earlier one if the name has a
     * NUL byte, which makes the C string shorter) */
    char name[256];
    if (kv->key.len < sizeof name && !memchr(kv->key.ptr, 0, (size_t)kv->key.len)) {
        memcpy(name, kv->key.ptr, (size_t)kv->key.len);
        name[kv->key.len] = '\0';
        CHECK(gguf_find_key(f, name) == kv);
    }
}

static void exercise_tensors(const struct gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        check_inside(t->name.ptr, t->name.len);
        check_inside(t->data, t->n_bytes);
        CHECK(t->n_dims <= GGUF_MAX_DIMS && t->n_bytes > 0);
        CHECK(t->offset % f->alignment == 0);
        CHECK((const uint8_t *)t->data >= g_data + f->data_offset);
    }
}

static void check_view(const struct llama_tensor *t)
{
    CHECK(t->data != NULL && t->row_bytes > 0);
    check_inside(t->data, llama_tensor_bytes(t));
}

static void exercise_model(const struct gguf_file *f, struct gguf_arena *arena)
{
    struct llama_model m;
    char err[256];
    int rc = llama_model_load(f, arena, &m, err, sizeof err);
    if (rc) {
        check_message(err, sizeof err, "llama: ");
        return;
    }
    check_view(&m.w.token_embd);
    check_view(&m.w.output_norm);
    check_view(&m.w.output);
    for (uint32_t il = 0; il < m.w.n_layer; il++) {
        const struct llama_layer *ly = &m.w.layers[il];
        const struct llama_tensor *all[] = {&ly->attn_norm, &ly->attn_q, &ly->attn_k,
            &ly->attn_v, &ly->attn_output, &ly->ffn_norm, &ly->ffn_gate, &ly->ffn_up,
            &ly->ffn_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            check_view(all[i]);
    }
    CHECK(m.hp.bos_id < m.hp.n_vocab && m.hp.eos_id < m.hp.n_vocab && m.hp.unk_id < m.hp.n_vocab);
    CHECK(m.hp.head_dim * m.hp.n_head == m.hp.n_embd);
    char summary[128];
    int need = llama_weights_summary(&m.w, summary, sizeof summary);
    CHECK(need > 0 && memchr(summary, '\0', sizeof summary));
    CHECK(llama_weights_bytes(&m.w) <= g_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_data = data;
    g_size = size;
    struct gguf_arena arena = {.base = arena_mem, .size = sizeof arena_mem, .used = 0};
    struct gguf_file f;
    char err[256];
    int rc = gguf_parse(&f, data, size, &arena, err, sizeof err);
    if (rc) {
        check_message(err, sizeof err, "gguf: ");
        CHECK(arena.used == 0);
    } else {
        for (uint64_t i = 0; i < f.n_kv; i++)
            exercise_kv(&f, &f.kv[i]);
        exercise_tensors(&f);
        exercise_model(&f, &arena);
    }
    /* Again with a tiny arena: running out of memory must fail cleanly. */
    struct gguf_arena small = {.base = arena_mem, .size = size % 4096, .used = 0};
    rc = gguf_parse(&f, data, size, &small, err, sizeof err);
    if (rc) {
        check_message(err, sizeof err, "gguf: ");
        CHECK(small.used == 0);
    }
    /* And with a one-byte message buffer: must stay NUL-terminated. */
    char one[1] = {'x'};
    struct gguf_arena again = {.base = arena_mem, .size = sizeof arena_mem, .used = 0};
    if (gguf_parse(&f, data, size, &again, one, sizeof one))
        CHECK(one[0] == '\0');
    return 0;
}
