/*
 * model.h - the model the kernel runs: read from the image's model region
 * by the kernel's own disk driver, checked (CRC-32, GGUF structure, Llama
 * shapes, vocabulary) and set up for inference.  Any failure leaves
 * model.loaded == 0 with one message in model.error and gives back every
 * byte the load took (plat_free); the prompt stays usable and model
 * commands answer with that message.
 */
#ifndef FLUID_MODEL_H
#define FLUID_MODEL_H

#include <stdint.h>
#include "llm/engine.h"
#include "llm/gguf.h"
#include "llm/llama_model.h"
#include "llm/session.h"
#include "llm/tokenizer.h"

/* The context size (tokens) when none is asked for: the model's
 * context_length, capped at this (TinyLlama's, 2048).  The user may pick
 * any size up to context_length that fits in memory (`set ctx`, or the
 * platform's boot option: plat_boot_ctx_size()). */
#define FLUID_CTX_DEFAULT 2048

struct fluid_model {
    int loaded;
    char name[96];             /* general.name, else the file name */
    const uint8_t *file;       /* the GGUF file in memory */
    uint64_t size;             /* bytes */
    struct gguf_file gf;
    struct llama_model m;
    struct tok_vocab tok;
    struct engine eng;
    void *eng_mem;             /* the engine's memory (eng.mem_bytes; NULL: none) */
    struct session sess;       /* the prompt's conversation (llm/session.h) */
    uint64_t read_us, check_us; /* disk read; CRC + parse + validation */
    uint64_t mem_bytes;        /* file + engine + tables */
    char error[320];
    /* What the load took from plat_alloc (NULL: not taken), for release. */
    uint8_t *file_mem, *arena_mem;
    uint64_t file_alloc;       /* bytes of file_mem (size rounded up to 2 MiB) */
    const void *tied_mem;      /* a tied output's repacked copy (llm/repack.h) */
    uint64_t tied_alloc;
};

extern struct fluid_model model;

/* Load the model region at boot; prints the boot-log lines.  Call once,
 * or again after model_unload(). */
void model_boot_load(void);
/* Give back everything a load took (file, arena, engine and session
 * buffers) and forget the model: model is all zeros afterwards, as before
 * the first load.  Nothing to do when nothing is loaded. */
void model_unload(void);
/* The model's id as profiles/ and the cache name it: general.name
 * lower-cased with anything but [a-z0-9._] as '-', then '-' and the model
 * region's CRC-32 in hex ("tinyllama-shaped-random-1a2b3c4d"); "none"
 * without a model. */
void model_id_string(char *out, size_t cap);
/* Print "error: <why no model>" and return 1 when no model is loaded. */
int model_require(void);
/* Resize the context to n_ctx tokens (1..context_length; 0: context_length):
 * a new KV cache and session buffers, the conversation forgotten.  Returns
 * 0, or -1 with why (a too large size, or the memory it needs and the
 * memory free); the previous context then stays. */
int model_set_ctx(int n_ctx, char *why, size_t cap);
#endif
