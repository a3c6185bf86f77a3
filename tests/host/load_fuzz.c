/*
 * load_fuzz.c - libFuzzer target for the whole load path of the kernel
 * core, as fluid_start() runs it at boot, then one token:
 *
 *   image header (kernel/plat/hosted/image_check.c)
 *   -> model region read from the boot disk, its CRC (llm/model.c)
 *   -> GGUF parse (llm/gguf.c) -> Llama validation (llm/llama_model.c)
 *   -> tokenizer init (llm/tokenizer.c) -> engine and session set-up
 *   -> the prompt's text encoded, one forward pass (llm/engine.c, the
 *      compute modules) -> one token sampled (llm/sampler.c) and decoded
 *   -> everything given back (model_unload)
 *
 * Two kinds of input, told apart by their first bytes:
 *   a GGUF file ("GGUF" first): wrapped into the smallest image the kernel
 *      boots (fuzz_image.h, model region CRC as mkimage writes it), so
 *      mutations reach the parser and the engine instead of dying at the
 *      CRC checks;
 *   anything else: the disk image itself, byte for byte, as hosted boots a
 *      file (nothing repaired: the header CRC and the region CRC must hold,
 *      as on a machine).
 *
 * Built with clang-19 -fsanitize=fuzzer,address,undefined; the compute
 * modules (modules/<family>.c) are linked in and put into the module table
 * directly, as the host tests link them (the module loader and its checks
 * are fuzzed elsewhere: tests/host/test_modpack.py).  The kernel core runs
 * on tests/host/fuzz_plat.c.  Work per input is bounded by what the kernel
 * itself enforces: tensors lie inside the file and do not overlap (so one
 * forward pass reads at most the input once), the context is the model's
 * (at most FLUID_CTX_DEFAULT), memory is FUZZ_MEM_BUDGET as --mem is on hosted,
 * and the forward pass takes FEED_TOKENS tokens.
 *
 * Besides the sanitizers, each input must keep these promises (else abort):
 * every failure is one non-empty line of text; a failed load and an unload
 * give every byte back; console output is printable; the prompt's tokens
 * and the sampled token are in the vocabulary; the decoded text is valid
 * UTF-8 and fits the session's piece buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include "fluid/image.h"
#include "fuzz_image.h"
#include "fuzz_plat.h"
#include "llm/model.h"
#include "mod/optab.h"
#include "ops.h"
#include "plat/hosted/image_check.h"

/* A small machine (as tests/prompt/test_bad_models.py's 16M): the file in
 * 2 MiB and the 8 MiB parse arena leave 6 MiB, so an engine whose KV cache
 * and activations do not fit (many blocks, a long context) is reachable
 * with inputs of a few hundred KB. */
#define FUZZ_MEM_BUDGET (16ull << 20)
/* The prompt: encoded up to PROMPT_TOKENS tokens, of which the first
 * FEED_TOKENS (BOS and one more: causal attention over two positions) go
 * through one forward pass; the engine's cost grows with them. */
#define PROMPT_TOKENS 8
#define FEED_TOKENS 2

#define CHECK(cond) do { if (!(cond)) { \
        fprintf(stderr, "load_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
        abort(); } } while (0)

const struct fluid_services *fluid_svc;   /* modules/modrt.c's, for the linked-in modules */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fluid_svc = &kernel_services;
    optab_init();
    /* Every op's function is the module symbol of the op's name
     * (module_abi.h), linked in and exported (-rdynamic): no table here
     * to fall behind the op list. */
    for (int i = 0; i < OP_COUNT; i++) {
        optab[i].fn = dlsym(RTLD_DEFAULT, optab[i].name);
        if (!optab[i].fn)
            fprintf(stderr, "load_fuzz: op %s is not linked in (modules/*.c)\n", optab[i].name);
        CHECK(optab[i].fn != NULL);
        optab[i].variant = "linked";
        optab[i].dec = (struct op_impl){ .fn = optab[i].fn, .variant = "linked", .march = "-", .hash = "-" };
    }
    CHECK(optab_missing(NULL, 0) == 0);
    return 0;
}

/* One line of text: NUL-terminated inside cap, no newline, not empty, and
 * naming its part once ("gguf: ...", not "gguf: gguf: ..."). */
static void check_line(const char *s, size_t cap)
{
    CHECK(memchr(s, 0, cap) != NULL);
    CHECK(s[0] != 0);
    CHECK(strchr(s, '\n') == NULL);
    const char *colon = strstr(s, ": ");
    if (colon) {
        size_t n = (size_t)(colon - s) + 2;
        CHECK(strncmp(colon + 2, s, n) != 0);
    }
}

/* Valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || len > n - i || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        unsigned c1 = s[i + 1 < n ? i + 1 : i];
        if ((len == 3 && c == 0xe0 && c1 < 0xa0) || (len == 3 && c == 0xed && c1 >= 0xa0) ||
            (len == 4 && c == 0xf0 && c1 < 0x90) || (len == 4 && c == 0xf4 && c1 >= 0x90))
            return 0;
        i += len;
    }
    return 1;
}

/* What `gen` does with a prompt, cut to one forward pass and one token. */
static void one_token(void)
{
    static const char text[] = "Hello world! \xc3\xbc</s><0x41> 12";
    static uint8_t scratch[1u << 16];
    struct session *s = &model.sess;
    const uint32_t n_vocab = model.m.hp.n_vocab;
    CHECK(model.eng.n_ctx >= 1 && model.eng.n_ctx <= FLUID_CTX_DEFAULT);
    CHECK(tok_encode_scratch_bytes(sizeof text - 1) <= sizeof scratch);
    struct tok_arena sa = { scratch, sizeof scratch, 0 };
    int32_t toks[PROMPT_TOKENS];
    size_t n = 0;
    int st = tok_encode(&model.tok, text, sizeof text - 1, TOK_ENC_BOS | TOK_ENC_SPECIAL, toks, PROMPT_TOKENS,
                        &n, &sa);
    CHECK(st == TOK_OK || st == TOK_ERR_NOSPACE);
    CHECK(sa.used == 0);
    CHECK(n >= 1);   /* BOS at least */
    if (n > PROMPT_TOKENS)
        n = PROMPT_TOKENS;
    for (size_t i = 0; i < n; i++)
        CHECK(toks[i] >= 0 && (uint32_t)toks[i] < n_vocab);
    int feed = n < FEED_TOKENS ? (int)n : FEED_TOKENS;
    if (feed > session_room(s))
        feed = session_room(s);
    CHECK(session_prefill(s, toks, feed, NULL, NULL) == SESS_OK);
    CHECK(session_used(s) == feed);
    int32_t id = session_sample(s);
    CHECK(id >= 0 && (uint32_t)id < n_vocab);
    struct tok_decoder dec;
    size_t nout = 0;
    tok_decoder_init(&dec, &model.tok, 0);
    CHECK(tok_decoder_push(&dec, id, s->piece, s->piece_cap, &nout) == TOK_OK);
    CHECK(nout <= s->piece_cap && utf8_valid((const unsigned char *)s->piece, nout));
    CHECK(tok_decoder_flush(&dec, s->piece, s->piece_cap, &nout) == TOK_OK);
    CHECK(nout <= s->piece_cap && utf8_valid((const unsigned char *)s->piece, nout));
}

static void check_all_freed(const char *after)
{
    if (fuzz_plat_live_blocks() == 0)
        return;
    fprintf(stderr, "load_fuzz: %d blocks (%llu bytes) still allocated after %s\n", fuzz_plat_live_blocks(),
            (unsigned long long)fuzz_plat_live_bytes(), after);
    abort();
}

static void boot(const uint8_t *img, uint64_t bytes)
{
    char why[256];
    if (image_check_size(bytes, why, sizeof why) != IMAGE_OK) {
        check_line(why, sizeof why);
        return;
    }
    struct fluid_image_header h;
    memcpy(&h, img + FLUID_HEADER_LBA * FLUID_SECTOR_BYTES, sizeof h);
    if (image_check_header(&h, bytes, why, sizeof why) != IMAGE_OK) {
        check_line(why, sizeof why);
        return;
    }
    fuzz_plat_boot(&h, img, bytes, FUZZ_MEM_BUDGET);
    model_boot_load();
    int loaded = model.loaded;
    if (loaded) {
        one_token();
    } else {
        check_line(model.error, sizeof model.error);
        check_all_freed("a failed load");
    }
    int bad;
    const char *where;
    if (fuzz_plat_bad_console_bytes(&bad, &where)) {
        fprintf(stderr, "load_fuzz: console byte 0x%02x in the line \"%s\"\n", bad, where);
        abort();
    }
    model_unload();
    check_all_freed("model_unload");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        static uint8_t *img;   /* kept: a fresh buffer for every input costs page faults */
        static uint64_t cap;
        uint64_t bytes = fuzz_image_bytes(size);
        if (bytes > cap) {
            free(img);
            CHECK((img = malloc((size_t)bytes)) != NULL);
            cap = bytes;
        }
        fuzz_image_wrap(data, size, FUZZ_CRC_CHUNKED, img);
        boot(img, bytes);
    } else {
        boot(data, size);
    }
    return 0;
}
