/*
 * gguf.h - bounds-checked parser for GGUF version 3 files held in memory.
 *
 * The whole file is in memory; the parser never copies tensor data or
 * strings, it only records pointers into the file. Tables (key/value
 * records, tensor records, per-string offsets of string arrays, name hash
 * indexes) come from a caller-provided arena: no malloc. Nothing in the
 * file is trusted: every count, length, type id, dimension, offset and size
 * is checked before it is used, and the first problem found stops the parse
 * with an error code and ONE human-readable message naming the key or
 * tensor, e.g.
 *   gguf: tensor 'blk.3.attn_q.weight': offset 123 is not aligned to 32
 *
 * Freestanding: needs only <stdint.h>, <stddef.h>, <stdbool.h>, <string.h>
 * and vsnprintf. Builds the same way for the host (tests, fuzzer).
 *
 * Units: sizes, offsets and lengths are in bytes; counts are elements.
 * File strings are NOT NUL-terminated: they are (pointer, length) pairs.
 * All multi-byte values in the file are little-endian and may be unaligned:
 * read numeric array elements with memcpy or the gguf_arr_* accessors.
 */
#ifndef FLUID_LLM_GGUF_H
#define FLUID_LLM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits enforced by the parser ---------------------------------- */
#define GGUF_VERSION            3u
#define GGUF_MAX_DIMS           4u
#define GGUF_DEFAULT_ALIGNMENT  32u
#define GGUF_MAX_KV             (1ull << 20) /* key/value pairs */
#define GGUF_MAX_TENSORS        (1ull << 16) /* tensor records */
#define GGUF_MAX_STRING         (1ull << 20) /* bytes: key names, tensor
                                                names, string values (not
                                                elements of string arrays,
                                                which only must fit the file) */
#define GGUF_MAX_ARRAY          (1ull << 24) /* elements of one array */

/* ---- GGUF value types (the u32 after a key) -------------------------- */
enum gguf_value_type {
    GGUF_TYPE_U8 = 0, GGUF_TYPE_I8 = 1, GGUF_TYPE_U16 = 2, GGUF_TYPE_I16 = 3,
    GGUF_TYPE_U32 = 4, GGUF_TYPE_I32 = 5, GGUF_TYPE_F32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_U64 = 10,
    GGUF_TYPE_I64 = 11, GGUF_TYPE_F64 = 12,
    GGUF_TYPE_COUNT = 13
};

/* ---- ggml tensor types (ids are fixed by the file format) ------------ */
#include "ggml_types.h"   /* modules/ggml_types.h: enum ggml_type */

/* ---- status codes ----------------------------------------------------- */
enum gguf_status {
    GGUF_OK = 0,
    GGUF_E_ARG,          /* NULL file/arena pointer passed to gguf_parse */
    GGUF_E_TRUNCATED,    /* a field, string, array or the data section
                            runs past the end of the file */
    GGUF_E_MAGIC,        /* the file does not start with "GGUF" */
    GGUF_E_VERSION,      /* version is not 3 (also: big-endian files) */
    GGUF_E_LIMIT,        /* a count or length exceeds a GGUF_MAX_* limit */
    GGUF_E_VALUE_TYPE,   /* unknown value type, array of arrays, or a bool
                            byte other than 0/1 */
    GGUF_E_DUPLICATE,    /* two keys or two tensors share a name */
    GGUF_E_ALIGNMENT,    /* general.alignment is not an integer power of
                            two, or a tensor offset is not aligned to it */
    GGUF_E_SHAPE,        /* n_dims > 4, a dimension is 0 or > INT64_MAX,
                            element/byte count overflows, or the row length
                            ne[0] is not a multiple of the type's block */
    GGUF_E_TENSOR_TYPE,  /* unknown ggml type id */
    GGUF_E_BOUNDS,       /* tensor data lies (partly) outside the data
                            section */
    GGUF_E_OVERLAP,      /* two tensors' data ranges overlap */
    GGUF_E_NOMEM,        /* the arena is too small */
    /* returned by the getters below (they write no message) */
    GGUF_E_NOT_FOUND,    /* no such key / tensor */
    GGUF_E_TYPE,         /* the value has another type than requested */
    GGUF_E_RANGE,        /* integer value does not fit the requested type,
                            or array index out of range */
    GGUF_STATUS_COUNT
};

