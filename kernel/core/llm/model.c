/* model.c - loading the model region (see model.h). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "lib/crc32_fast.h"
#include "lib/kprintf.h"
#include "llm/model.h"
#include "llm/repack.h"
#include "plat/plat.h"

#define MiB (1ull << 20)
#define TWO_MiB (2ull << 20)
#define ARENA_BYTES (8 * MiB)
#define READ_CHUNK (64 * MiB)

struct fluid_model model;

static void fail(const char *fmt, const char *a)
{
    snprintf(model.error, sizeof model.error, fmt, a);
    kprintf("model: %s\n", model.error);
}

void model_id_string(char *out, size_t cap)
{
    const struct fluid_region *r = &plat_image()->region[FLUID_REGION_MODEL];
    if (!model.loaded) {
        snprintf(out, cap, "none");
        return;
    }
    char name[64];
    size_t n = 0;
    for (const char *p = model.name; *p && n < sizeof name - 1; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        name[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ? c : '-';
    }
    name[n] = 0;
    snprintf(out, cap, "%s-%08x", n ? name : "model", r->crc32);
}

int model_require(void)
{
    if (model.loaded)
        return 0;
    kprintf("error: no model is loaded: %s\n", model.error[0] ? model.error : "none");
    return 1;
}

/* Read the region into memory with a progress line; returns 0 or -1. */
static int read_region(struct blkdev *d, const struct fluid_region *r, uint8_t *dst)
{
    uint64_t bytes = (r->bytes + 511) & ~511ull, t0 = rdtsc();
    for (uint64_t done = 0; done < bytes;) {
        uint64_t n = bytes - done < READ_CHUNK ? bytes - done : READ_CHUNK;
        d->error[0] = 0;
        int err = d->read(d, r->lba + done / 512, dst + done, n);
        if (err) {
            char why[256];
            snprintf(why, sizeof why, "disk read failed at byte %llu of the model region (%s)",
                     (unsigned long long)done, d->error[0] ? d->error : blk_strerror(err));
            fail("%s", why);
            return -1;
        }
        done += n;
        kprintf("\rmodel: reading %llu / %llu MiB", (unsigned long long)(done / MiB),
                (unsigned long long)(bytes / MiB));
    }
    model.read_us = tsc_to_us(rdtsc() - t0);
    kprintf("\n");
    return 0;
}

struct crc_job { const uint8_t *p; uint64_t size; uint32_t *out; };

static void crc_chunks(void *ctx, int begin, int end, int cpu)
{
    (void)cpu;
    struct crc_job *j = ctx;
    for (int i = begin; i < end; i++) {
        uint64_t off = (uint64_t)i * FLUID_CRC_CHUNK_BYTES;
        uint64_t n = j->size - off < FLUID_CRC_CHUNK_BYTES ? j->size - off : FLUID_CRC_CHUNK_BYTES;
        j->out[i] = crc32_fast(0, j->p + off, n);
    }
}

/* The model region's checksum as the image header defines it: plain
 * CRC-32, or (FLUID_REGION_CRC_CHUNKED) the CRC of the per-4-MiB CRCs,
 * those computed on every core. */
static uint32_t region_crc(const struct fluid_region *r)
{
    if (!(r->flags & FLUID_REGION_CRC_CHUNKED))
        return crc32_fast(0, model.file, model.size);
    static uint32_t crcs[1u << 16];   /* up to 256 GiB of model */
    uint64_t n = (model.size + FLUID_CRC_CHUNK_BYTES - 1) / FLUID_CRC_CHUNK_BYTES;
    if (n > sizeof crcs / sizeof crcs[0])
        return ~r->crc32;
    struct crc_job job = { model.file, model.size, crcs };
    plat_parallel_for((int)n, crc_chunks, &job);
    uint32_t crc = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t le[4] = { (uint8_t)crcs[i], (uint8_t)(crcs[i] >> 8), (uint8_t)(crcs[i] >> 16),
                          (uint8_t)(crcs[i] >> 24) };
        crc = crc32_fast(crc, le, 4);
    }
    return crc;
}

/* The image header's model file name, made printable (it comes from the
 * disk: control bytes would reach the terminal); NUL-terminated or not. */
static const char *image_model_name(char *buf, size_t n)
{
    const char *name = plat_image()->model_name, *end = memchr(name, 0, sizeof plat_image()->model_name);
    return gguf_printable(buf, n, name, end ? (uint64_t)(end - name) : sizeof plat_image()->model_name);
}

static void set_name(void)
{
    struct gguf_str s;
    if (gguf_get_str(&model.gf, "general.name", &s) == 0 && s.len > 0)
        gguf_printable(model.name, sizeof model.name, s.ptr, s.len);
    else
        image_model_name(model.name, sizeof model.name);
}

