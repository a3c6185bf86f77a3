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

/* The longest context any front end uses (tokens); the engine's n_ctx is
 * the model's trained context, capped at this. */
#define FLUID_CTX_MAX 2048

struct fluid_model {
    int loaded;
    char name[96];             /* general.name, else the file name */
    const uint8_t *file;       /* the GGUF file in memory */
    uint64_t size;             /* bytes */
    struct gguf_file gf;
    struct llama_model m;
    struct tok_vocab tok;
    struct engine eng;
    struct session sess;       /* the prompt's conversation (llm/session.h) */
    uint64_t read_us, check_us; /* disk read; CRC + parse + validation */
    uint64_t mem_bytes;        /* file + engine + tables */
    char error[320];
    /* What the load took from plat_alloc (NULL: not taken), for release. */
    uint8_t *file_mem, *arena_mem;
    uint64_t file_alloc;       /* bytes of file_mem (size rounded up to 2 MiB) */
    void *eng_mem;             /* engine_mem_bytes() bytes */
    uint64_t eng_alloc;
};

extern struct fluid_model model;

/* Load the model region at boot; prints the boot-log lines.  Call once,
 * or again after model_unload(). */
void model_boot_load(void);
/* Give back everything a load took (file, arena, engine and session
 * buffers) and forget the model: model is all zeros afterwards, as before
 * the first load.  Nothing to do when nothing is loaded. */
void model_unload(void);
/* Print "error: <why no model>" and return 1 when no model is loaded. */
int model_require(void);
#endif