/* ---- caller-provided memory ------------------------------------------ */
struct gguf_arena {
    uint8_t *base;  /* start of the memory */
    size_t size;    /* bytes available at base */
    size_t used;    /* bytes handed out so far (start with 0) */
};

/* Bump-allocate n bytes aligned to align (a power of two, <= 4096) from
 * the arena. Returns NULL if it does not fit or align is invalid (the arena
 * is then unchanged).
 * n == 0 returns a valid non-NULL pointer to zero bytes. */
void *gguf_arena_alloc(struct gguf_arena *a, uint64_t n, uint64_t align);

/* ---- parsed file -------------------------------------------------------- */
struct gguf_str {
    const char *ptr;  /* into the file; NOT NUL-terminated */
    uint64_t len;     /* bytes */
};

struct gguf_kv {
    struct gguf_str key;     /* must stay the first member (name index) */
    uint32_t type;           /* enum gguf_value_type */
    uint32_t arr_type;       /* ARRAY: element type (never ARRAY); else 0 */
    uint64_t count;          /* ARRAY: elements; STRING: bytes; scalar: 1 */
    const uint8_t *value;    /* scalar: its raw bytes; STRING: its bytes;
                                ARRAY: the first element */
    const uint64_t *str_off; /* ARRAY of STRING: str_off[i] = offset of
                                element i's u64 length field from value */
};

struct gguf_tensor {
    struct gguf_str name;    /* must stay the first member (name index) */
    uint32_t type;           /* enum ggml_type, always a known id */
    uint32_t n_dims;         /* 0..4 */
    uint64_t ne[GGUF_MAX_DIMS]; /* elements per dimension, ne[0] = row
                                   length; dims >= n_dims are 1 */
    uint64_t n_elements;     /* product of ne[], <= INT64_MAX */
    uint64_t offset;         /* bytes from the start of the data section,
                                a multiple of the file's alignment */
    uint64_t n_bytes;        /* bytes of data */
    const void *data;        /* first byte of data inside the file */
};

struct gguf_index {          /* private: open-addressing name hash */
    uint32_t *slots;         /* item index + 1, 0 = empty */
    uint64_t mask;           /* slot count - 1 */
};

struct gguf_file {
    const uint8_t *data;     /* the file */
    uint64_t size;           /* file bytes */
    uint32_t version;        /* always 3 after a successful parse */
    uint32_t alignment;      /* general.alignment or 32; a power of two */
    uint64_t n_kv;
    struct gguf_kv *kv;      /* n_kv records, in file order */
    uint64_t n_tensors;
    struct gguf_tensor *tensors; /* n_tensors records, in file order */
    uint64_t data_offset;    /* file offset of the data section */
    uint64_t data_size;      /* bytes from data_offset to the end of file */
    struct gguf_index kv_index, tensor_index;
};

/*
 * Parse and check the GGUF file data[0..size).
 *   f        receives the parsed file (pointers into data and the arena);
 *            zeroed on failure.
 *   data     the whole file; must stay valid and unchanged while f is used.
 *   size     file size in bytes.
 *   arena    memory for the tables. Needed: about 64 bytes per key, 96 per
 *            tensor, 8 per element of each string array and 8 per hash slot
 *            (2-4 slots per key and per tensor): 1 MiB is ample for
 *            TinyLlama (32000 tokens). On failure arena->used is restored.
 *   err      buffer for one NUL-terminated message (may be NULL if
 *            err_size is 0); truncated to err_size - 1 characters.
 * Returns GGUF_OK or one of the GGUF_E_* codes above (all except
 * NOT_FOUND/TYPE/RANGE). Checks, in file order: magic, version, limits on
 * counts, every key (value types, lengths/counts fit the file, bools are
 * 0/1, no arrays of arrays, general.alignment a power of two), no
 * duplicate keys, every tensor record (n_dims <= 4, dims >= 1, no 64-bit
 * overflow of element and byte counts, known type, row length a multiple of
 * the block size, offset aligned), no duplicate tensor names, the data
 * section start inside the file, every tensor inside the data section, and
 * no two tensors overlapping.
 */
