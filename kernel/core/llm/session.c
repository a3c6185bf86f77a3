/* session.c - the inference runtime (see session.h). */
#include "arch/x86/insn.h"
#include "llm/session.h"
#include "plat/plat.h"

static uint64_t cand_bytes(const struct session *s) { return (uint64_t)s->e->hp.n_vocab * sizeof *s->cand; }
static uint64_t tokens_bytes(const struct session *s) { return (uint64_t)s->e->n_ctx * sizeof *s->tokens; }

int session_init(struct session *s, struct engine *e, const struct tok_vocab *tok)
{
    *s = (struct session){ .e = e, .tok = tok, .s = { 0.8f, 40, 0.95f, 1 }, .last_row = -1, .eot_id = -1 };
    s->piece_cap = tok_decoder_max_bytes(tok) + 8;
    s->cand = plat_alloc(cand_bytes(s), 4096);
    s->piece = plat_alloc(s->piece_cap, 4096);
    s->tokens = plat_alloc(tokens_bytes(s), 4096);
    if (!s->cand || !s->piece || !s->tokens) {
        session_free(s);
        return SESS_NO_MEMORY;
    }
    return SESS_OK;
}

void session_free(struct session *s)
{
    if (!s->e)
        return;  /* never set up */
    if (s->cand)
        plat_free(s->cand, cand_bytes(s));
    if (s->piece)
        plat_free(s->piece, s->piece_cap);
    if (s->tokens)
        plat_free(s->tokens, tokens_bytes(s));
    s->cand = NULL, s->piece = NULL, s->tokens = NULL;
}

void session_reset(struct session *s)
{
    engine_reset(s->e);
    s->last_row = -1;
}

int session_used(const struct session *s) { return s->e->n_past; }
int session_room(const struct session *s) { return s->e->n_ctx - s->e->n_past; }

static int cancelled(struct session *s)
{
    return s->poll && s->poll(s->poll_ctx);
}

int session_prefill(struct session *s, const int32_t *toks, int n,
                    void (*row)(void *ctx, int pos, const float *logits), void *ctx)
{
    struct engine *e = s->e;
    s->st.n_prompt = 0;
    s->st.prefill_ticks = 0;
    if (n > session_room(s))
        return SESS_CONTEXT_FULL;
    for (int i = 0; i < n; i++)
        if (toks[i] < 0 || (uint32_t)toks[i] >= e->hp.n_vocab)
            return SESS_BAD_TOKEN;
    uint64_t t0 = rdtsc();
    for (int i = 0; i < n; i += ENGINE_BATCH) {
        if (i > 0 && cancelled(s)) {
            s->st.prefill_ticks = rdtsc() - t0;
            return SESS_CANCELLED;
        }
        int b = n - i < ENGINE_BATCH ? n - i : ENGINE_BATCH;
        int pos0 = e->n_past;
        engine_forward(e, toks + i, b, row != NULL);   /* checked above: cannot fail */
        s->last_row = b - 1;
        s->st.n_prompt += b;
        if (row)
            for (int r = 0; r < b; r++)
                row(ctx, pos0 + r, e->logits + (size_t)r * e->hp.n_vocab);
    }
    s->st.prefill_ticks = rdtsc() - t0;
    return SESS_OK;
}

int session_decode(struct session *s, int32_t id)
{
    int rc = engine_forward(s->e, &id, 1, 0);
    if (rc == -2)
        return SESS_CONTEXT_FULL;
    if (rc != 0)
        return SESS_BAD_TOKEN;
    s->last_row = 0;
    return SESS_OK;
}

const float *session_logits(const struct session *s)
{
    return s->last_row < 0 ? NULL : s->e->logits + (size_t)s->last_row * s->e->hp.n_vocab;
}

int32_t session_sample(struct session *s)
{
    const float *lg = session_logits(s);
    return lg ? sampler_pick(&s->s, lg, (int)s->e->hp.n_vocab, s->cand) : SESS_NO_LOGITS;
}

int session_generate(struct session *s, int n_predict, void (*emit)(void *ctx, const char *text, size_t n),
                     void *ctx)
{
    struct tok_decoder dec;
    size_t nout;
    int n = 0;
    s->st.n_gen = 0;
    s->st.decode_ticks = 0;
    s->st.stop = STOP_LENGTH;
    if (!session_logits(s))
        return SESS_NO_LOGITS;
    tok_decoder_init(&dec, s->tok, 0);
    uint64_t t0 = rdtsc();
    while (n < n_predict) {
        int32_t id = session_sample(s);
        if ((uint32_t)id == s->e->hp.eos_id || id == s->eot_id) {
            s->st.stop = STOP_EOS;
            break;
        }
        n++;
        if (emit && tok_decoder_push(&dec, id, s->piece, s->piece_cap, &nout) == 0)
            emit(ctx, s->piece, nout);
        if (session_room(s) == 0) {
            s->st.stop = STOP_CONTEXT_FULL;
            break;
        }
        if (session_decode(s, id) != SESS_OK) {
            s->st.stop = STOP_CONTEXT_FULL;
            break;
        }
        if (n < n_predict && cancelled(s)) {
            s->st.stop = STOP_CANCELLED;
            break;
        }
    }
    if (emit && tok_decoder_flush(&dec, s->piece, s->piece_cap, &nout) == 0)
        emit(ctx, s->piece, nout);
    s->st.n_gen = n;
    s->st.decode_ticks = rdtsc() - t0;
    return n;
}
