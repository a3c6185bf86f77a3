/*
 * tok_harness.c - host driver for kernel/core/llm/tokenizer.c, used by
 * tests/host/test_tokenizer.py.
 *
 * usage: tok_harness FILE.gguf [options] MODE [N]
 * MODE
 *   encode     stdin: one string per line (escapes \\ \n \r \t \xHH, where
 *              \xHH is one raw byte); stdout per line: the ids separated by
 *              spaces, or "ERR <status> <n_out>" on failure
 *   decode     stdin: one list of ids per line; stdout per line: the output
 *              of each tok_decoder_push as hex, joined by ',', then ';' and
 *              the hex of tok_decoder_flush ("ERR <status>" on failure)
 *   roundtrip  stdin: strings as for encode; encode with BOS, decode with
 *              TOK_DEC_STRIP_SPACE; stdout: the hex of the decoded text
 *   bench N    stdin: one string; encode it N times; stdout:
 *              "bytes=B tokens=T ns_per_encode=X"
 *   info       vocabulary facts, one "key=value" per line
 * options
 *   --bos --special --no-prefix       tok_encode flags
 *   --strip --dec-special             decoder flags
 *   --cap N                           output capacity for encode (tokens)
 *   --dec-cap N                       output capacity per push (bytes)
 *   --scratch N                       scratch arena bytes (default: exact)
 *   --arena N                         init arena bytes (default: exact)
 *   --packed                          hand tok_init the GGUF string array
 *   --break-byte ID / --drop-byte ID / --dup-byte ID
 *       corrupt the vocabulary before init: byte token ID gets the text
 *       "<0xZZ>", or type NORMAL, or the text "<0x41>"; init errors print
 *       "INIT_ERR <status> <message>" and exit 2
 *
 * The GGUF reader here is deliberately tiny: it walks the metadata only.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/tokenizer.h"

static void die(const char *msg)
{
    fprintf(stderr, "tok_harness: %s\n", msg);
    exit(1);
}

/* ------------------------------------------------------ GGUF metadata */

struct reader {
    const uint8_t *p;
    size_t n, off;
};

static const uint8_t *take(struct reader *r, size_t n)
{
    if (n > r->n - r->off)
        die("GGUF file truncated");
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t rd(struct reader *r, size_t n)
{
    const uint8_t *p = take(r, n);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static size_t scalar_size(uint32_t t)
{
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t > 12 || t == 8 || t == 9)
        return 0;
    return sz[t];
}

static void skip_value(struct reader *r, uint32_t t)
{
    if (t == 8) {
        take(r, rd(r, 8));
    } else if (t == 9) {
        uint32_t et = (uint32_t)rd(r, 4);
        uint64_t cnt = rd(r, 8);
        for (uint64_t i = 0; i < cnt; i++)
            skip_value(r, et);
    } else {
        size_t s = scalar_size(t);
        if (!s)
            die("bad GGUF value type");
        take(r, s);
    }
}

struct vocab_file {
    uint8_t *data;
    size_t size;
    uint64_t n_tokens, n_scores, n_types;
    const uint8_t *tokens; /* GGUF string array payload */
    size_t tokens_size;
    const uint8_t *scores, *types;
    int32_t bos, eos, unk;
};

static void load_gguf(const char *path, struct vocab_file *vf)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(strerror(errno));
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* metadata sits at the front; 16 MiB is plenty for any vocabulary */
    size_t want = sz > (16L << 20) ? (size_t)16 << 20 : (size_t)sz;
    vf->data = malloc(want);
    if (!vf->data || fread(vf->data, 1, want, f) != want)
        die("cannot read the GGUF file");
    fclose(f);
    vf->size = want;
    vf->bos = vf->eos = vf->unk = -1;

    struct reader r = {vf->data, want, 0};
    if (memcmp(take(&r, 4), "GGUF", 4) != 0)
        die("not a GGUF file");
    rd(&r, 4); /* version */
    rd(&r, 8); /* tensor count */
    uint64_t nkv = rd(&r, 8);
    for (uint64_t k = 0; k < nkv; k++) {
        uint64_t klen = rd(&r, 8);
        const char *key = (const char *)take(&r, klen);
        uint32_t t = (uint32_t)rd(&r, 4);
#define KEY(s) (klen == strlen(s) && memcmp(key, s, klen) == 0)
        if (t == 9 && (KEY("tokenizer.ggml.tokens") || KEY("tokenizer.ggml.scores") ||
                       KEY("tokenizer.ggml.token_type"))) {
            uint32_t et = (uint32_t)rd(&r, 4);
            uint64_t cnt = rd(&r, 8);
            size_t start = r.off;
            for (uint64_t i = 0; i < cnt; i++)
                skip_value(&r, et);
            if (KEY("tokenizer.ggml.tokens")) {
                if (et != 8) die("tokens are not strings");
                vf->tokens = vf->data + start;
                vf->tokens_size = r.off - start;
                vf->n_tokens = cnt;
            } else if (KEY("tokenizer.ggml.scores")) {
                if (et != 6) die("scores are not f32");
                vf->scores = vf->data + start;
                vf->n_scores = cnt;
            } else {
                if (et != 5 && et != 4) die("token types are not 32-bit");
                vf->types = vf->data + start;
                vf->n_types = cnt;
            }
        } else if (KEY("tokenizer.ggml.bos_token_id") || KEY("tokenizer.ggml.eos_token_id") ||
                   KEY("tokenizer.ggml.unknown_token_id")) {
            size_t s = scalar_size(t);
            if (!s || s > 8 || t == 6 || t == 12) die("bad special token id type");
            int32_t id = (int32_t)rd(&r, s);
            if (KEY("tokenizer.ggml.bos_token_id")) vf->bos = id;
            else if (KEY("tokenizer.ggml.eos_token_id")) vf->eos = id;
            else vf->unk = id;
        } else {
            skip_value(&r, t);
        }
#undef KEY
    }
    if (!vf->tokens || !vf->scores || vf->n_scores != vf->n_tokens ||
        (vf->types && vf->n_types != vf->n_tokens))
        die("GGUF file has no usable tokenizer.ggml.tokens/scores/token_type");
}

