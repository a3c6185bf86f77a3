/*
 * tokenizer.h - SentencePiece-BPE tokenizer and streaming detokenizer for
 * the `llama` vocabulary of a GGUF file (Llama 2 / TinyLlama).
 *
 * Behaviour follows llama.cpp's llm_tokenizer_spm (llama-vocab.cpp), which
 * reproduces SentencePiece's BPE encoder (bpe_model.cc) with byte fallback;
 * ../shared/REFERENCE.md "Tokenizer" has the rules.  Portable freestanding
 * C11: no malloc, no stdio, no floating point at encode time.  All memory
 * comes from a caller arena; the vocabulary strings stay where the caller
 * keeps them (normally inside the mapped GGUF file) and must outlive the
 * tokenizer.
 *
 * Lengths are in bytes, token ids are int32 in [0, n_vocab).
 */
#ifndef FLUID_LLM_TOKENIZER_H
#define FLUID_LLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes of every function here that returns int. */
enum tok_status {
    TOK_OK = 0,
    TOK_ERR_ARG = -1,      /* bad argument: NULL pointer, n_vocab 0 or
                              > TOK_MAX_VOCAB, special id out of range,
                              BOS asked for but the vocabulary has none */
    TOK_ERR_NOMEM = -2,    /* the arena is too small */
    TOK_ERR_VOCAB = -3,    /* malformed vocabulary (message in tok_vocab.err) */
    TOK_ERR_NOSPACE = -4,  /* the caller's output array or buffer is too small
                              (encode: the kernel reports "prompt too long") */
    TOK_ERR_TOKEN = -5,    /* decode: token id outside [0, n_vocab) */
};

/* Largest vocabulary accepted by tok_init (pieces, hash table <= 2^21 slots). */
#define TOK_MAX_VOCAB (1u << 20)

/* GGUF tokenizer.ggml.token_type values (llama.cpp llama_token_type). */
enum tok_type {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6,
};

/* Bump allocator over caller memory: [base, base+size), used bytes taken. */
struct tok_arena {
    uint8_t *base;
    size_t size;
    size_t used;
};

/* A string that is not NUL-terminated. */
struct tok_str {
    const char *ptr;
    size_t len; /* bytes */
};

/* Where tok_init reads the vocabulary from, as a GGUF file stores it. */
struct tok_vocab_src {
    uint32_t n_vocab;
    /* Piece text of each id: either pieces[id] (pointer+length), or, when
     * pieces is NULL, gguf_strings: the payload of the GGUF string array
     * tokenizer.ggml.tokens (per id a little-endian u64 length, then the
     * bytes), gguf_strings_size bytes long. */
    const struct tok_str *pieces;
    const void *gguf_strings;
    size_t gguf_strings_size;
    /* tokenizer.ggml.scores: n_vocab little-endian f32, any alignment. */
    const void *scores_f32;
    /* tokenizer.ggml.token_type: n_vocab little-endian i32, any alignment;
     * NULL means every token is NORMAL (then byte tokens are missing and
     * tok_init fails). */
    const void *types_i32;
    int32_t bos_id, eos_id, unk_id; /* -1 when absent */
    /* What the file asks of encoding, as llama.cpp's llama_vocab reads it:
     * GGUF tokenizer.ggml.add_bos_token (TOK_ENC_ADD_SPECIAL puts BOS first)
     * and tokenizer.ggml.add_space_prefix (a text starts with a space);
     * both default to true for the llama (SentencePiece) vocabulary. */
    bool add_bos, add_space_prefix;
};

/* Per-token data kept by the tokenizer (24 bytes). */
struct tok_entry {
    const char *text;  /* piece bytes, not NUL-terminated */
    uint32_t len;      /* bytes */
    uint32_t score;    /* f32 score mapped to an unsigned key that sorts the
                          same way (higher score = higher key) */
    uint8_t type;      /* enum tok_type (other values kept as is) */
    uint8_t byte;      /* value of a BYTE token <0xHH> */
};