static int parse(uint8_t *arena_mem)
{
    static char err[256];
    struct gguf_arena arena = { arena_mem, ARENA_BYTES, 0 };
    if (gguf_parse(&model.gf, model.file, model.size, &arena, err, sizeof err) != GGUF_OK ||
        llama_model_load(&model.gf, &arena, &model.m, err, sizeof err) != LLAMA_OK) {
        fail("%s", err);
        return -1;
    }
    const struct llama_model *m = &model.m;
    struct tok_vocab_src src = {
        .n_vocab = m->hp.n_vocab,
        .gguf_strings = m->tokens->value,
        .gguf_strings_size = (size_t)(model.file + model.size - m->tokens->value),
        .scores_f32 = m->scores->value,
        .types_i32 = m->token_type->value,
        .bos_id = (int32_t)m->hp.bos_id, .eos_id = (int32_t)m->hp.eos_id, .unk_id = (int32_t)m->hp.unk_id,
        .add_bos = m->hp.add_bos, .add_space_prefix = m->hp.add_space_prefix,
    };
    struct tok_arena ta = { arena.base + arena.used, arena.size - arena.used, 0 };
    int st = tok_init(&model.tok, &src, &ta);
    if (st != 0) {
        if (model.tok.err[0])   /* "tokenizer: ..." already */
            snprintf(err, sizeof err, "%s", model.tok.err);
        else
            snprintf(err, sizeof err, "tokenizer: %s", tok_strerror(st));
        fail("%s", err);
        return -1;
    }
    return 0;
}

/* The Q4_0 / Q8_0 / Q4_K / Q6_K matrices into the modules' x8 layout (llm/repack.h). */
static int repack(void)
{
    char err[160];
    uint64_t extra = 0;
    int rc = weights_repack(&model.m.w, &extra, err, sizeof err);
    if (extra) {   /* a tied output's copy, taken even when a later step failed */
        model.tied_mem = model.m.w.output.data;
        model.tied_alloc = extra;
    }
    if (rc != 0) {
        fail("%s", err);
        return -1;
    }
    model.mem_bytes += extra;
    return 0;
}

/* 0, or -1 with why when n_ctx is outside 1..context_length. */
static int check_ctx(int n_ctx, char *why, size_t cap)
{
    if (n_ctx >= 1 && (uint32_t)n_ctx <= model.m.hp.n_ctx_train)
        return 0;
    snprintf(why, cap, "a context of %d tokens: this model's context_length is %u (0 picks it)", n_ctx,
             model.m.hp.n_ctx_train);
    return -1;
}

/* The context: KV cache and activations for n_ctx positions (engine.h)
 * and the session's buffers.  0, or -1 with the reason in why. */
static int setup_ctx(int n_ctx, char *why, size_t cap)
{
    const struct llama_hparams *hp = &model.m.hp;
    if (check_ctx(n_ctx, why, cap) != 0)
        return -1;
    uint64_t need = engine_mem_bytes(hp, n_ctx);
    void *mem = plat_alloc(need, TWO_MiB);
    if (!mem) {
        struct plat_mem pm;
        plat_mem_stats(&pm);
        uint64_t kv = engine_kv_bytes(hp, n_ctx);
        snprintf(why, cap, "a context of %d tokens needs %llu MiB (KV cache %llu MiB, activations %llu MiB); "
                 "only %llu MiB are free", n_ctx, (unsigned long long)((need + MiB - 1) / MiB),
                 (unsigned long long)(kv / MiB), (unsigned long long)((need - kv) / MiB),
                 (unsigned long long)(pm.largest / MiB));
        return -1;
    }
    if (engine_init(&model.eng, &model.m, n_ctx, mem, need, why, cap) != 0) {
        plat_free(mem, need);
        return -1;
    }
    if (session_init(&model.sess, &model.eng, &model.tok) != SESS_OK) {
        plat_free(mem, need);
        snprintf(why, cap, "no memory for the session's buffers (%u sampler candidates, %d token ids)",
                 hp->n_vocab, n_ctx);
        return -1;
    }
    model.eng_mem = mem;
    model.mem_bytes += need;
    return 0;
}

/* The context size at boot: the platform's option, else the default. */
static int boot_ctx(void)
{
    const struct llama_hparams *hp = &model.m.hp;
    int asked = plat_boot_ctx_size();
    if (asked == 0)
        return (int)hp->n_ctx_train;
    if (asked > 0)
        return asked;
    return hp->n_ctx_train < FLUID_CTX_DEFAULT ? (int)hp->n_ctx_train : FLUID_CTX_DEFAULT;
}

int model_set_ctx(int n_ctx, char *why, size_t cap)
{
    if (!model.loaded) {
        snprintf(why, cap, "no model is loaded");
        return -1;
    }
    if (n_ctx == 0)
        n_ctx = (int)model.m.hp.n_ctx_train;
    int old = model.eng.n_ctx;
    if (check_ctx(n_ctx, why, cap) != 0)
        return -1;
    session_free(&model.sess);
    plat_free(model.eng_mem, model.eng.mem_bytes);
    model.eng_mem = NULL;
    model.mem_bytes -= model.eng.mem_bytes;
    if (setup_ctx(n_ctx, why, cap) == 0)
        return 0;
    char again[160];
    if (setup_ctx(old, again, sizeof again) != 0) {   /* what was just freed: cannot fail */
        snprintf(model.error, sizeof model.error, "the context could not be set up again: %s", again);
        model.loaded = 0;
    }
    return -1;
}

