/*
 * tokenizer.c - SentencePiece-BPE tokenizer and streaming detokenizer.
 * See tokenizer.h for the contract; the algorithm is llama.cpp's
 * llm_tokenizer_spm (llama-vocab.cpp), itself SentencePiece's BPE encoder.
 */
#include "tokenizer.h"

#include <string.h>

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
static const char SPACE_MARK[3] = {(char)0xE2, (char)0x96, (char)0x81};
/* U+2585 LOWER FIVE EIGHTHS BLOCK: llama.cpp prints it for UNKNOWN. */
static const char UNKNOWN_MARK[3] = {(char)0xE2, (char)0x96, (char)0x85};

#define MAX_PIECE_LEN 65536u

/* ---------------------------------------------------------------- memory */

static void *arena_take(struct tok_arena *a, size_t n, size_t align)
{
    uintptr_t at = (uintptr_t)a->base + a->used;
    size_t pad = (size_t)(-at & (uintptr_t)(align - 1));
    if (a->used > a->size || pad > a->size - a->used ||
        n > a->size - a->used - pad)
        return NULL;
    void *p = a->base + a->used + pad;
    a->used += pad + n;
    return p;
}

static uint32_t load_u32le(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static uint64_t load_u64le(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)load_u32le(b) | (uint64_t)load_u32le(b + 4) << 32;
}

/* ------------------------------------------------------ error messages */

struct msg {
    char *buf;
    size_t cap, len;
};

static void msg_str(struct msg *m, const char *s)
{
    while (*s && m->len + 1 < m->cap)
        m->buf[m->len++] = *s++;
    m->buf[m->len] = 0;
}

static void msg_uint(struct msg *m, uint64_t x)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    char s[24];
    for (int i = 0; i < n; i++)
        s[i] = tmp[n - 1 - i];
    s[n] = 0;
    msg_str(m, s);
}

static void msg_hex2(struct msg *m, unsigned x)
{
    static const char hex[] = "0123456789ABCDEF";
    char s[3] = {hex[(x >> 4) & 15], hex[x & 15], 0};
    msg_str(m, s);
}

static int fail(struct tok_vocab *v, int status, const char *a, uint64_t num,
                const char *b)
{
    struct msg m = {v->err, sizeof v->err, 0};
    msg_str(&m, "tokenizer: ");
    msg_str(&m, a);
    if (b) {
        msg_uint(&m, num);
        msg_str(&m, b);
    }
    return status;
}

const char *tok_strerror(int status)
{
    switch (status) {
    case TOK_OK: return "ok";
    case TOK_ERR_ARG: return "invalid argument";
    case TOK_ERR_NOMEM: return "out of tokenizer memory";
    case TOK_ERR_VOCAB: return "malformed vocabulary";
    case TOK_ERR_NOSPACE: return "output does not fit";
    case TOK_ERR_TOKEN: return "token id out of range";
    default: return "unknown tokenizer error";
    }
}

/* ------------------------------------------------------------- hashing */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

static uint32_t slot_count(uint32_t n_vocab)
{
    uint32_t c = 1024;
    while (c < 2 * n_vocab)
        c <<= 1;
    return c;
}

int32_t tok_lookup(const struct tok_vocab *v, const char *text, size_t len)
{
    uint32_t i = hash_bytes(text, len) & v->slot_mask;
    for (;;) {
        int32_t id = v->slots[i];
        if (id < 0)
            return -1;
        const struct tok_entry *t = &v->tok[id];
        if (t->len == len && memcmp(t->text, text, len) == 0)
            return id;
        i = (i + 1) & v->slot_mask;
    }
}

/* Insert id; a piece already present is remapped to id (last one wins, as
 * llama.cpp's token_to_id[text] = id). */
static void hash_insert(struct tok_vocab *v, int32_t id)
{
    const struct tok_entry *t = &v->tok[id];
    uint32_t i = hash_bytes(t->text, t->len) & v->slot_mask;
    for (;;) {
        int32_t cur = v->slots[i];
        if (cur < 0 || (v->tok[cur].len == t->len &&
                        memcmp(v->tok[cur].text, t->text, t->len) == 0)) {
            v->slots[i] = id;
            return;
        }
        i = (i + 1) & v->slot_mask;
    }
}