struct tok_vocab {
    uint32_t n_vocab;
    int32_t bos_id, eos_id, unk_id;
    bool add_bos, add_space_prefix; /* from tok_vocab_src */
    struct tok_entry *tok;      /* [n_vocab] */
    int32_t *slots;             /* open-addressing hash piece -> id, -1 empty */
    uint32_t slot_mask;         /* slots has slot_mask+1 entries (power of 2) */
    int32_t byte_id[256];       /* byte value -> id of its <0xHH> token */
    int32_t *special;           /* CONTROL/UNKNOWN/USER_DEFINED ids, longest
                                   text first (llama.cpp cache_special_tokens) */
    uint32_t n_special;
    uint32_t n_user_defined;    /* how many of them are USER_DEFINED */
    uint32_t max_piece_len;     /* bytes */
    char err[96];               /* why tok_init failed, NUL-terminated */
};

/*
 * tok_init: build the tokenizer for src in v, taking memory from arena
 * (about 24 bytes per token plus a hash table of 4-byte slots at least
 * twice n_vocab: 1.0 MiB for 32000 tokens; tok_init_bytes gives the exact
 * figure).  Duplicate piece texts map to the highest id, as in llama.cpp.
 * Returns TOK_OK, or
 *   TOK_ERR_ARG   v/src/arena NULL, n_vocab 0 or > TOK_MAX_VOCAB, no piece
 *                 source or no scores, bos/eos/unk id not in [-1, n_vocab);
 *   TOK_ERR_NOMEM arena too small (arena->used unchanged);
 *   TOK_ERR_VOCAB a BYTE token whose text is not <0xHH>, two BYTE tokens for
 *                 one byte, a byte value without a BYTE token, a piece longer
 *                 than 64 KiB, or gguf_strings truncated.
 * On failure v->err holds a one-line message (also for TOK_ERR_ARG/NOMEM).
 */
int tok_init(struct tok_vocab *v, const struct tok_vocab_src *src,
             struct tok_arena *arena);

/* Arena bytes tok_init takes for n_vocab tokens of which n_special are
 * CONTROL/UNKNOWN/USER_DEFINED (pass n_vocab when unknown: an upper bound),
 * including alignment padding. */
size_t tok_init_bytes(uint32_t n_vocab, uint32_t n_special);

/* Id of the piece with exactly these bytes, or -1. */
int32_t tok_lookup(const struct tok_vocab *v, const char *text, size_t len);

/* Message for a tok_status value (static string). */
const char *tok_strerror(int status);

/* Flags of tok_encode. */
#define TOK_ENC_BOS       0x1u /* put bos_id first, whatever the vocabulary says */
#define TOK_ENC_SPECIAL   0x2u /* text like "</s>" matching a CONTROL or
                                  UNKNOWN piece becomes that token (llama.cpp
                                  parse_special); USER_DEFINED pieces are
                                  always matched, as in llama.cpp */
#define TOK_ENC_NO_PREFIX 0x4u /* never prepend the space (as a vocabulary
                                  with add_space_prefix false) */
#define TOK_ENC_ADD_SPECIAL 0x8u /* llama.cpp's llama_tokenize(add_special):
                                  bos_id first when the vocabulary's add_bos */
#define TOK_ENC_CONTINUE  0x10u /* the text continues a context that ends in
                                  text (a chat turn after a reply): its first
                                  fragment gets no space prefix; fragments
                                  after special tokens still do */