/* The load; 0, or -1 after fail().  Everything it takes from plat_alloc
 * is recorded in model.* at once, so release() finds it. */
static int load(void)
{
    const struct fluid_region *r = &plat_image()->region[FLUID_REGION_MODEL];
    if (r->bytes == 0) {
        fail("%s", "this image has no model (build one with: make image MODEL=path/to/model.gguf)");
        return -1;
    }
    struct blkdev *d = plat_boot_disk();
    if (!d) {
        fail("%s", "cannot find the boot disk to read the model from");
        return -1;
    }
    uint64_t r_sectors = r->bytes / 512 + (r->bytes % 512 != 0);   /* no wrap near 2^64 */
    if (r->lba > d->sectors || r_sectors > d->sectors - r->lba) {
        char why[200];
        snprintf(why, sizeof why, "the disk image is truncated: the model region ends at sector %llu "
                 "but %s has %llu sectors", (unsigned long long)(r->lba + r_sectors),
                 d->name, (unsigned long long)d->sectors);
        fail("%s", why);
        return -1;
    }
    model.file_alloc = (r->bytes + TWO_MiB - 1) & ~(TWO_MiB - 1);
    uint8_t *file_mem = model.file_mem = plat_alloc(model.file_alloc, TWO_MiB);
    uint8_t *arena_mem = model.arena_mem = file_mem ? plat_alloc(ARENA_BYTES, TWO_MiB) : NULL;
    if (!file_mem || !arena_mem) {
        char why[200];
        struct plat_mem pm;
        plat_mem_stats(&pm);
        snprintf(why, sizeof why, "the model file (%llu MiB) does not fit in memory: the largest free "
                 "block is %llu MiB of %llu MiB usable", (unsigned long long)(r->bytes / MiB),
                 (unsigned long long)(pm.largest / MiB), (unsigned long long)(pm.usable / MiB));
        fail("%s", why);
        return -1;
    }
    model.file = file_mem;
    model.size = r->bytes;
    model.mem_bytes = r->bytes + ARENA_BYTES;
    char shown[72];
    kprintf("model: %s, %llu MiB on %s\n", image_model_name(shown, sizeof shown), (unsigned long long)(r->bytes / MiB),
            d->name);
    if (read_region(d, r, file_mem) != 0)
        return -1;
    uint64_t t0 = rdtsc();
    if ((r->flags & FLUID_REGION_HAS_CRC) && region_crc(r) != r->crc32) {
        fail("%s", "model region checksum mismatch: the disk image is damaged");
        return -1;
    }
    if (parse(arena_mem) != 0 || repack() != 0)
        return -1;
    char why[200];
    if (setup_ctx(boot_ctx(), why, sizeof why) != 0) {
        fail("%s", why);
        return -1;
    }
    model.check_us = tsc_to_us(rdtsc() - t0);
    set_name();
    const struct llama_hparams *hp = &model.m.hp;
    char types[160];
    llama_weights_summary(&model.m.w, types, sizeof types);
    double secs = model.read_us / 1e6;
    kprintf("model: '%s': %u blocks, embd %u, ff %u, heads %u/%u kv, vocab %u, ctx %d\n",
            model.name, hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv, hp->n_vocab,
            model.eng.n_ctx);
    kprintf("model: %s\n", types);
    kprintf("model: loaded %.1f MiB in %.3f s (%.0f MB/s), checked in %.3f s\n",
            model.size / (double)MiB, secs, secs > 0 ? model.size / 1e6 / secs : 0.0, model.check_us / 1e6);
    return 0;
}

/* Every allocation of a load back to the platform, and the rest of the
 * state forgotten (it points into that memory); the message stays. */
static void release(void)
{
    session_free(&model.sess);
    if (model.eng_mem)
        plat_free(model.eng_mem, model.eng.mem_bytes);
    if (model.tied_mem)
        plat_free((void *)model.tied_mem, model.tied_alloc);   /* ours: repack.c took it */
    if (model.arena_mem)
        plat_free(model.arena_mem, ARENA_BYTES);
    if (model.file_mem)
        plat_free(model.file_mem, model.file_alloc);
    char error[sizeof model.error];
    memcpy(error, model.error, sizeof error);
    memset(&model, 0, sizeof model);
    memcpy(model.error, error, sizeof error);
}

void model_boot_load(void)
{
    if (load() == 0)
        model.loaded = 1;
    else
        release();   /* a failed load keeps its message, not its memory */
}

void model_unload(void)
{
    release();
    memset(model.error, 0, sizeof model.error);
}
