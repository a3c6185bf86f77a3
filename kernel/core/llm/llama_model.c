/*
 * llama_model.c - Llama model validation on top of the GGUF parser
 * (see llama_model.h for the contract).
 *
 * Order of checks: names (architecture, tokenizer), hyper-parameters, the
 * vocabulary arrays, then tensors. Each group is one function; all errors
 * go through lfail() so every message starts with "llama: ".
 */
#include "llama_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LLAMA_MAX_CTX (1u << 24)
#define TOKEN_TYPE_BYTE 6   /* SentencePiece "byte" token: text "<0xHH>" */

struct loader {
    const struct gguf_file *f;
    struct llama_model *m;
    char *err;
    size_t err_size;
};

__attribute__((format(printf, 3, 4)))
static int lfail(struct loader *L, int code, const char *fmt, ...)
{
    if (L->err && L->err_size) {
        int n = snprintf(L->err, L->err_size, "llama: ");
        if (n >= 0 && (size_t)n < L->err_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(L->err + n, L->err_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* Message for a failed getter on key (rc: a gguf getter status). */
static int key_fail(struct loader *L, const char *key, int rc, const char *expected)
{
    if (rc == GGUF_E_NOT_FOUND)
        return lfail(L, LLAMA_E_KEY_MISSING, "key '%s' is missing", key);
    const struct gguf_kv *kv = gguf_find_key(L->f, key);
    if (rc == GGUF_E_TYPE)
        return lfail(L, LLAMA_E_KEY_TYPE, "key '%s' has type %s, expected %s", key,
                     gguf_value_type_name(kv->type), expected);
    return lfail(L, LLAMA_E_HPARAM, "key '%s': value does not fit %s", key, expected);
}

/* ---- names ----------------------------------------------------------------- */

/* String key that must read exactly "llama". */
static int expect_llama(struct loader *L, const char *key)
{
    struct gguf_str s;
    int rc = gguf_get_str(L->f, key, &s);
    if (rc)
        return key_fail(L, key, rc, "string");
    if (s.len != 5 || memcmp(s.ptr, "llama", 5) != 0) {
        char shown[72];
        return lfail(L, LLAMA_E_ARCH, "%s is '%s', expected 'llama'", key,
                     gguf_printable(shown, sizeof shown, s.ptr, s.len));
    }
    return LLAMA_OK;
}

/* ---- hyper-parameters ------------------------------------------------------ */

/* Integer key in [1, max]; if absent, *out = dflt, or an error when dflt
 * is 0 (required key). */
static int int_key(struct loader *L, const char *key, uint32_t dflt, uint32_t max, uint32_t *out)
{
    const struct gguf_kv *kv = gguf_find_key(L->f, key);
    if (!kv && dflt) {
        *out = dflt;
        return LLAMA_OK;
    }
    int64_t v;
    int rc = gguf_kv_i64(kv, &v);
    if (rc == GGUF_E_RANGE)
        return lfail(L, LLAMA_E_HPARAM, "key '%s': value is out of range (1..%u)", key, max);
    if (rc)
        return key_fail(L, key, rc, "an integer");
    if (v < 1 || v > (int64_t)max)
        return lfail(L, LLAMA_E_HPARAM, "key '%s': value %lld is out of range (1..%u)", key,
                     (long long)v, max);
    *out = (uint32_t)v;
    return LLAMA_OK;
}

/* Float key, positive and finite; absent: dflt, or an error if dflt is 0. */
static int float_key(struct loader *L, const char *key, float dflt, float *out)
{
    const struct gguf_kv *kv = gguf_find_key(L->f, key);
    if (!kv && dflt > 0) {
        *out = dflt;
        return LLAMA_OK;
    }
    float v;
    int rc = gguf_kv_f32(kv, &v);
    if (rc)
        return key_fail(L, key, rc, "f32");
    if (!(v > 0 && v <= 3.4e38f))  /* also rejects NaN and infinity */
        return lfail(L, LLAMA_E_HPARAM, "key '%s': value %g is not a positive finite number",
                     key, (double)v);
    *out = v;
    return LLAMA_OK;
}

/* RoPE scaling (llama.cpp's llama.rope.scaling.type "linear" / "yarn" with
 * .factor, or the older llama.rope.scale_linear) changes every position's
 * rotation; the engine rotates unscaled, so such a model would run with
 * wrong output.  Refuse it by name rather than run it wrong. */
static int check_rope_scaling(struct loader *L)
{
    struct gguf_str s;
    char shown[40];
    if (gguf_get_str(L->f, "llama.rope.scaling.type", &s) == 0 && !(s.len == 4 && memcmp(s.ptr, "none", 4) == 0))
        return lfail(L, LLAMA_E_HPARAM, "RoPE scaling '%s' (llama.rope.scaling.type) is not supported",
                     gguf_printable(shown, sizeof shown, s.ptr, s.len));
    static const char *const factors[] = { "llama.rope.scaling.factor", "llama.rope.scale_linear" };
    for (int i = 0; i < 2; i++) {
        float f;
        const struct gguf_kv *kv = gguf_find_key(L->f, factors[i]);
        if (kv && gguf_kv_f32(kv, &f) == 0 && f != 0.0f && f != 1.0f)
            return lfail(L, LLAMA_E_HPARAM, "RoPE scaling factor %g (%s) is not supported", (double)f, factors[i]);
    }
    return LLAMA_OK;
}

static int read_hparams(struct loader *L)
{
    struct llama_hparams *hp = &L->m->hp;
    int rc;
    if ((rc = int_key(L, "llama.context_length", 0, LLAMA_MAX_CTX, &hp->n_ctx_train)) ||
        (rc = int_key(L, "llama.embedding_length", 0, LLAMA_MAX_EMBD, &hp->n_embd)) ||
        (rc = int_key(L, "llama.block_count", 0, LLAMA_MAX_LAYERS, &hp->n_layer)) ||
        (rc = int_key(L, "llama.feed_forward_length", 0, LLAMA_MAX_FF, &hp->n_ff)) ||
        (rc = int_key(L, "llama.attention.head_count", 0, hp->n_embd, &hp->n_head)) ||
        (rc = int_key(L, "llama.attention.head_count_kv", hp->n_head, hp->n_head, &hp->n_head_kv)) ||
        (rc = float_key(L, "llama.attention.layer_norm_rms_epsilon", 0, &hp->rms_eps)) ||
        (rc = float_key(L, "llama.rope.freq_base", 10000.0f, &hp->rope_freq_base)))
        return rc;
    if (hp->n_embd % hp->n_head != 0)
        return lfail(L, LLAMA_E_HPARAM, "embedding length %u is not a multiple of the head count %u",
                     hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return lfail(L, LLAMA_E_HPARAM, "head count %u is not a multiple of the KV head count %u",
                     hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_embd_kv = hp->head_dim * hp->n_head_kv;
    if ((rc = int_key(L, "llama.rope.dimension_count", hp->head_dim, LLAMA_MAX_EMBD, &hp->rope_dim)))
        return rc;
    if (hp->rope_dim != hp->head_dim || hp->rope_dim % 2 != 0)
        return lfail(L, LLAMA_E_HPARAM, "rope dimension count %u must equal the head size %u and be even",
                     hp->rope_dim, hp->head_dim);
    return check_rope_scaling(L);
}

/* ---- vocabulary ------------------------------------------------------------ */

/* Array key whose elements have type et; count == want unless want is 0. */
static int array_key(struct loader *L, const char *key, uint32_t et, uint64_t want,
                     const struct gguf_kv **out)
{
    const struct gguf_kv *kv = gguf_find_key(L->f, key);
    if (!kv)
        return lfail(L, LLAMA_E_KEY_MISSING, "key '%s' is missing", key);
    if (kv->type != GGUF_TYPE_ARRAY)
        return lfail(L, LLAMA_E_KEY_TYPE, "key '%s' has type %s, expected an array of %s", key,
                     gguf_value_type_name(kv->type), gguf_value_type_name(et));
    if (kv->arr_type != et)
        return lfail(L, LLAMA_E_KEY_TYPE, "key '%s' is an array of %s, expected an array of %s",
                     key, gguf_value_type_name(kv->arr_type), gguf_value_type_name(et));
    if (want && kv->count != want)
        return lfail(L, LLAMA_E_VOCAB, "key '%s' has %llu elements, expected %llu (one per token)",
                     key, (unsigned long long)kv->count, (unsigned long long)want);
    *out = kv;
    return LLAMA_OK;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* Byte tokens stand for one raw byte; the tokenizer decodes their text. */
static bool is_byte_token_text(struct gguf_str s)
{
    return s.len == 6 && memcmp(s.ptr, "<0x", 3) == 0 && is_hex(s.ptr[3]) &&
           is_hex(s.ptr[4]) && s.ptr[5] == '>';
}

static int check_byte_tokens(struct loader *L)
{
    const struct llama_model *m = L->m;
    for (uint32_t i = 0; i < m->hp.n_vocab; i++) {
        int64_t type;
        struct gguf_str text;
        gguf_arr_int(m->token_type, i, &type);   /* i32, i < count: cannot fail */
        if (type != TOKEN_TYPE_BYTE)
            continue;
        gguf_arr_str(m->tokens, i, &text);
        if (!is_byte_token_text(text)) {
            char shown[72];
            return lfail(L, LLAMA_E_VOCAB, "token %u is a byte token (type 6) but its text '%s' is not <0xHH>",
                         i, gguf_printable(shown, sizeof shown, text.ptr, text.len));
        }
    }
    return LLAMA_OK;
}

/* Optional bool key (llama.cpp reads these with get_key(..., false)):
 * absent gives dflt; present must be a GGUF bool. */
static int bool_key(struct loader *L, const char *key, bool dflt, bool *out)
{
    int rc = gguf_get_bool(L->f, key, out);
    if (rc == GGUF_E_NOT_FOUND) {
        *out = dflt;
        return LLAMA_OK;
    }
    return rc ? key_fail(L, key, rc, "bool") : LLAMA_OK;
}

/* Optional special-token id key: absent gives dflt; present must be < n_vocab. */
static int token_id_key(struct loader *L, const char *key, uint32_t dflt, uint32_t *out)
{
    const struct gguf_kv *kv = gguf_find_key(L->f, key);
    if (!kv) {
        *out = dflt;
        return LLAMA_OK;
    }
    int64_t v;
    int rc = gguf_kv_i64(kv, &v);
    if (rc == GGUF_E_TYPE)
        return key_fail(L, key, rc, "an integer");
    if (rc || v < 0 || v >= (int64_t)L->m->hp.n_vocab)
        return lfail(L, LLAMA_E_VOCAB, "key '%s': token id %lld is out of range (vocab %u)", key,
                     rc ? -1LL : (long long)v, L->m->hp.n_vocab);
    *out = (uint32_t)v;
    return LLAMA_OK;
}

static int read_vocab(struct loader *L)
{
    struct llama_model *m = L->m;
    struct llama_hparams *hp = &m->hp;
    int rc;
    if ((rc = array_key(L, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, 0, &m->tokens)))
        return rc;
    if (m->tokens->count == 0 || m->tokens->count > LLAMA_MAX_VOCAB)
        return lfail(L, LLAMA_E_VOCAB, "key 'tokenizer.ggml.tokens': %llu tokens is out of range (1..%u)",
                     (unsigned long long)m->tokens->count, LLAMA_MAX_VOCAB);
    hp->n_vocab = (uint32_t)m->tokens->count;
    uint32_t declared;
    if (gguf_find_key(L->f, "llama.vocab_size")) {
        if ((rc = int_key(L, "llama.vocab_size", 0, LLAMA_MAX_VOCAB, &declared)))
            return rc;
        if (declared != hp->n_vocab)
            return lfail(L, LLAMA_E_VOCAB, "llama.vocab_size %u differs from the %u tokens",
                         declared, hp->n_vocab);
    }
    if ((rc = array_key(L, "tokenizer.ggml.scores", GGUF_TYPE_F32, hp->n_vocab, &m->scores)) ||
        (rc = array_key(L, "tokenizer.ggml.token_type", GGUF_TYPE_I32, hp->n_vocab, &m->token_type)) ||
        (rc = check_byte_tokens(L)) ||
        (rc = token_id_key(L, "tokenizer.ggml.bos_token_id", 1 % hp->n_vocab, &hp->bos_id)) ||
        (rc = token_id_key(L, "tokenizer.ggml.eos_token_id", 2 % hp->n_vocab, &hp->eos_id)) ||
        (rc = token_id_key(L, "tokenizer.ggml.unknown_token_id", 0, &hp->unk_id)) ||
        (rc = bool_key(L, "tokenizer.ggml.add_bos_token", true, &hp->add_bos)) ||
        (rc = bool_key(L, "tokenizer.ggml.add_space_prefix", true, &hp->add_space_prefix)))
        return rc;
    /* The chat template is optional, and only ever recognised (llm/chat.h),
     * never run: any string will do; another type is ignored as absent. */
    if (gguf_get_str(L->f, "tokenizer.chat_template", &m->chat_template) != 0)
        m->chat_template = (struct gguf_str){ 0, 0 };
    return LLAMA_OK;
}

/* ---- tensors --------------------------------------------------------------- */

/* The matrix types Fluid has kernels for (modules/mm_<type>.c; the
 * module table maps them in kernel/core/mod/optab.c). */
static const uint32_t k_matrix_types[] = {
    GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
    GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K,
    GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
};
#define N_MATRIX_TYPES (sizeof k_matrix_types / sizeof k_matrix_types[0])

bool llama_matrix_type_supported(uint32_t type)
{
    for (size_t i = 0; i < N_MATRIX_TYPES; i++)
        if (k_matrix_types[i] == type)
            return true;
    return false;
}

/* "F32, F16, ..." (the k_matrix_types names) into buf. */
static const char *matrix_type_list(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_MATRIX_TYPES && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "",
                                 ggml_type_name(k_matrix_types[i]));
    return buf;
}

/* "[256, 32000]" for a tensor's n_dims dimensions. */
static const char *shape_str(char *buf, size_t n, const struct gguf_tensor *t)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", d ? ", " : "",
                                 (unsigned long long)t->ne[d]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

static int check_shape(struct loader *L, const char *name, const struct gguf_tensor *t,
                       uint32_t n_dims, uint64_t ne0, uint64_t ne1)
{
    if (t->n_dims == n_dims && t->ne[0] == ne0 && t->ne[1] == ne1)
        return LLAMA_OK;
    char have[96], want[48];
    shape_str(have, sizeof have, t);
    if (n_dims == 1)
        snprintf(want, sizeof want, "[%llu]", (unsigned long long)ne0);
    else
        snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)ne0, (unsigned long long)ne1);
    return lfail(L, LLAMA_E_TENSOR_SHAPE, "tensor '%s': shape %s differs from the expected %s",
                 name, have, want);
}

static int check_type(struct loader *L, const char *name, const struct gguf_tensor *t, bool norm)
{
    if (norm && t->type != GGML_TYPE_F32)
        return lfail(L, LLAMA_E_TENSOR_TYPE, "tensor '%s': type %s is not supported for a norm (must be F32)",
                     name, ggml_type_name(t->type));
    if (!llama_matrix_type_supported(t->type)) {
        char list[128];
        return lfail(L, LLAMA_E_TENSOR_TYPE, "tensor '%s': type %s is not supported (supported: %s)",
                     name, ggml_type_name(t->type), matrix_type_list(list, sizeof list));
    }
    uint32_t blck;
    ggml_type_info(t->type, &blck, NULL);
    if (t->ne[0] % blck != 0)   /* gguf_parse already ensures this */
        return lfail(L, LLAMA_E_TENSOR_SHAPE, "tensor '%s': row length %llu is not a multiple of the %s block size %u",
                     name, (unsigned long long)t->ne[0], ggml_type_name(t->type), blck);
    return LLAMA_OK;
}

/* Find name, check shape ([ne0] if ne1 == 0, else [ne0, ne1]) and type,
 * fill *out. A missing optional tensor leaves *out zeroed. */
static int bind(struct loader *L, const char *name, uint64_t ne0, uint64_t ne1,
                bool optional, struct llama_tensor *out)
{
    const struct gguf_tensor *t = gguf_find_tensor(L->f, name);
    bool norm = ne1 == 0;
    int rc;
    memset(out, 0, sizeof *out);
    if (!t) {
        if (optional)
            return LLAMA_OK;
        return lfail(L, LLAMA_E_TENSOR_MISSING, "tensor '%s' is missing", name);
    }
    if ((rc = check_shape(L, name, t, norm ? 1 : 2, ne0, norm ? 1 : ne1)) ||
        (rc = check_type(L, name, t, norm)))
        return rc;
    if ((uintptr_t)t->data % LLAMA_DATA_ALIGN != 0)
        return lfail(L, LLAMA_E_TENSOR_ALIGN,
                     "tensor '%s': data at byte %llu of the file is not aligned to %u bytes (general.alignment %u)",
                     name, (unsigned long long)((const uint8_t *)t->data - L->f->data), LLAMA_DATA_ALIGN,
                     L->f->alignment);
    out->data = t->data;
    out->type = (int)t->type;
    out->ne0 = t->ne[0];
    out->ne1 = t->ne[1];
    out->row_bytes = (size_t)ggml_row_bytes(t->type, t->ne[0]);
    return LLAMA_OK;
}

static int bind_layer(struct loader *L, uint32_t il, struct llama_layer *ly)
{
    const struct llama_hparams *hp = &L->m->hp;
    const struct {
        const char *suffix;
        uint64_t ne0, ne1;          /* ne1 == 0: norm vector [ne0] */
        struct llama_tensor *out;
    } want[] = {
        {"attn_norm", hp->n_embd, 0, &ly->attn_norm},
        {"attn_q", hp->n_embd, hp->n_embd, &ly->attn_q},
        {"attn_k", hp->n_embd, hp->n_embd_kv, &ly->attn_k},
        {"attn_v", hp->n_embd, hp->n_embd_kv, &ly->attn_v},
        {"attn_output", hp->n_embd, hp->n_embd, &ly->attn_output},
        {"ffn_norm", hp->n_embd, 0, &ly->ffn_norm},
        {"ffn_gate", hp->n_embd, hp->n_ff, &ly->ffn_gate},
        {"ffn_up", hp->n_embd, hp->n_ff, &ly->ffn_up},
        {"ffn_down", hp->n_ff, hp->n_embd, &ly->ffn_down},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%u.%s.weight", il, want[i].suffix);
        int rc = bind(L, name, want[i].ne0, want[i].ne1, false, want[i].out);
        if (rc)
            return rc;
    }
    return LLAMA_OK;
}

static int bind_weights(struct loader *L, struct gguf_arena *arena)
{
    const struct llama_hparams *hp = &L->m->hp;
    struct llama_weights *w = &L->m->w;
    int rc;
    if ((rc = bind(L, "token_embd.weight", hp->n_embd, hp->n_vocab, false, &w->token_embd)) ||
        (rc = bind(L, "output_norm.weight", hp->n_embd, 0, false, &w->output_norm)) ||
        (rc = bind(L, "output.weight", hp->n_embd, hp->n_vocab, true, &w->output)))
        return rc;
    w->output_tied = w->output.data == NULL;
    if (w->output_tied)
        w->output = w->token_embd;
    w->layers = gguf_arena_alloc(arena, (uint64_t)hp->n_layer * sizeof *w->layers, 8);
    if (!w->layers)
        return lfail(L, LLAMA_E_NOMEM, "arena too small for %u layers (%llu bytes)", hp->n_layer,
                     (unsigned long long)((uint64_t)hp->n_layer * sizeof *w->layers));
    w->n_layer = hp->n_layer;
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if ((rc = bind_layer(L, il, &w->layers[il])))
            return rc;
    return LLAMA_OK;
}

/* ---- entry point ----------------------------------------------------------- */

int llama_model_load(const struct gguf_file *f, struct gguf_arena *arena,
                     struct llama_model *m, char *err, size_t err_size)
{
    struct loader L = {.f = f, .m = m, .err = err, .err_size = err_size};
    if (err && err_size)
        err[0] = '\0';
    if (!f || !arena || !m)
        return lfail(&L, LLAMA_E_ARG, "bad argument (NULL file, arena or model)");
    memset(m, 0, sizeof *m);
    m->file = f;
    size_t mark = arena->used;
    int rc;
    if ((rc = expect_llama(&L, "general.architecture")) ||
        (rc = expect_llama(&L, "tokenizer.ggml.model")) ||
        (rc = read_hparams(&L)) || (rc = read_vocab(&L)) ||
        (rc = bind_weights(&L, arena))) {
        arena->used = mark;
        memset(m, 0, sizeof *m);
        return rc;
    }
    return LLAMA_OK;
}

/* ---- sizes and summary ----------------------------------------------------- */

uint64_t llama_tensor_bytes(const struct llama_tensor *t)
{
    return t->data ? (uint64_t)t->row_bytes * t->ne1 : 0;
}

/* Call fn on every distinct weight view (a tied output is skipped). */
static void visit(const struct llama_weights *w,
                  void (*fn)(const struct llama_tensor *, void *), void *ctx)
{
    fn(&w->token_embd, ctx);
    fn(&w->output_norm, ctx);
    if (!w->output_tied)
        fn(&w->output, ctx);
    for (uint32_t il = 0; il < w->n_layer; il++) {
        const struct llama_layer *ly = &w->layers[il];
        const struct llama_tensor *all[] = {
            &ly->attn_norm, &ly->attn_q, &ly->attn_k, &ly->attn_v, &ly->attn_output,
            &ly->ffn_norm, &ly->ffn_gate, &ly->ffn_up, &ly->ffn_down,
        };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            fn(all[i], ctx);
    }
}

struct tally {
    uint64_t bytes;
    uint32_t n;
    uint32_t per_type[GGML_TYPE_COUNT];
};

static void count_one(const struct llama_tensor *t, void *ctx)
{
    struct tally *s = ctx;
    if (!t->data)
        return;
    s->bytes += llama_tensor_bytes(t);
    s->n++;
    if (t->type >= 0 && t->type < GGML_TYPE_COUNT)
        s->per_type[t->type]++;
}

uint64_t llama_weights_bytes(const struct llama_weights *w)
{
    struct tally s = {0};
    visit(w, count_one, &s);
    return s.bytes;
}

int llama_weights_summary(const struct llama_weights *w, char *buf, size_t buf_size)
{
    struct tally s = {0};
    char scratch[1];
    visit(w, count_one, &s);
    if (!buf || !buf_size) {   /* measure only */
        buf = scratch;
        buf_size = sizeof scratch;
    }
    /* keep counting the needed length even once buf is full */
    size_t used = 0, need = 0;
#define EMIT(...) do { \
        int n_ = snprintf(buf + used, buf_size - used, __VA_ARGS__); \
        if (n_ > 0) { need += (size_t)n_; used = need < buf_size ? need : buf_size - 1; } \
    } while (0)
    EMIT("%u tensors:", s.n);
    const char *sep = " ";
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
        if (!s.per_type[t])
            continue;
        EMIT("%s%u %s", sep, s.per_type[t], ggml_type_name(t));
        sep = ", ";
    }
    /* integer arithmetic: no floating-point formatting needed */
    bool mib = s.bytes >= 1024 * 1024;
    uint64_t tenths = s.bytes * 10 / (mib ? 1024 * 1024 : 1024);
    EMIT("; %llu.%llu %s", (unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10),
         mib ? "MiB" : "KiB");
#undef EMIT
    return (int)need;
}