/* ---------------------------------------------------------------- init */

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t tok_init_bytes(uint32_t n_vocab, uint32_t n_special)
{
    return align8((size_t)n_vocab * sizeof(struct tok_entry)) + 8 +
           align8((size_t)slot_count(n_vocab) * sizeof(int32_t)) + 8 +
           align8((size_t)n_special * sizeof(int32_t)) + 8;
}

/* f32 bits -> unsigned key with the same order (-0 folded into +0). */
static uint32_t score_key(uint32_t bits)
{
    if (bits == 0x80000000u)
        bits = 0;
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static bool is_special_type(uint8_t type)
{
    return type == TOK_TYPE_CONTROL || type == TOK_TYPE_UNKNOWN ||
           type == TOK_TYPE_USER_DEFINED;
}

/* Longer text first, then lower id (llama.cpp sorts by length only). */
static bool special_before(const struct tok_vocab *v, int32_t a, int32_t b)
{
    if (v->tok[a].len != v->tok[b].len)
        return v->tok[a].len > v->tok[b].len;
    return a < b;
}

static void sort_specials(struct tok_vocab *v)
{
    uint32_t n = v->n_special;
    for (uint32_t gap = n / 2; gap > 0; gap /= 2) /* Shell sort */
        for (uint32_t i = gap; i < n; i++) {
            int32_t x = v->special[i];
            uint32_t j = i;
            for (; j >= gap && special_before(v, x, v->special[j - gap]);
                 j -= gap)
                v->special[j] = v->special[j - gap];
            v->special[j] = x;
        }
}

int tok_init(struct tok_vocab *v, const struct tok_vocab_src *src,
             struct tok_arena *arena)
{
    if (!v)
        return TOK_ERR_ARG;
    memset(v, 0, sizeof *v);
    if (!src || !arena)
        return fail(v, TOK_ERR_ARG, "NULL source or arena", 0, NULL);
    uint32_t n = src->n_vocab;
    if (n == 0 || n > TOK_MAX_VOCAB)
        return fail(v, TOK_ERR_ARG, "vocabulary size ", n,
                    " not in 1..1048576");
    if ((!src->pieces && !src->gguf_strings) || !src->scores_f32)
        return fail(v, TOK_ERR_ARG, "no piece texts or no scores", 0, NULL);
    int32_t ids[3] = {src->bos_id, src->eos_id, src->unk_id};
    for (int k = 0; k < 3; k++)
        if (ids[k] < -1 || ids[k] >= (int64_t)n)
            return fail(v, TOK_ERR_ARG, "bos/eos/unk id not in -1..n_vocab-1",
                        0, NULL);

    size_t mark = arena->used;
    uint32_t nslots = slot_count(n);
    v->tok = arena_take(arena, (size_t)n * sizeof *v->tok, 8);
    v->slots = arena_take(arena, (size_t)nslots * sizeof *v->slots, 8);
    if (!v->tok || !v->slots) {
        arena->used = mark;
        return fail(v, TOK_ERR_NOMEM, "arena too small: need ",
                    tok_init_bytes(n, n), " bytes");
    }
    v->n_vocab = n;
    v->bos_id = src->bos_id;
    v->eos_id = src->eos_id;
    v->unk_id = src->unk_id;
    v->add_bos = src->add_bos;
    v->add_space_prefix = src->add_space_prefix;
    v->slot_mask = nslots - 1;
    memset(v->slots, 0xff, (size_t)nslots * sizeof *v->slots);
    for (int b = 0; b < 256; b++)
        v->byte_id[b] = -1;

    const uint8_t *gs = src->gguf_strings;
    size_t gpos = 0;
    uint32_t n_special = 0;
    int status = TOK_OK;
    for (uint32_t id = 0; id < n; id++) {
        struct tok_entry *t = &v->tok[id];
        size_t len;
        if (src->pieces) {
            t->text = src->pieces[id].ptr;
            len = src->pieces[id].len;
        } else {
            if (src->gguf_strings_size - gpos < 8) {
                status = fail(v, TOK_ERR_VOCAB, "token strings end before id ",
                              id, "");
                goto out;
            }
            uint64_t l = load_u64le(gs + gpos);
            gpos += 8;
            if (l > src->gguf_strings_size - gpos) {
                status = fail(v, TOK_ERR_VOCAB, "token string of id ", id,
                              " runs past the array");
                goto out;
            }
            t->text = (const char *)gs + gpos;
            len = (size_t)l;
            gpos += len;
        }
        if (len > MAX_PIECE_LEN || (len && !t->text)) {
            status = fail(v, TOK_ERR_VOCAB, "piece of id ", id,
                          " is longer than 65536 bytes or NULL");
            goto out;
        }
        t->len = (uint32_t)len;
        if (t->len > v->max_piece_len)
            v->max_piece_len = t->len;
        t->score = score_key(load_u32le((const uint8_t *)src->scores_f32 +
                                        4 * (size_t)id));
        int32_t type = src->types_i32
            ? (int32_t)load_u32le((const uint8_t *)src->types_i32 + 4 * (size_t)id)
            : TOK_TYPE_NORMAL;
        t->type = (type >= 0 && type <= 255) ? (uint8_t)type : TOK_TYPE_UNDEFINED;
        if (is_special_type(t->type))
            n_special++;
        if (t->type == TOK_TYPE_BYTE) {
            int hi = len == 6 ? hex_digit(t->text[3]) : -1;
            int lo = len == 6 ? hex_digit(t->text[4]) : -1;
            if (len != 6 || memcmp(t->text, "<0x", 3) != 0 || t->text[5] != '>' ||
                hi < 0 || lo < 0) {
                status = fail(v, TOK_ERR_VOCAB, "byte token id ", id,
                              " has a text that is not <0xHH>");
                goto out;
            }
            int b = hi * 16 + lo;
            if (v->byte_id[b] >= 0) {
                struct msg m = {v->err, sizeof v->err, 0};
                msg_str(&m, "tokenizer: byte 0x");
                msg_hex2(&m, (unsigned)b);
                msg_str(&m, " has two byte tokens, ids ");
                msg_uint(&m, (uint64_t)v->byte_id[b]);
                msg_str(&m, " and ");
                msg_uint(&m, id);
                status = TOK_ERR_VOCAB;
                goto out;
            }
            v->byte_id[b] = (int32_t)id;
            t->byte = (uint8_t)b;
        }
        hash_insert(v, (int32_t)id);
    }
    for (int b = 0; b < 256; b++)
        if (v->byte_id[b] < 0) {
            struct msg m = {v->err, sizeof v->err, 0};
            msg_str(&m, "tokenizer: no byte token <0x");
            msg_hex2(&m, (unsigned)b);
            msg_str(&m, "> in the vocabulary");
            status = TOK_ERR_VOCAB;
            goto out;
        }

    v->special = arena_take(arena, (size_t)n_special * sizeof *v->special + 1, 8);
    if (!v->special) {
        status = fail(v, TOK_ERR_NOMEM, "arena too small: need ",
                      tok_init_bytes(n, n_special), " bytes");
        goto out;
    }
    for (uint32_t id = 0; id < n; id++)
        if (is_special_type(v->tok[id].type) && v->tok[id].len > 0) {
            v->special[v->n_special++] = (int32_t)id;
            if (v->tok[id].type == TOK_TYPE_USER_DEFINED)
                v->n_user_defined++;
        }
    sort_specials(v);
out:
    if (status != TOK_OK) {
        arena->used = mark;
        v->n_vocab = 0;
    }
    return status;
}

/* -------------------------------------------------------------- encode */

/* One symbol of the work list: bytes [off, off+n) of the escaped text;
 * n == 0 once merged into its left neighbour. */
struct sym {
    uint32_t off, n;
    int32_t prev, next;
};

/* A candidate merge of symbols left and right (adjacent when pushed);
 * size = their total length then, to detect stale entries. */
struct bigram {
    uint32_t score;
    int32_t left, right;
    uint32_t size;
};

struct heap {
    struct bigram *a;
    size_t n, cap;
};

/* Pop order: higher score first, then lower left index (llama.cpp's
 * llm_bigram_spm::comparator). */
static bool bigram_before(const struct bigram *x, const struct bigram *y)
{
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static void heap_push(struct heap *h, struct bigram b)
{
    if (h->n == h->cap) /* cannot happen: cap = 3 * symbols */
        return;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = b;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->a[0];
    struct bigram last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bigram_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!bigram_before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

/* Work memory of one tok_encode call. */
struct enc {
    const struct tok_vocab *v;
    char *buf;         /* escaped fragment */
    struct sym *sym;
    struct heap heap;
    int32_t *out;
    size_t cap, n;     /* n counts past cap on overflow */
};

static void emit(struct enc *e, int32_t id)
{
    if (e->n < e->cap)
        e->out[e->n] = id;
    e->n++;
}

/* Length of the valid UTF-8 sequence at s[0..rem), or 1 if s[0] does not
 * start one (stray continuation byte, overlong form, surrogate, > U+10FFFF,
 * or a sequence cut short). */
static uint32_t utf8_len(const uint8_t *s, size_t rem)
{
    uint8_t b = s[0];
    uint32_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b < 0x80)
        return 1;
    else if (b >= 0xC2 && b <= 0xDF)
        need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else
        return 1;
    if (rem < need || s[1] < lo || s[1] > hi)
        return 1;
    for (uint32_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 1;
    return need;
}

static void try_add_bigram(struct enc *e, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return;
    const struct sym *l = &e->sym[left], *r = &e->sym[right];
    int32_t id = tok_lookup(e->v, e->buf + l->off, (size_t)l->n + r->n);
    if (id < 0)
        return;
    struct bigram b = {e->v->tok[id].score, left, right, l->n + r->n};
    heap_push(&e->heap, b);
}

/* Tokenize one text fragment (llm_tokenizer_spm_session::tokenize). */
static void encode_fragment(struct enc *e, const char *text, size_t len,
                            bool prefix)
{
    size_t blen = 0;
    if (prefix) {
        memcpy(e->buf, SPACE_MARK, 3);
        blen = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e->buf + blen, SPACE_MARK, 3);
            blen += 3;
        } else
            e->buf[blen++] = text[i];
    }
    if (blen == 0)
        return;

    int32_t nsym = 0;
    for (size_t off = 0; off < blen;) {
        uint32_t n = utf8_len((const uint8_t *)e->buf + off, blen - off);
        struct sym *s = &e->sym[nsym];
        s->off = (uint32_t)off;
        s->n = n;
        s->prev = nsym - 1;
        off += n;
        s->next = off == blen ? -1 : nsym + 1;
        nsym++;
    }

    e->heap.n = 0;
    for (int32_t i = 1; i < nsym; i++)
        try_add_bigram(e, i - 1, i);
    while (e->heap.n) {
        struct bigram b = heap_pop(&e->heap);
        struct sym *l = &e->sym[b.left], *r = &e->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* stale: one side was merged since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            e->sym[r->next].prev = b.left;
        try_add_bigram(e, l->prev, b.left);
        try_add_bigram(e, b.left, l->next);
    }

    for (int32_t i = 0; i != -1; i = e->sym[i].next) {
        const struct sym *s = &e->sym[i];
        int32_t id = tok_lookup(e->v, e->buf + s->off, s->n);
        if (id >= 0) {
            emit(e, id);
            continue;
        }
        for (uint32_t k = 0; k < s->n; k++) /* byte fallback */
            emit(e, e->v->byte_id[(uint8_t)e->buf[s->off + k]]);
    }
}

/* A piece of the input: raw text (id < 0) or one special token. */
struct frag {
    uint32_t off, len;
    int32_t id;
};

static size_t frag_bytes(size_t len) { return (len ? len : 1) * sizeof(struct frag); }

size_t tok_encode_scratch_bytes(size_t len)
{
    size_t esc = 3 * (len + 1);
    return align8(esc) + 8 + align8((len + 1) * sizeof(struct sym)) + 8 +
           align8(3 * (len + 1) * sizeof(struct bigram)) + 8 +
           2 * (align8(frag_bytes(len)) + 8);
}

static size_t find(const char *hay, size_t n, const char *pat, size_t m)
{
    if (m > n)
        return (size_t)-1;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == pat[0] && memcmp(hay + i, pat, m) == 0)
            return i;
    return (size_t)-1;
}

