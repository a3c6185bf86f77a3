/*
 * session.h - one conversation with the model: the runtime every front end
 * uses (gen, chat, eval, bench and the profiler's workload at the prompt; a
 * network server later).  A session owns the engine's context (the KV
 * cache positions), the sampler, the buffers sized from the model, and the
 * statistics of its last run.  It does no I/O: generated text goes to the
 * caller's emit callback, and cancellation comes from the caller's poll
 * callback, asked between forward passes (a prefill batch of up to
 * ENGINE_BATCH tokens, or one decode step), so Ctrl-C stops a prefill, an
 * eval or a benchmark as well as a generation.
 *
 * Every call returns a SESS_* status; on an error nothing is half-done
 * except as documented (a cancelled prefill leaves the tokens fed so far
 * in the context).
 */
#ifndef FLUID_SESSION_H
#define FLUID_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include "llm/engine.h"
#include "llm/sampler.h"
#include "llm/tokenizer.h"

enum session_status {
    SESS_OK = 0,
    SESS_CONTEXT_FULL = -1,   /* the tokens do not fit in n_ctx (nothing was fed) */
    SESS_BAD_TOKEN = -2,      /* a token id outside the vocabulary (nothing was fed) */
    SESS_CANCELLED = -3,      /* the poll callback asked to stop */
    SESS_NO_LOGITS = -4,      /* sample/generate before anything was fed */
    SESS_NO_MEMORY = -5,      /* session_init: buffers do not fit */
};

/* Why session_generate() stopped. */
enum session_stop { STOP_LENGTH, STOP_EOS, STOP_CONTEXT_FULL, STOP_CANCELLED };

struct session_stats {
    int n_prompt;             /* tokens fed by the last session_prefill() */
    uint64_t prefill_ticks;   /* its TSC ticks */
    int n_gen;                /* tokens produced by the last session_generate() */
    uint64_t decode_ticks;    /* its TSC ticks (sampling and output included) */
    enum session_stop stop;
};

struct session {
    struct engine *e;
    const struct tok_vocab *tok;
    struct sampler s;
    struct sample_cand *cand;   /* n_vocab candidates for the sampler */
    char *piece;                /* tok_decoder_max_bytes() bytes: one token's text */
    size_t piece_cap;
    int32_t *tokens;            /* e->n_ctx ids: a front end's prompt or batch */
    int32_t eot_id;             /* a second end-of-generation id (a chat
                                   template's end of turn), -1: none */
    int last_row;               /* row of e->logits for the next token; -1: none */
    /* Nonzero from poll(ctx) stops the run at the next forward pass. */
    int (*poll)(void *ctx);
    void *poll_ctx;
    struct session_stats st;
};

/* Set up a session over an initialised engine and tokenizer; buffers from
 * plat_alloc() (n_vocab sampler candidates, one token's text, n_ctx token
 * ids).  Returns SESS_OK or SESS_NO_MEMORY (nothing kept). */
int session_init(struct session *s, struct engine *e, const struct tok_vocab *tok);

/* Give back the buffers session_init() took (s->cand, s->piece, s->tokens:
 * NULL afterwards), before the engine's context is resized or the model
 * unloaded; nothing to do for a session never set up. */
void session_free(struct session *s);

/* Forget the context (the conversation); the sampler keeps its state. */
void session_reset(struct session *s);

/* Positions in use and free in the context (tokens). */
int session_used(const struct session *s);
int session_room(const struct session *s);

/* Feed toks[0..n) after what the context holds, in batches of
 * ENGINE_BATCH.  row(ctx, pos, logits) is called for every token of every
 * batch with its n_vocab logits when row is not NULL (eval), else only the
 * last token's logits are kept (for sampling).  Statistics: st.n_prompt,
 * st.prefill_ticks.  Returns SESS_OK, SESS_CONTEXT_FULL or SESS_BAD_TOKEN
 * (nothing fed), SESS_CANCELLED (the batches before the poll stay fed). */
int session_prefill(struct session *s, const int32_t *toks, int n,
                    void (*row)(void *ctx, int pos, const float *logits), void *ctx);

/* One decode step: feed token `id`; its logits become the next sample's.
 * Returns SESS_OK, SESS_CONTEXT_FULL or SESS_BAD_TOKEN. */
int session_decode(struct session *s, int32_t id);

/* The logits (n_vocab floats) the next token is sampled from, or NULL. */
const float *session_logits(const struct session *s);

/* Sample the next token with s->s (greedy at temp 0); -1 (SESS_NO_LOGITS
 * as a negative id) before anything was fed. */
int32_t session_sample(struct session *s);

/* Sample and feed up to n_predict tokens, streaming each token's text to
 * emit(ctx, bytes, n) (UTF-8, split multi-byte characters held back until
 * complete).  Stops at EOS or eot_id (not fed, not emitted), at n_predict, when the
 * context is full, or when poll asks; st.stop says which.  Statistics:
 * st.n_gen, st.decode_ticks.  Returns the number of tokens generated, or
 * SESS_NO_LOGITS. */
int session_generate(struct session *s, int n_predict, void (*emit)(void *ctx, const char *text, size_t n),
                     void *ctx);
#endif