/* ------------------------------------------------------------- helpers */

static size_t unescape(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            s[o++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'n') s[o++] = '\n';
        else if (c == 't') s[o++] = '\t';
        else if (c == 'r') s[o++] = '\r';
        else if (c == '\\') s[o++] = '\\';
        else if (c == 'x' && i + 2 < n) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            s[o++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else
            die("bad escape in input");
    }
    return o;
}

static void put_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", (uint8_t)p[i]);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 3)
        die("usage: tok_harness FILE.gguf [options] MODE [N]");
    unsigned enc_flags = 0, dec_flags = 0;
    long cap = -1, dec_cap = -1, scratch_size = -1, arena_size = -1;
    long break_byte = -1, drop_byte = -1, dup_byte = -1;
    int packed = 0;
    const char *mode = NULL;
    long mode_n = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? strtol(argv[++i], NULL, 0) : (die("missing value"), 0))
        if (!strcmp(a, "--bos")) enc_flags |= TOK_ENC_BOS;
        else if (!strcmp(a, "--special")) enc_flags |= TOK_ENC_SPECIAL;
        else if (!strcmp(a, "--no-prefix")) enc_flags |= TOK_ENC_NO_PREFIX;
        else if (!strcmp(a, "--strip")) dec_flags |= TOK_DEC_STRIP_SPACE;
        else if (!strcmp(a, "--dec-special")) dec_flags |= TOK_DEC_SPECIAL;
        else if (!strcmp(a, "--packed")) packed = 1;
        else if (!strcmp(a, "--cap")) cap = NEXT();
        else if (!strcmp(a, "--dec-cap")) dec_cap = NEXT();
        else if (!strcmp(a, "--scratch")) scratch_size = NEXT();
        else if (!strcmp(a, "--arena")) arena_size = NEXT();
        else if (!strcmp(a, "--break-byte")) break_byte = NEXT();
        else if (!strcmp(a, "--drop-byte")) drop_byte = NEXT();
        else if (!strcmp(a, "--dup-byte")) dup_byte = NEXT();
        else if (!mode) mode = a;
        else mode_n = strtol(a, NULL, 0);
