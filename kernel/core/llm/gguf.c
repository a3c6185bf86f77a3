/*
 * gguf.c - bounds-checked GGUF v3 parser (see gguf.h for the contract).
 *
 * Shape of the code: a cursor over the file with checked reads; a parser
 * context that knows what is being read (for error messages); one function
 * per file section; then whole-file checks (data section placement,
 * tensor bounds, overlaps) and the name hash indexes.
 *
 * Every arithmetic on values from the file is done so that it cannot wrap:
 * comparisons are written as "n > size - pos" rather than "pos + n > size".
 */
#include "gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- type tables ------------------------------------------------------ */

struct ggml_type_desc {
    const char *name;     /* NULL: id not valid */
    uint16_t blck;        /* elements per block */
    uint16_t bytes;       /* bytes per block */
};

/* Block layouts as defined by ggml (ggml-common.h). */
static const struct ggml_type_desc ggml_types[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32]     = {"F32", 1, 4},
    [GGML_TYPE_F16]     = {"F16", 1, 2},
    [GGML_TYPE_Q4_0]    = {"Q4_0", 32, 18},
    [GGML_TYPE_Q4_1]    = {"Q4_1", 32, 20},
    [GGML_TYPE_Q5_0]    = {"Q5_0", 32, 22},
    [GGML_TYPE_Q5_1]    = {"Q5_1", 32, 24},
    [GGML_TYPE_Q8_0]    = {"Q8_0", 32, 34},
    [GGML_TYPE_Q8_1]    = {"Q8_1", 32, 36},
    [GGML_TYPE_Q2_K]    = {"Q2_K", 256, 84},
    [GGML_TYPE_Q3_K]    = {"Q3_K", 256, 110},
    [GGML_TYPE_Q4_K]    = {"Q4_K", 256, 144},
    [GGML_TYPE_Q5_K]    = {"Q5_K", 256, 176},
    [GGML_TYPE_Q6_K]    = {"Q6_K", 256, 210},
    [GGML_TYPE_Q8_K]    = {"Q8_K", 256, 292},
    [GGML_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [GGML_TYPE_IQ2_XS]  = {"IQ2_XS", 256, 74},
    [GGML_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [GGML_TYPE_IQ1_S]   = {"IQ1_S", 256, 50},
    [GGML_TYPE_IQ4_NL]  = {"IQ4_NL", 32, 18},
    [GGML_TYPE_IQ3_S]   = {"IQ3_S", 256, 110},
    [GGML_TYPE_IQ2_S]   = {"IQ2_S", 256, 82},
    [GGML_TYPE_IQ4_XS]  = {"IQ4_XS", 256, 136},
    [GGML_TYPE_I8]      = {"I8", 1, 1},
    [GGML_TYPE_I16]     = {"I16", 1, 2},
    [GGML_TYPE_I32]     = {"I32", 1, 4},
    [GGML_TYPE_I64]     = {"I64", 1, 8},
    [GGML_TYPE_F64]     = {"F64", 1, 8},
    [GGML_TYPE_IQ1_M]   = {"IQ1_M", 256, 56},
    [GGML_TYPE_BF16]    = {"BF16", 1, 2},
    [GGML_TYPE_TQ1_0]   = {"TQ1_0", 256, 54},
    [GGML_TYPE_TQ2_0]   = {"TQ2_0", 256, 66},
    [GGML_TYPE_MXFP4]   = {"MXFP4", 32, 17},
};

/* Bytes of one scalar value; 0 for STRING/ARRAY (variable size). */
static const uint8_t value_size[GGUF_TYPE_COUNT] = {
    1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8
};

static const char *const value_names[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
    "array", "u64", "i64", "f64"
};

static const char *const status_names[GGUF_STATUS_COUNT] = {
    "ok", "bad argument", "truncated", "bad magic", "unsupported version",
    "limit exceeded", "bad value type", "duplicate name", "bad alignment",
    "bad shape", "unknown tensor type", "tensor out of bounds",
    "tensors overlap", "arena too small", "not found", "wrong type",
    "out of range"
};

bool ggml_type_info(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes)
{
    if (type >= GGML_TYPE_COUNT || !ggml_types[type].name)
        return false;
    if (block_elems)
        *block_elems = ggml_types[type].blck;
    if (block_bytes)
        *block_bytes = ggml_types[type].bytes;
    return true;
}

uint64_t ggml_row_bytes(uint32_t type, uint64_t ne0)
{
    uint32_t blck, bytes;
    if (!ggml_type_info(type, &blck, &bytes) || ne0 % blck != 0)
        return 0;
    uint64_t blocks = ne0 / blck;
    if (blocks > UINT64_MAX / bytes)
        return 0;
    return blocks * bytes;
}

const char *ggml_type_name(uint32_t type)
{
    return ggml_type_info(type, NULL, NULL) ? ggml_types[type].name : "?";
}

const char *gguf_value_type_name(uint32_t type)
{
    return type < GGUF_TYPE_COUNT ? value_names[type] : "?";
}

const char *gguf_status_name(int status)
{
    return status >= 0 && status < GGUF_STATUS_COUNT ? status_names[status] : "?";
}

const char *gguf_printable(char *dst, size_t dst_size, const char *s, uint64_t len)
{
    enum { SHOW_MAX = 64 };  /* messages stay one readable line */
    if (dst_size == 0)
        return dst;
    size_t keep = dst_size - 1;
    bool cut = false;
    if (keep > SHOW_MAX)
        keep = SHOW_MAX;
    if (len > keep) {
        cut = keep >= 3;
        if (cut)
            keep -= 3;
    } else {
        keep = (size_t)len;
    }
    size_t i;
    for (i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (cut) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
    return dst;
}

/* ---- arena ---------------------------------------------------------------- */

static bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

void *gguf_arena_alloc(struct gguf_arena *a, uint64_t n, uint64_t align)
{
    uintptr_t base = (uintptr_t)a->base;
    uint64_t start = a->used;
    if (start > a->size || !is_pow2(align) || align > 4096)
        return NULL;
    /* align the absolute address, not just the offset */
    uint64_t mis = (base + start) & (align - 1);
    if (mis) {
        if (align - mis > a->size - start)
            return NULL;
        start += align - mis;
    }
    if (start > a->size || n > a->size - start)
        return NULL;
    a->used = (size_t)(start + n);
    return a->base + start;
}

/* ---- little-endian loads (file values may be unaligned) ------------------ */

static uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t load_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* *r = a * b; false on 64-bit overflow */
static bool mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    if (a != 0 && b > UINT64_MAX / a)
        return false;
    *r = a * b;
    return true;
}

/* ---- parser context and error reporting ----------------------------------- */

struct parser {
    const uint8_t *buf;
    uint64_t size;
    uint64_t pos;            /* cursor: next byte to read */
    struct gguf_file *f;
    struct gguf_arena *arena;
    char *err;
    size_t err_size;
    char where[112];         /* what is being parsed: "key 'x'", "tensor #3" */
};

__attribute__((format(printf, 3, 4)))
static int fail(struct parser *ps, int code, const char *fmt, ...)
{
    if (ps->err && ps->err_size) {
        int n = snprintf(ps->err, ps->err_size, "gguf: %s: ", ps->where);
        if (n >= 0 && (size_t)n < ps->err_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->err_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* Set the "where" part of messages to e.g. "key 'general.name'". */
static void set_where_name(struct parser *ps, const char *kind, struct gguf_str name)
{
    char shown[72];
    gguf_printable(shown, sizeof shown, name.ptr, name.len);
    snprintf(ps->where, sizeof ps->where, "%s '%s'", kind, shown);
}

static void set_where_index(struct parser *ps, const char *kind, uint64_t i)
{
    snprintf(ps->where, sizeof ps->where, "%s #%llu", kind, (unsigned long long)i);
}

static int fail_past_end(struct parser *ps, const char *what, uint64_t end)
{
    return fail(ps, GGUF_E_TRUNCATED,
                "%s runs past the end of the file (at byte %llu of %llu)",
                what, (unsigned long long)end, (unsigned long long)ps->size);
}

static int fail_nomem(struct parser *ps, const char *what, uint64_t bytes)
{
    return fail(ps, GGUF_E_NOMEM,
                "arena too small for %s (%llu bytes needed, %llu of %llu free)",
                what, (unsigned long long)bytes,
                (unsigned long long)(ps->arena->size - ps->arena->used),
                (unsigned long long)ps->arena->size);
}

/* ---- cursor reads --------------------------------------------------------- */

static uint64_t remaining(const struct parser *ps) { return ps->size - ps->pos; }

/* Make sure n more bytes exist; what names the field for the message. */
static int need(struct parser *ps, uint64_t n, const char *what)
{
    if (n > remaining(ps))
        return fail_past_end(ps, what, sat_add(ps->pos, n));
    return GGUF_OK;
}

static int read_u32(struct parser *ps, const char *what, uint32_t *out)
{
    int rc = need(ps, 4, what);
    if (rc)
        return rc;
    *out = load_u32(ps->buf + ps->pos);
    ps->pos += 4;
    return GGUF_OK;
}

static int read_u64(struct parser *ps, const char *what, uint64_t *out)
{
    int rc = need(ps, 8, what);
    if (rc)
        return rc;
    *out = load_u64(ps->buf + ps->pos);
    ps->pos += 8;
    return GGUF_OK;
}

/* A u64 length + bytes string, length at most GGUF_MAX_STRING. */
static int read_str(struct parser *ps, const char *what, struct gguf_str *out)
{
    uint64_t len;
    int rc = read_u64(ps, what, &len);
    if (rc)
        return rc;
    if (len > GGUF_MAX_STRING)
        return fail(ps, GGUF_E_LIMIT, "%s length %llu exceeds the limit of %llu bytes",
                    what, (unsigned long long)len, (unsigned long long)GGUF_MAX_STRING);
    if ((rc = need(ps, len, what)))
        return rc;
    out->ptr = (const char *)ps->buf + ps->pos;
    out->len = len;
    ps->pos += len;
    return GGUF_OK;
}

static bool str_eq(struct gguf_str s, const char *c, size_t clen)
{
    return s.len == clen && memcmp(s.ptr, c, clen) == 0;
}

/* Before sizing a table for count items of at least min_size bytes each
 * (count * min_size cannot wrap: counts are limited first). */
static int check_room(struct parser *ps, uint64_t count, uint64_t min_size, const char *items)
{
    uint64_t least = count * min_size;
    if (least > remaining(ps))
        return fail(ps, GGUF_E_TRUNCATED,
                    "%llu %s need at least %llu bytes: runs past the end of the file "
                    "(at byte %llu of %llu)", (unsigned long long)count, items,
                    (unsigned long long)least, (unsigned long long)(ps->pos + least),
                    (unsigned long long)ps->size);
    return GGUF_OK;
}

/* ---- header ---------------------------------------------------------------- */

static int parse_header(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    int rc;
    snprintf(ps->where, sizeof ps->where, "header");
    if ((rc = need(ps, 4, "magic")))
        return rc;
    if (memcmp(ps->buf, "GGUF", 4) != 0) {
        const uint8_t *m = ps->buf;
        return fail(ps, GGUF_E_MAGIC, "bad magic %02x %02x %02x %02x, expected 'GGUF'",
                    m[0], m[1], m[2], m[3]);
    }
    ps->pos = 4;
    if ((rc = read_u32(ps, "version", &f->version)))
        return rc;
    if (f->version != GGUF_VERSION) {
        /* a byte-swapped 3 means a big-endian file */
        const char *hint = f->version == 0x03000000u ? "; big-endian files are not supported" : "";
        return fail(ps, GGUF_E_VERSION, "unsupported version %u (only version 3 is supported%s)",
                    f->version, hint);
    }
    if ((rc = read_u64(ps, "tensor count", &f->n_tensors)) ||
        (rc = read_u64(ps, "key/value count", &f->n_kv)))
        return rc;
    if (f->n_tensors > GGUF_MAX_TENSORS)
        return fail(ps, GGUF_E_LIMIT, "tensor count %llu exceeds the limit of %llu",
                    (unsigned long long)f->n_tensors, (unsigned long long)GGUF_MAX_TENSORS);
    if (f->n_kv > GGUF_MAX_KV)
        return fail(ps, GGUF_E_LIMIT, "key/value count %llu exceeds the limit of %llu",
                    (unsigned long long)f->n_kv, (unsigned long long)GGUF_MAX_KV);
    /* A key needs >= 13 bytes (name length, type, 1-byte value): reject
     * counts the file cannot hold before sizing the table for them, so the
     * arena is never asked for absurd amounts. */
    return check_room(ps, f->n_kv, 13, "keys");
}

/* ---- key/value section ---------------------------------------------------- */

/* Bool bytes must be 0 or 1. */
static int check_bools(struct parser *ps, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return fail(ps, GGUF_E_VALUE_TYPE, "bool value %u (element %llu) is not 0 or 1",
                        p[i], (unsigned long long)i);
    return GGUF_OK;
}

static int fail_array_past_end(struct parser *ps, uint64_t count, uint32_t et, uint64_t end)
{
    return fail(ps, GGUF_E_TRUNCATED,
                "array of %llu %s%s runs past the end of the file (at byte %llu of %llu)",
                (unsigned long long)count, value_names[et], count == 1 ? "" : "s",
                (unsigned long long)end, (unsigned long long)ps->size);
}

/* Elements of a string array: walk them all (each must fit the file) and
 * record where each starts, so element i is found in O(1) later. */
static int parse_string_array(struct parser *ps, struct gguf_kv *kv)
{
    uint64_t n = kv->count;
    /* every element has at least its 8-byte length */
    if (n * 8 > remaining(ps))  /* n <= 2^24: no wrap */
        return fail_array_past_end(ps, n, GGUF_TYPE_STRING, ps->pos + n * 8);
    uint64_t *off = gguf_arena_alloc(ps->arena, n * 8, 8);
    if (!off)
        return fail_nomem(ps, "string array offsets", n * 8);
    kv->str_off = off;
    const uint64_t start = ps->pos;
    for (uint64_t i = 0; i < n; i++) {
        off[i] = ps->pos - start;
        if (8 > remaining(ps))
            return fail_array_past_end(ps, n, GGUF_TYPE_STRING, ps->pos + 8);
        uint64_t len = load_u64(ps->buf + ps->pos);
        ps->pos += 8;
        if (len > remaining(ps))
            return fail_array_past_end(ps, n, GGUF_TYPE_STRING, sat_add(ps->pos, len));
        ps->pos += len;
    }
    return GGUF_OK;
}

static int parse_array(struct parser *ps, struct gguf_kv *kv)
{
    int rc;
    if ((rc = read_u32(ps, "array element type", &kv->arr_type)) ||
        (rc = read_u64(ps, "array count", &kv->count)))
        return rc;
    uint32_t et = kv->arr_type;
    if (et == GGUF_TYPE_ARRAY)
        return fail(ps, GGUF_E_VALUE_TYPE, "arrays of arrays are not supported");
    if (et >= GGUF_TYPE_COUNT)
        return fail(ps, GGUF_E_VALUE_TYPE, "unknown array element type %u", et);
    if (kv->count > GGUF_MAX_ARRAY)
        return fail(ps, GGUF_E_LIMIT, "array count %llu exceeds the limit of %llu",
                    (unsigned long long)kv->count, (unsigned long long)GGUF_MAX_ARRAY);
    kv->value = ps->buf + ps->pos;
    if (et == GGUF_TYPE_STRING)
        return parse_string_array(ps, kv);
    uint64_t bytes = kv->count * value_size[et];  /* <= 2^27: no wrap */
    if (bytes > remaining(ps))
        return fail_array_past_end(ps, kv->count, et, ps->pos + bytes);
    ps->pos += bytes;
    return et == GGUF_TYPE_BOOL ? check_bools(ps, kv->value, kv->count) : GGUF_OK;
}

static int parse_value(struct parser *ps, struct gguf_kv *kv)
{
    uint32_t t = kv->type;
    if (t >= GGUF_TYPE_COUNT)
        return fail(ps, GGUF_E_VALUE_TYPE, "unknown value type %u", t);
    if (t == GGUF_TYPE_ARRAY)
        return parse_array(ps, kv);
    if (t == GGUF_TYPE_STRING) {
        struct gguf_str s;
        int rc = read_str(ps, "string", &s);
        if (rc)
            return rc;
        kv->value = (const uint8_t *)s.ptr;
        kv->count = s.len;
        return GGUF_OK;
    }
    int rc = need(ps, value_size[t], "value");
    if (rc)
        return rc;
    kv->value = ps->buf + ps->pos;
    kv->count = 1;
    ps->pos += value_size[t];
    return t == GGUF_TYPE_BOOL ? check_bools(ps, kv->value, 1) : GGUF_OK;
}

/* general.alignment sets the tensor offset granularity: any integer type
 * is accepted as long as the value is a power of two that fits in u32. */
static int take_alignment(struct parser *ps, const struct gguf_kv *kv)
{
    uint64_t v;
    int rc = gguf_kv_u64(kv, &v);
    if (rc == GGUF_E_TYPE)
        return fail(ps, GGUF_E_ALIGNMENT, "has type %s, expected an unsigned integer",
                    gguf_value_type_name(kv->type));
    if (rc == GGUF_E_RANGE) {
        int64_t s = 0;
        gguf_kv_i64(kv, &s);
        return fail(ps, GGUF_E_ALIGNMENT, "%lld is not a power of two", (long long)s);
    }
    if (!is_pow2(v))
        return fail(ps, GGUF_E_ALIGNMENT, "%llu is not a power of two", (unsigned long long)v);
    if (v > UINT32_MAX)
        return fail(ps, GGUF_E_ALIGNMENT, "%llu is too large", (unsigned long long)v);
    ps->f->alignment = (uint32_t)v;
    return GGUF_OK;
}

static int parse_kvs(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    f->kv = gguf_arena_alloc(ps->arena, f->n_kv * sizeof *f->kv, 8);
    if (!f->kv)
        return fail_nomem(ps, "key/value records", f->n_kv * sizeof *f->kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kv[i];
        int rc;
        memset(kv, 0, sizeof *kv);
        set_where_index(ps, "key", i);
        if ((rc = read_str(ps, "name", &kv->key)))
            return rc;
        set_where_name(ps, "key", kv->key);
        if ((rc = read_u32(ps, "value type", &kv->type)) || (rc = parse_value(ps, kv)))
            return rc;
        if (str_eq(kv->key, "general.alignment", 17) && (rc = take_alignment(ps, kv)))
            return rc;
    }
    return GGUF_OK;
}

/* ---- tensor records --------------------------------------------------------- */

/* Dimensions: each >= 1, representable as int64 (ggml's type), and their
 * product too; also fixes n_elements. */
static int check_dims(struct parser *ps, struct gguf_tensor *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0)
            return fail(ps, GGUF_E_SHAPE, "ne[%u] is 0 (every dimension must be at least 1)", d);
        if (t->ne[d] > (uint64_t)INT64_MAX)
            return fail(ps, GGUF_E_SHAPE, "ne[%u] = %llu is too large", d,
                        (unsigned long long)t->ne[d]);
        if (!mul_ok(n, t->ne[d], &n) || n > (uint64_t)INT64_MAX)
            return fail(ps, GGUF_E_SHAPE,
                        "number of elements overflows 64 bits (ne = [%llu, %llu, %llu, %llu])",
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                        (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
    }
    t->n_elements = n;
    return GGUF_OK;
}

/* Type id known, rows whole blocks, byte count representable. */
static int check_type_and_size(struct parser *ps, struct gguf_tensor *t)
{
    uint32_t blck, bytes;
    if (!ggml_type_info(t->type, &blck, &bytes))
        return fail(ps, GGUF_E_TENSOR_TYPE, "unknown ggml type %u", t->type);
    if (t->ne[0] % blck != 0)
        return fail(ps, GGUF_E_SHAPE, "row length %llu is not a multiple of the block size %u of type %s",
                    (unsigned long long)t->ne[0], blck, ggml_type_name(t->type));
    uint64_t rows = t->n_elements / t->ne[0];
    uint64_t row_bytes = ggml_row_bytes(t->type, t->ne[0]);
    if (row_bytes == 0 || !mul_ok(row_bytes, rows, &t->n_bytes))
        return fail(ps, GGUF_E_SHAPE, "byte size overflows 64 bits");
    return GGUF_OK;
}

static int parse_tensor_record(struct parser *ps, struct gguf_tensor *t)
{
    int rc;
    if ((rc = read_str(ps, "name", &t->name)))
        return rc;
    set_where_name(ps, "tensor", t->name);
    if ((rc = read_u32(ps, "n_dims", &t->n_dims)))
        return rc;
    if (t->n_dims > GGUF_MAX_DIMS)
        return fail(ps, GGUF_E_SHAPE, "n_dims %u is more than %u", t->n_dims, GGUF_MAX_DIMS);
    if ((rc = need(ps, 8ull * t->n_dims, "dimension list")))
        return rc;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < t->n_dims ? load_u64(ps->buf + ps->pos + 8ull * d) : 1;
    ps->pos += 8ull * t->n_dims;
    if ((rc = check_dims(ps, t)) || (rc = read_u32(ps, "type", &t->type)) ||
        (rc = check_type_and_size(ps, t)) || (rc = read_u64(ps, "offset", &t->offset)))
        return rc;
    if (t->offset % ps->f->alignment != 0)
        return fail(ps, GGUF_E_ALIGNMENT, "offset %llu is not aligned to %u",
                    (unsigned long long)t->offset, ps->f->alignment);
    return GGUF_OK;
}

static int parse_tensor_records(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    snprintf(ps->where, sizeof ps->where, "tensor records");
    int rc = check_room(ps, f->n_tensors, 24, "tensors");  /* name len, n_dims, type, offset */
    if (rc)
        return rc;
    f->tensors = gguf_arena_alloc(ps->arena, f->n_tensors * sizeof *f->tensors, 8);
    if (!f->tensors)
        return fail_nomem(ps, "tensor records", f->n_tensors * sizeof *f->tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        memset(&f->tensors[i], 0, sizeof f->tensors[i]);
        set_where_index(ps, "tensor", i);
        if ((rc = parse_tensor_record(ps, &f->tensors[i])))
            return rc;
    }
    return GGUF_OK;
}

/* ---- data section and whole-file tensor checks --------------------------- */

static int place_data_section(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    uint64_t a = f->alignment;
    uint64_t pad = (a - ps->pos % a) % a;
    snprintf(ps->where, sizeof ps->where, "data section");
    if (pad > remaining(ps)) {
        if (f->n_tensors > 0)
            return fail_past_end(ps, "alignment padding", sat_add(ps->pos, pad));
        pad = remaining(ps);  /* no tensors: a missing pad is harmless */
    }
    f->data_offset = ps->pos + pad;
    f->data_size = ps->size - f->data_offset;
    return GGUF_OK;
}

static int check_bounds(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        if (t->offset > f->data_size || t->n_bytes > f->data_size - t->offset) {
            set_where_name(ps, "tensor", t->name);
            return fail(ps, GGUF_E_BOUNDS,
                        "data (offset %llu, %llu bytes) runs past the end of the data section "
                        "(%llu bytes)", (unsigned long long)t->offset,
                        (unsigned long long)t->n_bytes, (unsigned long long)f->data_size);
        }
        t->data = ps->buf + f->data_offset + t->offset;
    }
    return GGUF_OK;
}

/* Order of the heap sort: by data offset, then by record index, so that
 * messages about overlaps are deterministic. */
static bool before(const struct gguf_tensor *t, uint32_t a, uint32_t b)
{
    return t[a].offset < t[b].offset || (t[a].offset == t[b].offset && a < b);
}

/* Heap sort of tensor indices by data offset (no libc qsort: freestanding,
 * and O(n log n) for up to 2^16 tensors). */
static void sift_down(uint32_t *ix, const struct gguf_tensor *t, uint64_t root, uint64_t n)
{
    for (;;) {
        uint64_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && before(t, ix[child], ix[child + 1]))
            child++;
        if (!before(t, ix[root], ix[child]))
            return;
        uint32_t tmp = ix[root];
        ix[root] = ix[child];
        ix[child] = tmp;
        root = child;
    }
}

static void sort_by_offset(uint32_t *ix, const struct gguf_tensor *t, uint64_t n)
{
    for (uint64_t i = n / 2; i-- > 0;)
        sift_down(ix, t, i, n);
    for (uint64_t end = n; end-- > 1;) {
        uint32_t tmp = ix[0];
        ix[0] = ix[end];
        ix[end] = tmp;
        sift_down(ix, t, 0, end);
    }
}

static int check_overlaps(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    if (f->n_tensors < 2)
        return GGUF_OK;
    size_t mark = ps->arena->used;   /* scratch: released below */
    uint32_t *ix = gguf_arena_alloc(ps->arena, f->n_tensors * 4, 4);
    if (!ix)
        return fail_nomem(ps, "tensor sort scratch", f->n_tensors * 4);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        ix[i] = (uint32_t)i;
    sort_by_offset(ix, f->tensors, f->n_tensors);
    int rc = GGUF_OK;
    for (uint64_t i = 1; i < f->n_tensors && !rc; i++) {
        const struct gguf_tensor *a = &f->tensors[ix[i - 1]], *b = &f->tensors[ix[i]];
        if (a->offset + a->n_bytes > b->offset) {  /* both inside data: no wrap */
            char bname[72];
            set_where_name(ps, "tensor", a->name);
            rc = fail(ps, GGUF_E_OVERLAP, "data (offset %llu, %llu bytes) overlaps tensor '%s' (offset %llu)",
                      (unsigned long long)a->offset, (unsigned long long)a->n_bytes,
                      gguf_printable(bname, sizeof bname, b->name.ptr, b->name.len),
                      (unsigned long long)b->offset);
        }
    }
    ps->arena->used = mark;
    return rc;
}

/* ---- name hash indexes ------------------------------------------------------ */

/* Items (kv records or tensor records) start with their struct gguf_str
 * name, so one index implementation serves both. */
static const struct gguf_str *item_name(const void *items, size_t stride, uint64_t i)
{
    return (const struct gguf_str *)((const uint8_t *)items + i * stride);
}

static uint64_t hash_name(const char *s, uint64_t len)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (uint64_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Index of the item named (s, len), or -1. */
static int64_t index_lookup(const struct gguf_index *ix, const void *items, size_t stride,
                            const char *s, uint64_t len)
{
    if (!ix->slots)
        return -1;
    for (uint64_t h = hash_name(s, len) & ix->mask;; h = (h + 1) & ix->mask) {
        uint32_t slot = ix->slots[h];
        if (slot == 0)
            return -1;
        const struct gguf_str *n = item_name(items, stride, slot - 1);
        if (n->len == len && memcmp(n->ptr, s, len) == 0)
            return slot - 1;
    }
}

/* Build the index (load <= 1/2); kind is "key"/"tensor" for the message
 * about duplicates. */
static int build_index(struct parser *ps, struct gguf_index *ix, const void *items,
                       size_t stride, uint64_t n, const char *kind)
{
    uint64_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    ix->slots = gguf_arena_alloc(ps->arena, slots * 4, 4);
    if (!ix->slots)
        return fail_nomem(ps, "name index", slots * 4);
    memset(ix->slots, 0, slots * 4);
    ix->mask = slots - 1;
    for (uint64_t i = 0; i < n; i++) {
        const struct gguf_str *name = item_name(items, stride, i);
        uint64_t h = hash_name(name->ptr, name->len) & ix->mask;
        while (ix->slots[h] != 0) {
            const struct gguf_str *other = item_name(items, stride, ix->slots[h] - 1);
            if (other->len == name->len && memcmp(other->ptr, name->ptr, name->len) == 0) {
                set_where_name(ps, kind, *name);
                return fail(ps, GGUF_E_DUPLICATE, "duplicate %s name (also %s #%llu)", kind,
                            kind, (unsigned long long)(ix->slots[h] - 1));
            }
            h = (h + 1) & ix->mask;
        }
        ix->slots[h] = (uint32_t)(i + 1);
    }
    return GGUF_OK;
}

/* ---- entry point ----------------------------------------------------------- */

static int parse_all(struct parser *ps)
{
    struct gguf_file *f = ps->f;
    int rc;
    if ((rc = parse_header(ps)) || (rc = parse_kvs(ps)) ||
        (rc = build_index(ps, &f->kv_index, f->kv, sizeof *f->kv, f->n_kv, "key")) ||
        (rc = parse_tensor_records(ps)) ||
        (rc = build_index(ps, &f->tensor_index, f->tensors, sizeof *f->tensors,
                          f->n_tensors, "tensor")) ||
        (rc = place_data_section(ps)) || (rc = check_bounds(ps)) ||
        (rc = check_overlaps(ps)))
        return rc;
    return GGUF_OK;
}

int gguf_parse(struct gguf_file *f, const void *data, uint64_t size,
               struct gguf_arena *arena, char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = '\0';
    if (!f || !arena || (!data && size)) {
        if (err && err_size)
            snprintf(err, err_size, "gguf: bad argument (NULL file, data or arena)");
        return GGUF_E_ARG;
    }
    memset(f, 0, sizeof *f);
    f->data = data;
    f->size = size;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    struct parser ps = {
        .buf = data, .size = size, .pos = 0, .f = f, .arena = arena,
        .err = err, .err_size = err_size,
    };
    size_t mark = arena->used;
    int rc = parse_all(&ps);
    if (rc) {
        arena->used = mark;
        memset(f, 0, sizeof *f);
    }
    return rc;
}

/* ---- lookups and getters ------------------------------------------------- */

const struct gguf_kv *gguf_find_key(const struct gguf_file *f, const char *key)
{
    int64_t i = index_lookup(&f->kv_index, f->kv, sizeof *f->kv, key, strlen(key));
    return i < 0 ? NULL : &f->kv[i];
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    int64_t i = index_lookup(&f->tensor_index, f->tensors, sizeof *f->tensors, name, strlen(name));
    return i < 0 ? NULL : &f->tensors[i];
}

/* An integer of type t at p as sign + magnitude: *neg set when the value is
 * negative, then *mag holds it as int64 bits. False if t is not integer. */
static bool load_int(uint32_t t, const uint8_t *p, bool *neg, uint64_t *mag)
{
    int64_t s;
    switch (t) {
    case GGUF_TYPE_U8:  *neg = false; *mag = p[0]; return true;
    case GGUF_TYPE_U16: *neg = false; *mag = load_u16(p); return true;
    case GGUF_TYPE_U32: *neg = false; *mag = load_u32(p); return true;
    case GGUF_TYPE_U64: *neg = false; *mag = load_u64(p); return true;
    case GGUF_TYPE_I8:  s = (int8_t)p[0]; break;
    case GGUF_TYPE_I16: s = (int16_t)load_u16(p); break;
    case GGUF_TYPE_I32: s = (int32_t)load_u32(p); break;
    case GGUF_TYPE_I64: s = (int64_t)load_u64(p); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = (uint64_t)s;
    return true;
}

/* Integer as int64; GGUF_E_RANGE for u64 above INT64_MAX. */
static int int_at(uint32_t t, const uint8_t *p, int64_t *out)
{
    bool neg;
    uint64_t v;
    if (!load_int(t, p, &neg, &v))
        return GGUF_E_TYPE;
    if (!neg && v > (uint64_t)INT64_MAX)
        return GGUF_E_RANGE;
    *out = (int64_t)v;
    return GGUF_OK;
}

static int float_at(uint32_t t, const uint8_t *p, float *out)
{
    if (t == GGUF_TYPE_F32) {
        memcpy(out, p, 4);
        return GGUF_OK;
    }
    if (t == GGUF_TYPE_F64) {
        double d;
        memcpy(&d, p, 8);
        *out = (float)d;
        return GGUF_OK;
    }
    return GGUF_E_TYPE;
}

int gguf_kv_i64(const struct gguf_kv *kv, int64_t *out)
{
    if (!kv)
        return GGUF_E_NOT_FOUND;
    return int_at(kv->type, kv->value, out);
}

int gguf_kv_u64(const struct gguf_kv *kv, uint64_t *out)
{
    bool neg;
    uint64_t v;
    if (!kv)
        return GGUF_E_NOT_FOUND;
    if (!load_int(kv->type, kv->value, &neg, &v))
        return GGUF_E_TYPE;
    if (neg)
        return GGUF_E_RANGE;
    *out = v;
    return GGUF_OK;
}

int gguf_kv_u32(const struct gguf_kv *kv, uint32_t *out)
{
    uint64_t v;
    int rc = gguf_kv_u64(kv, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return GGUF_E_RANGE;
    *out = (uint32_t)v;
    return GGUF_OK;
}

int gguf_kv_f32(const struct gguf_kv *kv, float *out)
{
    if (!kv)
        return GGUF_E_NOT_FOUND;
    return float_at(kv->type, kv->value, out);
}

int gguf_kv_str(const struct gguf_kv *kv, struct gguf_str *out)
{
    if (!kv)
        return GGUF_E_NOT_FOUND;
    if (kv->type != GGUF_TYPE_STRING)
        return GGUF_E_TYPE;
    out->ptr = (const char *)kv->value;
    out->len = kv->count;
    return GGUF_OK;
}

int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
    return gguf_kv_u32(gguf_find_key(f, key), out);
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out)
{
    return gguf_kv_u64(gguf_find_key(f, key), out);
}

int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out)
{
    return gguf_kv_i64(gguf_find_key(f, key), out);
}

int gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *out)
{
    int64_t v;
    int rc = gguf_get_i64(f, key, &v);
    if (rc)
        return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return GGUF_E_RANGE;
    *out = (int32_t)v;
    return GGUF_OK;
}

int gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
    return gguf_kv_f32(gguf_find_key(f, key), out);
}

int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out)
{
    const struct gguf_kv *kv = gguf_find_key(f, key);
    if (!kv)
        return GGUF_E_NOT_FOUND;
    if (kv->type != GGUF_TYPE_BOOL)
        return GGUF_E_TYPE;
    *out = kv->value[0] != 0;
    return GGUF_OK;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out)
{
    return gguf_kv_str(gguf_find_key(f, key), out);
}