/* Split the text at special tokens (llama.cpp tokenizer_st_partition):
 * for each special, longest first, cut its leftmost non-overlapping
 * occurrences out of the raw fragments.  Fragments are non-empty and
 * disjoint, so there are at most len of them. */
static size_t partition(const struct tok_vocab *v, const char *text,
                        size_t len, unsigned flags, struct frag *a,
                        struct frag *b, struct frag **result)
{
    size_t na = 0;
    if (len)
        a[na++] = (struct frag){0, (uint32_t)len, -1};
    for (uint32_t k = 0; k < v->n_special; k++) {
        int32_t sid = v->special[k];
        const struct tok_entry *s = &v->tok[sid];
        if (s->type != TOK_TYPE_USER_DEFINED && !(flags & TOK_ENC_SPECIAL))
            continue;
        size_t nb = 0;
        for (size_t i = 0; i < na; i++) {
            if (a[i].id >= 0) {
                b[nb++] = a[i];
                continue;
            }
            size_t pos = a[i].off, end = a[i].off + a[i].len;
            for (;;) {
                size_t m = find(text + pos, end - pos, s->text, s->len);
                if (m == (size_t)-1)
                    break;
                if (m)
                    b[nb++] = (struct frag){(uint32_t)pos, (uint32_t)m, -1};
                b[nb++] = (struct frag){(uint32_t)(pos + m), s->len, sid};
                pos += m + s->len;
            }
            if (pos < end)
                b[nb++] = (struct frag){(uint32_t)pos, (uint32_t)(end - pos), -1};
        }
        struct frag *t = a;
        a = b;
        b = t;
        na = nb;
    }
    *result = a;
    return na;
}

