/*
 * llama_model.h - check that a parsed GGUF file is a Llama model Fluid can
 * run, and describe it: hyper-parameters and per-layer weight views.
 *
 * Works on a struct gguf_file from gguf_parse() (already structurally
 * checked); adds the model-level checks: architecture and tokenizer names,
 * required keys with usable types and consistent values, the vocabulary
 * arrays, and every required tensor with its exact shape and a supported
 * type. The first problem stops the load with a code and ONE message, e.g.
 *   llama: tensor 'blk.0.attn_q.weight': type Q2_K is not supported (...)
 *
 * Freestanding like gguf.c; memory for the layer table comes from the same
 * kind of caller arena.
 */
#ifndef FLUID_LLM_LLAMA_MODEL_H
#define FLUID_LLM_LLAMA_MODEL_H

#include "gguf.h"

/* Sanity bounds on hyper-parameters (TinyLlama is far below all of them). */
#define LLAMA_MAX_LAYERS   1024u
#define LLAMA_MAX_EMBD     (1u << 16)
#define LLAMA_MAX_FF       (1u << 20)
#define LLAMA_MAX_VOCAB    (1u << 24)

enum llama_status {
    LLAMA_OK = 0,
    LLAMA_E_ARG = 100,     /* NULL argument */
    LLAMA_E_ARCH,          /* general.architecture or tokenizer.ggml.model
                              is not "llama" */
    LLAMA_E_KEY_MISSING,   /* a required key is absent */
    LLAMA_E_KEY_TYPE,      /* a key has the wrong value type / element type */
    LLAMA_E_HPARAM,        /* a value is out of range or inconsistent
                              (e.g. n_embd % n_head != 0) */
    LLAMA_E_VOCAB,         /* token arrays: wrong count, bad byte token,
                              special token id out of range */
    LLAMA_E_TENSOR_MISSING,/* a required tensor is absent */
    LLAMA_E_TENSOR_SHAPE,  /* a tensor's n_dims/ne differ from the expected */
    LLAMA_E_TENSOR_TYPE,   /* a tensor has a type Fluid cannot compute with */
    LLAMA_E_NOMEM,         /* the arena is too small for the layer table */
    LLAMA_E_TENSOR_ALIGN,  /* a tensor's data is not LLAMA_DATA_ALIGN-aligned */
};

/* Tensor data must start on this many bytes (in memory; the kernel loads
 * files 2 MiB-aligned, so in the file too): the compute kernels read F32
 * rows as floats and the blocks' f16 and u32 fields in place, and C makes
 * a misaligned access undefined.  Every general.alignment >= 4 (real files:
 * 32) gives it; GGUF allows 1 and 2. */
#define LLAMA_DATA_ALIGN 4u

struct llama_hparams {
    uint32_t n_vocab;        /* tokens (= tokenizer.ggml.tokens count) */
    uint32_t n_embd;         /* embedding length */
    uint32_t n_layer;        /* blocks */
    uint32_t n_head;         /* query heads */
    uint32_t n_head_kv;      /* key/value heads (absent key: = n_head) */
    uint32_t head_dim;       /* n_embd / n_head */
    uint32_t n_embd_kv;      /* head_dim * n_head_kv */
    uint32_t n_ff;           /* feed-forward length */
    uint32_t n_ctx_train;    /* context length trained for */
    uint32_t rope_dim;       /* rotated dims per head (absent: head_dim) */
    float rms_eps;           /* RMSNorm epsilon */
    float rope_freq_base;    /* absent key: 10000 */
    uint32_t bos_id, eos_id, unk_id; /* absent keys: 1, 2, 0 */
    bool add_bos;            /* tokenizer.ggml.add_bos_token (absent: true) */
    bool add_space_prefix;   /* tokenizer.ggml.add_space_prefix (absent: true) */
};

/* A view of one weight tensor inside the file. Matrices are ne0 x ne1:
 * ne1 rows of ne0 elements (y = W x has ne0 = inputs, ne1 = outputs);
 * vectors (norms) have ne1 = 1. */
struct llama_tensor {
    const void *data;        /* first byte, inside the file */
    int type;                /* enum ggml_type */
    uint64_t ne0, ne1;
    size_t row_bytes;        /* bytes of one row of ne0 elements */
};