/*
 * tok_encode: tokenize len bytes of text (any bytes; need not be
 * NUL-terminated) into out[0..cap), the count in *n_out.
 * Algorithm (SentencePiece BPE as in llama.cpp llm_tokenizer_spm):
 *  - with TOK_ENC_SPECIAL, split the text at special-token texts (longest
 *    special first, leftmost non-overlapping matches) - those become their
 *    ids; the rest is handled as below, fragment by fragment;
 *  - a text fragment that is the first thing (unless TOK_ENC_CONTINUE) or
 *    follows a special token gets one space prepended when the vocabulary's
 *    add_space_prefix is set and TOK_ENC_NO_PREFIX is not; an empty text
 *    gives no tokens at all (so "" with TOK_ENC_BOS encodes to [BOS]);
 *  - every space becomes U+2581;
 *  - the fragment is split into UTF-8 characters; a byte that does not
 *    start a complete, valid UTF-8 sequence is a symbol of its own
 *    (llama.cpp instead trusts the lead byte's length; the two agree on
 *    valid UTF-8);
 *  - repeatedly merge the adjacent pair whose concatenation is a piece with
 *    the highest score, leftmost first on equal scores (binary heap of
 *    bigrams, stale entries skipped when popped: O(n log n));
 *  - a final symbol that is not a piece becomes its <0xHH> byte tokens.
 * scratch: memory for the work (tok_encode_scratch_bytes(len)); it is given
 * back before returning (scratch->used is restored).
 * Returns TOK_OK, or
 *   TOK_ERR_ARG     NULL v/n_out/scratch (text and out may be NULL only
 *                   when len and cap are 0), v not initialised, len >= 1 GiB,
 *                   or a BOS asked for (TOK_ENC_BOS, or TOK_ENC_ADD_SPECIAL
 *                   with add_bos) with bos_id == -1;
 *   TOK_ERR_NOMEM   scratch too small (nothing written);
 *   TOK_ERR_NOSPACE more than cap tokens: out[0..cap) holds the first cap
 *                   and *n_out the number the whole text needs.
 */
int tok_encode(const struct tok_vocab *v, const char *text, size_t len,
               unsigned flags, int32_t *out, size_t cap, size_t *n_out,
               struct tok_arena *scratch);

/* Scratch bytes tok_encode needs for a text of len bytes (upper bound). */
size_t tok_encode_scratch_bytes(size_t len);

/* Flags of the streaming decoder. */
#define TOK_DEC_STRIP_SPACE 0x1u /* drop one leading space from the first
                                    token that prints (llama.cpp's
                                    detokenize with the space prefix) */
#define TOK_DEC_SPECIAL     0x2u /* print CONTROL tokens' text ("</s>")
                                    instead of nothing */

/* State of one decoded stream.  Plain data: copy or reset at will. */
struct tok_decoder {
    const struct tok_vocab *v;
    unsigned flags;
    bool strip_pending;  /* TOK_DEC_STRIP_SPACE not yet applied */
    uint8_t npend;       /* bytes of an incomplete UTF-8 sequence held back */
    uint8_t need;        /* total length of that sequence */
    uint8_t pend[4];
};

/* Start a stream over v (initialised by tok_init) with TOK_DEC_* flags.
 * In the functions below d, out (when cap > 0) and n_out must be valid. */
void tok_decoder_init(struct tok_decoder *d, const struct tok_vocab *v,
                      unsigned flags);

/*
 * tok_decoder_push: decode one token id, writing printable UTF-8 bytes to
 * out[0..cap) and their count to *n_out (often 0: a byte token that starts
 * a multi-byte character is held back until the character is complete).
 * NORMAL pieces print with U+2581 turned into a space, BYTE tokens print
 * their byte, UNKNOWN prints U+2585 (as llama.cpp), USER_DEFINED prints its
 * text as is, CONTROL prints nothing (its text with TOK_DEC_SPECIAL),
 * UNUSED and undefined types print nothing.  The output is always valid
 * UTF-8: every maximal invalid subsequence becomes U+FFFD (the Unicode /
 * WHATWG "replacement" rule, as Python's errors="replace").  CONTROL tokens
 * do not interrupt a held-back sequence.
 * Returns TOK_OK, or
 *   TOK_ERR_TOKEN   id not in [0, n_vocab) (nothing changed);
 *   TOK_ERR_NOSPACE cap < tok_decoder_need(d, id) (nothing changed).
 */
int tok_decoder_push(struct tok_decoder *d, int32_t id, char *out, size_t cap,
                     size_t *n_out);

/* Bytes of out that tok_decoder_push(d, id, ...) may need (upper bound;
 * 0 for an invalid id).  tok_decoder_max_bytes(v) bounds it for any id. */
size_t tok_decoder_need(const struct tok_decoder *d, int32_t id);
size_t tok_decoder_max_bytes(const struct tok_vocab *v);

/* End of stream: an incomplete sequence still held back prints as U+FFFD
 * (3 bytes).  Returns TOK_OK, or TOK_ERR_NOSPACE if cap < 3 and something
 * is held back (nothing changed). */
int tok_decoder_flush(struct tok_decoder *d, char *out, size_t cap,
                      size_t *n_out);

#endif