int gguf_get_arr(const struct gguf_file *f, const char *key, uint32_t *elem_type,
                 uint64_t *count, const void **elems)
{
    const struct gguf_kv *kv = gguf_find_key(f, key);
    if (!kv)
        return GGUF_E_NOT_FOUND;
    if (kv->type != GGUF_TYPE_ARRAY)
        return GGUF_E_TYPE;
    *elem_type = kv->arr_type;
    *count = kv->count;
    *elems = kv->value;
    return GGUF_OK;
}

/* Common checks of the element accessors. */
static int arr_check(const struct gguf_kv *kv, uint64_t i)
{
    if (!kv)
        return GGUF_E_NOT_FOUND;
    if (kv->type != GGUF_TYPE_ARRAY)
        return GGUF_E_TYPE;
    return i < kv->count ? GGUF_OK : GGUF_E_RANGE;
}

int gguf_arr_str(const struct gguf_kv *kv, uint64_t i, struct gguf_str *out)
{
    int rc = arr_check(kv, i);
    if (rc)
        return rc;
    if (kv->arr_type != GGUF_TYPE_STRING)
        return GGUF_E_TYPE;
    const uint8_t *p = kv->value + kv->str_off[i];
    out->len = load_u64(p);
    out->ptr = (const char *)p + 8;
    return GGUF_OK;
}

int gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out)
{
    int rc = arr_check(kv, i);
    if (rc)
        return rc;
    if (kv->arr_type != GGUF_TYPE_F32 && kv->arr_type != GGUF_TYPE_F64)
        return GGUF_E_TYPE;
    return float_at(kv->arr_type, kv->value + i * value_size[kv->arr_type], out);
}

int gguf_arr_int(const struct gguf_kv *kv, uint64_t i, int64_t *out)
{
    int rc = arr_check(kv, i);
    if (rc)
        return rc;
    if (kv->arr_type >= GGUF_TYPE_COUNT || value_size[kv->arr_type] == 0)
        return GGUF_E_TYPE;
    return int_at(kv->arr_type, kv->value + i * value_size[kv->arr_type], out);
}