int gguf_parse(struct gguf_file *f, const void *data, uint64_t size,
               struct gguf_arena *arena, char *err, size_t err_size);

/* ---- key lookup and typed getters ------------------------------------
 * All return GGUF_OK, GGUF_E_NOT_FOUND (no such key), GGUF_E_TYPE (value of
 * another type) or GGUF_E_RANGE (integer does not fit); *out is written only
 * on GGUF_OK. They write no message: callers name the key themselves.
 * Integer getters accept any integer value type (u8..i64, not bool) whose
 * value fits the requested type. */
const struct gguf_kv *gguf_find_key(const struct gguf_file *f, const char *key);
int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out);
int gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *out);
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out);
int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out);
/* accepts F32 and F64 values (F64 is rounded to float) */
int gguf_get_f32(const struct gguf_file *f, const char *key, float *out);
int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out);
/* string value: pointer into the file (not NUL-terminated) and its length */
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out);
/* Array: element type, element count and pointer to the raw elements (for
 * string arrays this points at element 0's length field: use gguf_arr_str). */
int gguf_get_arr(const struct gguf_file *f, const char *key, uint32_t *elem_type,
                 uint64_t *count, const void **elems);

/* Same checks on an already-found record (kv may be NULL: NOT_FOUND). */
int gguf_kv_u32(const struct gguf_kv *kv, uint32_t *out);
int gguf_kv_i64(const struct gguf_kv *kv, int64_t *out);
int gguf_kv_u64(const struct gguf_kv *kv, uint64_t *out);
int gguf_kv_f32(const struct gguf_kv *kv, float *out);
int gguf_kv_str(const struct gguf_kv *kv, struct gguf_str *out);

/* Element i of an array. gguf_arr_str: string arrays only. gguf_arr_f32:
 * F32 or F64 arrays. gguf_arr_int: any integer element type (value as
 * int64; u64 values above INT64_MAX give GGUF_E_RANGE).
 * Return GGUF_OK, GGUF_E_NOT_FOUND (kv NULL), GGUF_E_TYPE, GGUF_E_RANGE
 * (i >= count). */
int gguf_arr_str(const struct gguf_kv *kv, uint64_t i, struct gguf_str *out);
int gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out);
int gguf_arr_int(const struct gguf_kv *kv, uint64_t i, int64_t *out);

/* ---- tensors ------------------------------------------------------------ */
/* The tensor named name (a C string), or NULL. */
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* ---- type information --------------------------------------------------- */
/* True if id is a known ggml type; then *block_elems (weights per block)
 * and *block_bytes (bytes per block) are set (either may be NULL). */
bool ggml_type_info(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes);
/* Bytes of a row of ne0 elements, or 0 if the type is unknown or ne0 is not
 * a multiple of its block size (or the result would overflow). */
uint64_t ggml_row_bytes(uint32_t type, uint64_t ne0);
/* "Q4_K", ...; "?" for unknown ids. */
const char *ggml_type_name(uint32_t type);
/* "u32", "string", "array", ...; "?" for unknown ids. */
const char *gguf_value_type_name(uint32_t type);
/* "truncated", "bad magic", ... for a gguf_status. */
const char *gguf_status_name(int status);

/* Copy s[0..len) into dst (nothing if dst_size is 0) for a message: printable
 * ASCII kept, other bytes shown as '?', long strings cut with "...".
 * Returns dst. */
const char *gguf_printable(char *dst, size_t dst_size, const char *s, uint64_t len);

#endif