int tok_encode(const struct tok_vocab *v, const char *text, size_t len,
               unsigned flags, int32_t *out, size_t cap, size_t *n_out,
               struct tok_arena *scratch)
{
    if (!v || !v->n_vocab || (!text && len) || (!out && cap) || !n_out ||
        !scratch || len >= UINT32_MAX / 4)
        return TOK_ERR_ARG;
    *n_out = 0;
    bool bos = (flags & TOK_ENC_BOS) || ((flags & TOK_ENC_ADD_SPECIAL) && v->add_bos);
    bool prefix = v->add_space_prefix && !(flags & TOK_ENC_NO_PREFIX);
    if (bos && v->bos_id < 0)
        return TOK_ERR_ARG;

    size_t mark = scratch->used;
    struct enc e = {.v = v, .out = out, .cap = cap};
    e.buf = arena_take(scratch, 3 * (len + 1), 8);
    e.sym = arena_take(scratch, (len + 1) * sizeof *e.sym, 8);
    e.heap.cap = 3 * (len + 1);
    e.heap.a = arena_take(scratch, e.heap.cap * sizeof *e.heap.a, 8);
    struct frag *fa = arena_take(scratch, frag_bytes(len), 8);
    struct frag *fb = arena_take(scratch, frag_bytes(len), 8);
    if (!e.buf || !e.sym || !e.heap.a || !fa || !fb) {
        scratch->used = mark;
        return TOK_ERR_NOMEM;
    }