struct llama_layer {
    struct llama_tensor attn_norm, attn_q, attn_k, attn_v, attn_output;
    struct llama_tensor ffn_norm, ffn_gate, ffn_up, ffn_down;
};

struct llama_weights {
    struct llama_tensor token_embd;   /* [n_embd, n_vocab] */
    struct llama_tensor output_norm;  /* [n_embd] F32 */
    struct llama_tensor output;       /* [n_embd, n_vocab]; a copy of
                                         token_embd when tied */
    bool output_tied;                 /* output.weight absent: reuses
                                         token_embd */
    uint32_t n_layer;
    struct llama_layer *layers;       /* n_layer entries, in the arena */
};

struct llama_model {
    const struct gguf_file *file;
    struct llama_hparams hp;
    struct llama_weights w;
    const struct gguf_kv *tokens;     /* tokenizer.ggml.tokens (strings) */
    const struct gguf_kv *scores;     /* tokenizer.ggml.scores (f32) */
    const struct gguf_kv *token_type; /* tokenizer.ggml.token_type (i32) */
    struct gguf_str chat_template;    /* tokenizer.chat_template (Jinja text,
                                         len 0 when absent or not a string) */
};

/*
 * Validate the parsed file f as a Llama model and fill m.
 *   arena    memory for the layer table (n_layer * ~400 bytes); on failure
 *            arena->used is restored.
 *   err      one NUL-terminated message (err may be NULL if err_size is 0).
 * Returns LLAMA_OK or an LLAMA_E_* code. Checks:
 *   - general.architecture == "llama", tokenizer.ggml.model == "llama";
 *   - integer keys llama.context_length, .embedding_length, .block_count,
 *     .feed_forward_length, .attention.head_count (required),
 *     .attention.head_count_kv, .rope.dimension_count (optional), float
 *     .attention.layer_norm_rms_epsilon (required), .rope.freq_base
 *     (optional); all within the LLAMA_MAX_* bounds and > 0; n_embd %
 *     n_head == 0, n_head % n_head_kv == 0, rope_dim == head_dim and even;
 *     eps and freq_base positive and finite;
 *   - tokenizer.ggml.tokens (string array), .scores (f32 array),
 *     .token_type (i32 array) with n_vocab elements each (llama.vocab_size,
 *     if present, must equal n_vocab); every token of type 6 (byte) reads
 *     exactly "<0xHH>"; bos/eos/unk ids (optional integer keys) < n_vocab;
 *     tokenizer.ggml.add_bos_token and .add_space_prefix (optional bools,
 *     default true as llama.cpp's for this vocabulary); the optional
 *     string tokenizer.chat_template;
 *   - tensors token_embd [n_embd, n_vocab], output_norm [n_embd],
 *     output [n_embd, n_vocab] (optional), and per block attn_norm and
 *     ffn_norm [n_embd], attn_q and attn_output [n_embd, n_embd],
 *     attn_k and attn_v [n_embd, n_embd_kv], ffn_gate and ffn_up
 *     [n_embd, n_ff], ffn_down [n_ff, n_embd]: present, exactly that shape
 *     (n_dims included), norms F32, matrices one of F32, F16, Q8_0, Q4_0,
 *     Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, rows whole blocks,
 *     data LLAMA_DATA_ALIGN-aligned.
 */
int llama_model_load(const struct gguf_file *f, struct gguf_arena *arena,
                     struct llama_model *m, char *err, size_t err_size);

/* True if Fluid can compute with matrices of this ggml type. */
bool llama_matrix_type_supported(uint32_t type);

/* Bytes of data of one tensor view (ne1 * row_bytes). */
uint64_t llama_tensor_bytes(const struct llama_tensor *t);

/* Total bytes of all weights (a tied output is counted once). */
uint64_t llama_weights_bytes(const struct llama_weights *w);

/* One line such as "201 tensors: 45 F32, 133 Q4_K, 23 Q6_K; 636.2 MiB" (KiB below 1 MiB)
 * into buf (NUL-terminated, truncated to buf_size - 1). Returns the
 * snprintf-style length that was needed. */
int llama_weights_summary(const struct llama_weights *w, char *buf, size_t buf_size);

#endif