#undef NEXT
    }
    if (!mode)
        die("no mode");

    struct vocab_file vf;
    memset(&vf, 0, sizeof vf);
    load_gguf(argv[1], &vf);
    uint32_t n = (uint32_t)vf.n_tokens;

    /* pieces as pointer+length (the default) */
    struct tok_str *pieces = calloc(n, sizeof *pieces);
    int32_t *types = calloc(n, sizeof *types);
    if (!pieces || !types)
        die("out of memory");
    {
        struct reader r = {vf.tokens, vf.tokens_size, 0};
        for (uint32_t id = 0; id < n; id++) {
            pieces[id].len = rd(&r, 8);
            pieces[id].ptr = (const char *)take(&r, pieces[id].len);
        }
    }
    if (vf.types)
        memcpy(types, vf.types, (size_t)n * 4);
    else
        for (uint32_t id = 0; id < n; id++)
            types[id] = TOK_TYPE_NORMAL;
    if (break_byte >= 0) {
        if (packed) {
            /* patch the text inside the GGUF string array itself */
            char *t = (char *)pieces[break_byte].ptr;
            if (pieces[break_byte].len >= 5) { t[3] = 'Z'; t[4] = 'Z'; }
        } else {
            pieces[break_byte].ptr = "<0xZZ>";
            pieces[break_byte].len = 6;
        }
    }
    if (drop_byte >= 0)
        types[drop_byte] = TOK_TYPE_NORMAL;
    if (dup_byte >= 0) {
        pieces[dup_byte].ptr = "<0x41>";
        pieces[dup_byte].len = 6;
    }

    struct tok_vocab_src src = {
        .n_vocab = n,
        .pieces = packed ? NULL : pieces,
        .gguf_strings = vf.tokens,
        .gguf_strings_size = vf.tokens_size,
        .scores_f32 = vf.scores,
        .types_i32 = types,
        .bos_id = vf.bos, .eos_id = vf.eos, .unk_id = vf.unk,
        .add_bos = true, .add_space_prefix = true,   /* the llama vocabulary's defaults */
    };
    size_t asz = arena_size >= 0 ? (size_t)arena_size : tok_init_bytes(n, n);
    struct tok_arena arena = {malloc(asz ? asz : 1), asz, 0};
    static struct tok_vocab v;
    int st = tok_init(&v, &src, &arena);
    if (st != TOK_OK) {
        printf("INIT_ERR %d %s\n", st, v.err);
        return 2;
    }

    if (!strcmp(mode, "info")) {
        printf("n_vocab=%u\nbos=%d\neos=%d\nunk=%d\nn_special=%u\n"
               "max_piece_len=%u\narena_used=%zu\ninit_bytes=%zu\n"
               "decoder_max_bytes=%zu\n",
               v.n_vocab, v.bos_id, v.eos_id, v.unk_id, v.n_special,
               v.max_piece_len, arena.used, tok_init_bytes(n, v.n_special),
               tok_decoder_max_bytes(&v));
        return 0;
    }

    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    size_t ocap = 1 << 16;
    int32_t *ids = malloc(ocap * sizeof *ids);
    char *dbuf = malloc(1 << 20);
    if (!ids || !dbuf)
        die("out of memory");

    if (!strcmp(mode, "encode") || !strcmp(mode, "roundtrip") ||
        !strcmp(mode, "bench")) {
        while ((got = getline(&line, &lcap, stdin)) >= 0) {
            if (got && line[got - 1] == '\n')
                got--;
            size_t len = unescape(line, (size_t)got);
            size_t ss = scratch_size >= 0 ? (size_t)scratch_size
                                          : tok_encode_scratch_bytes(len);
            struct tok_arena scratch = {malloc(ss ? ss : 1), ss, 0};
            size_t c = cap >= 0 ? (size_t)cap : ocap;
            unsigned fl = enc_flags | (!strcmp(mode, "roundtrip") ? TOK_ENC_BOS : 0);
            size_t nt = 0;
            if (!strcmp(mode, "bench")) {
                long reps = mode_n > 0 ? mode_n : 100;
                st = tok_encode(&v, line, len, fl, ids, c, &nt, &scratch);
                double t0 = now_ns();
                for (long k = 0; k < reps; k++)
                    st |= tok_encode(&v, line, len, fl, ids, c, &nt, &scratch);
                double t1 = now_ns();
                printf("bytes=%zu tokens=%zu status=%d ns_per_encode=%.0f\n",
                       len, nt, st, (t1 - t0) / reps);
                free(scratch.base);
                break;
            }
            st = tok_encode(&v, line, len, fl, ids, c, &nt, &scratch);
            if (scratch.used != 0)
                die("tok_encode did not give its scratch back");
            free(scratch.base);
            if (st != TOK_OK) {
                printf("ERR %d %zu\n", st, nt);
                continue;
            }
            if (!strcmp(mode, "encode")) {
                for (size_t k = 0; k < nt; k++)
                    printf(k ? " %d" : "%d", ids[k]);
                printf("\n");
                continue;
            }
            struct tok_decoder d;
            tok_decoder_init(&d, &v, dec_flags | TOK_DEC_STRIP_SPACE);
            size_t pos = 0, w;
            for (size_t k = 0; k < nt; k++) {
                if (tok_decoder_push(&d, ids[k], dbuf + pos,
                                     tok_decoder_max_bytes(&v), &w) != TOK_OK)
                    die("decode failed");
                pos += w;
            }
            tok_decoder_flush(&d, dbuf + pos, 3, &w);
            pos += w;
            put_hex(dbuf, pos);
            printf("\n");
        }
    } else if (!strcmp(mode, "decode")) {
        while ((got = getline(&line, &lcap, stdin)) >= 0) {
            struct tok_decoder d;
            tok_decoder_init(&d, &v, dec_flags);
            char *p = line, *end;
            int first = 1, failed = 0;
            size_t w;
            for (;;) {
                long id = strtol(p, &end, 10);
                if (end == p)
                    break;
                p = end;
                size_t c = dec_cap >= 0 ? (size_t)dec_cap
                                        : tok_decoder_need(&d, (int32_t)id);
                if (tok_decoder_need(&d, (int32_t)id) > tok_decoder_max_bytes(&v))
                    die("tok_decoder_need above tok_decoder_max_bytes");
                st = tok_decoder_push(&d, (int32_t)id, dbuf, c, &w);
                if (st != TOK_OK) {
                    printf("ERR %d\n", st);
                    failed = 1;
                    break;
                }
                if (!first)
                    printf(",");
                first = 0;
                put_hex(dbuf, w);
            }
            if (failed)
                continue;
            st = tok_decoder_flush(&d, dbuf, dec_cap >= 0 ? (size_t)dec_cap : 3, &w);
            if (st != TOK_OK) {
                printf(";ERR %d\n", st);
                continue;
            }
            printf(";");
            put_hex(dbuf, w);
            printf("\n");
        }
    } else {
        die("unknown mode");
    }
    return 0;
}