    if (bos)
        emit(&e, v->bos_id);
    struct frag *fr;
    size_t nfr = partition(v, text, len, flags, fa, fb, &fr);
    /* The first fragment gets the space too, unless it continues a text. */
    bool prev_special = !(flags & TOK_ENC_CONTINUE);
    for (size_t i = 0; i < nfr; i++) {
        if (fr[i].id >= 0) {
            emit(&e, fr[i].id);
            prev_special = true;
        } else {
            encode_fragment(&e, text + fr[i].off, fr[i].len, prev_special && prefix);
            prev_special = false;
        }
    }

    scratch->used = mark;
    *n_out = e.n;
    return e.n > cap ? TOK_ERR_NOSPACE : TOK_OK;
}

/* -------------------------------------------------------------- decode */

void tok_decoder_init(struct tok_decoder *d, const struct tok_vocab *v,
                      unsigned flags)
{
    memset(d, 0, sizeof *d);
    d->v = v;
    d->flags = flags;
    d->strip_pending = (flags & TOK_DEC_STRIP_SPACE) != 0;
}

/* The bytes token id prints before UTF-8 checking (NORMAL pieces still
 * carry U+2581 here). */
static struct tok_str token_bytes(const struct tok_decoder *d, int32_t id)
{
    const struct tok_entry *t = &d->v->tok[id];
    switch (t->type) {
    case TOK_TYPE_NORMAL:
    case TOK_TYPE_USER_DEFINED:
        return (struct tok_str){t->text, t->len};
    case TOK_TYPE_BYTE:
        return (struct tok_str){(const char *)&t->byte, 1};
    case TOK_TYPE_UNKNOWN:
        return (struct tok_str){UNKNOWN_MARK, 3};
    case TOK_TYPE_CONTROL:
        if (d->flags & TOK_DEC_SPECIAL)
            return (struct tok_str){t->text, t->len};
        return (struct tok_str){"", 0};
    default:
        return (struct tok_str){"", 0};
    }
}

size_t tok_decoder_need(const struct tok_decoder *d, int32_t id)
{
    if (id < 0 || (uint32_t)id >= d->v->n_vocab)
        return 0;
    /* each byte in gives at most 3 out (a U+FFFD), held-back ones too */
    return 3 * ((size_t)d->npend + token_bytes(d, id).len);
}

size_t tok_decoder_max_bytes(const struct tok_vocab *v)
{
    return 3 * ((size_t)v->max_piece_len + 3 + 3);
}

static size_t put_fffd(char *o)
{
    o[0] = (char)0xEF;
    o[1] = (char)0xBF;
    o[2] = (char)0xBD;
    return 3;
}

/* Feed one byte through the UTF-8 checker; returns bytes written to o. */
static size_t feed(struct tok_decoder *d, uint8_t b, char *o)
{
    size_t n = 0;
    if (d->npend) {
        uint8_t lo = 0x80, hi = 0xBF;
        if (d->npend == 1) {
            switch (d->pend[0]) {
            case 0xE0: lo = 0xA0; break;
            case 0xED: hi = 0x9F; break;
            case 0xF0: lo = 0x90; break;
            case 0xF4: hi = 0x8F; break;
            default: break;
            }
        }
        if (b >= lo && b <= hi) {
            d->pend[d->npend++] = b;
            if (d->npend < d->need)
                return 0;
            memcpy(o, d->pend, d->npend);
            n = d->npend;
            d->npend = 0;
            return n;
        }
        n = put_fffd(o); /* the held-back bytes were a maximal subpart */
        d->npend = 0;
    }
    if (b < 0x80) {
        o[n++] = (char)b;
        return n;
    }
    uint8_t need = b >= 0xC2 && b <= 0xDF ? 2
                 : b >= 0xE0 && b <= 0xEF ? 3
                 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (!need)
        return n + put_fffd(o + n);
    d->pend[0] = b;
    d->npend = 1;
    d->need = need;
    return n;
}

int tok_decoder_push(struct tok_decoder *d, int32_t id, char *out, size_t cap,
                     size_t *n_out)
{
    *n_out = 0;
    if (id < 0 || (uint32_t)id >= d->v->n_vocab)
        return TOK_ERR_TOKEN;
    if (cap < tok_decoder_need(d, id))
        return TOK_ERR_NOSPACE;
    struct tok_str s = token_bytes(d, id);
    if (s.len == 0)
        return TOK_OK;
    bool normal = d->v->tok[id].type == TOK_TYPE_NORMAL;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        uint8_t b = (uint8_t)s.ptr[i];
        if (normal && b == 0xE2 && s.len - i >= 3 &&
            memcmp(s.ptr + i, SPACE_MARK, 3) == 0) {
            b = ' ';
            i += 2;
        }
        if (d->strip_pending) {
            d->strip_pending = false;
            if (b == ' ')
                continue;
        }
        n += feed(d, b, out + n);
    }
    *n_out = n;
    return TOK_OK;
}

int tok_decoder_flush(struct tok_decoder *d, char *out, size_t cap,
                      size_t *n_out)
{
    *n_out = 0;
    if (!d->npend)
        return TOK_OK;
    if (cap < 3)
        return TOK_ERR_NOSPACE;
    d->npend = 0;
    *n_out = put_fffd(out);
    return TOK_OK;
}
