/*
 * cmd_llm.c - talking to the model: gen, chat, tokenize, eval, set, model.
 *
 * Text arguments accept the escapes \n \t \\ and \xHH (one byte); UTF-8
 * typed directly passes through.  Generation streams tokens as they come
 * and ends with llama.cpp-style figures; Ctrl-C stops it.  Prompts are
 * tokenized as llama.cpp's llama_tokenize(add_special, parse_special): BOS
 * and the space prefix as the GGUF file asks (tokenizer.h).  One limit on
 * token counts: the context, model.eng.n_ctx (`set ctx`).
 */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "lib/crc32_fast.h"
#include "lib/kprintf.h"
#include "llm/chat.h"
#include "llm/model.h"
#include "llm/sampler.h"
#include "plat/plat.h"
#include "mod/prof.h"
#include "shell/line.h"
#include "shell/shell.h"

#define EVAL_MAX_TOP 64
#define N_PREDICT_MAX (1 << 30)   /* tokens; generation also stops when the context is full */

static struct {
    int n_predict;
    struct sampler s;
    uint64_t seed;          /* 0: a new seed from the TSC each run */
    char system[LINE_MAX_BYTES + 1];   /* chat's system prompt, "" for none */
} cfg = { 64, { 0.8f, 40, 0.95f, 1 }, 0, "You are a helpful assistant." };

#define toks (model.sess.tokens)   /* model.eng.n_ctx ids */
static char text_buf[LINE_MAX_BYTES + 1];

/* Decode \n \t \\ \xHH in `in` into `out`; returns the length, or -1 after
 * printing which escape is malformed. */
static int unescape(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            if (*p == 'n') c = '\n';
            else if (*p == 't') c = '\t';
            else if (*p == '\\') c = '\\';
            else if (*p == 'x') {
                int v = 0;
                for (int i = 1; i <= 2; i++) {
                    char h = p[i];
                    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 :
                            h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (d < 0) {
                        kprintf("error: \\x needs two hex digits (at \"\\%.3s\")\n", p);
                        return -1;
                    }
                    v = v * 16 + d;
                }
                c = (char)v;
                p += 2;
            } else {
                kprintf("error: unknown escape \"\\%c\" (use \\n, \\t, \\\\ or \\xHH)\n", *p ? *p : ' ');
                return -1;
            }
        }
        if (n + 1 >= cap) {
            kprintf("error: text too long\n");
            return -1;
        }
        out[n++] = c;
    }
    out[n] = 0;
    return (int)n;
}

/* Tokenize text into out[0..cap) (for a prompt: toks, cap the context's
 * room); returns the count or -1 after an error. */
static int encode(const char *text, size_t len, unsigned flags, int32_t *out, int cap)
{
    static uint8_t scratch[8u << 20];
    struct tok_arena sa = { scratch, sizeof scratch, 0 };
    size_t n = 0;
    int st = tok_encode(&model.tok, text, len, flags, out, (size_t)cap, &n, &sa);
    if (st == TOK_ERR_NOSPACE && cap < model.eng.n_ctx)   /* a chat turn after others */
        kprintf("error: the turn is too long: %zu tokens, but the context has room for %d more (of %d)\n", n,
                cap, model.eng.n_ctx);
    else if (st == TOK_ERR_NOSPACE)
        kprintf("error: the prompt is too long: %zu tokens, but the context holds %d\n", n, cap);
    if (st == TOK_ERR_NOSPACE)
        return -1;
    if (st != 0) {
        kprintf("error: tokenizer: %s\n", tok_strerror(st));
        return -1;
    }
    return (int)n;
}

/* Feed toks[0..n) into the prompt's session; 0, or -1 after an error
 * message (" [stopped]" after Ctrl-C). */
static int feed(const int32_t *t, int n, void (*row)(void *, int, const float *), void *ctx)
{
    struct session *ss = &model.sess;
    ss->poll = line_interrupted_poll;
    int rc = session_prefill(ss, t, n, row, ctx);
    if (rc == SESS_CONTEXT_FULL)
        kprintf("\nerror: context full: %d tokens in use, %d more do not fit in %d\n", session_used(ss), n,
                model.eng.n_ctx);
    else if (rc == SESS_BAD_TOKEN)
        kprintf("\nerror: token id out of range\n");
    else if (rc == SESS_CANCELLED)
        kprintf(" [stopped]\n");
    return rc == SESS_OK ? 0 : -1;
}

static void emit(void *ctx, const char *text, size_t n)
{
    (void)ctx;
    kwrite(text, n);
}

/* Sample and print up to n_predict tokens after the fed context. */
static void generate(int n_predict)
{
    struct session *ss = &model.sess;
    ss->poll = line_interrupted_poll;
    session_generate(ss, n_predict, emit, NULL);
    if (ss->st.stop == STOP_CONTEXT_FULL)
        kprintf("\n[context full: %d tokens; generation stopped]", model.eng.n_ctx);
    else if (ss->st.stop == STOP_CANCELLED)
        kprintf(" [stopped]");
}

static double per_sec(int n, uint64_t ticks)
{
    uint64_t us = tsc_to_us(ticks);
    return us ? n * 1e6 / (double)us : 0.0;
}

/* The closing line of gen and chat turns, like llama.cpp's timings. */
static void print_run_stats(void)
{
    const struct session_stats *st = &model.sess.st;
    kprintf("\n[prompt: %d tokens, %.2f tok/s | generated: %d tokens, %.2f tok/s%s]\n", st->n_prompt,
            per_sec(st->n_prompt, st->prefill_ticks), st->n_gen, per_sec(st->n_gen, st->decode_ticks),
            st->stop == STOP_EOS ? " | end of text" : "");
}

/* The session's sampler for this run: the settings of `set` and of this
 * command's options, a new seed unless one is set. */
static void start_run(void)
{
    model.sess.s = cfg.s;
    sampler_seed(&model.sess.s, cfg.seed ? cfg.seed : (rdtsc() | 1));
}

/* Options shared by gen: returns the index of the first text word, or -1. */
static int parse_gen_opts(int argc, char **argv, int *n_predict)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--") == 0)
            return i + 1;
        if (i + 1 >= argc) {
            kprintf("error: option %s needs a value\n", o);
            return -1;
        }
        const char *v = argv[++i];
        long l;
        float f;
        if (strcmp(o, "-n") == 0 && shell_parse_long(v, &l) == 0 && l > 0 && l <= N_PREDICT_MAX)
            *n_predict = (int)l;
        else if (strcmp(o, "--temp") == 0 && shell_parse_float(v, &f) == 0 && f >= 0)
            cfg.s.temp = f;
        else if (strcmp(o, "--top-k") == 0 && shell_parse_long(v, &l) == 0 && l >= 0)
            cfg.s.top_k = (int)l;
        else if (strcmp(o, "--top-p") == 0 && shell_parse_float(v, &f) == 0 && f > 0 && f <= 1)
            cfg.s.top_p = f;
        else if (strcmp(o, "--seed") == 0 && shell_parse_long(v, &l) == 0 && l >= 0)
            cfg.seed = (uint64_t)l;
        else {
            kprintf("error: bad option or value: %s %s (see 'help')\n", o, v);
            return -1;
        }
    }
    return i;
}

static int cmd_gen(int argc, char **argv, const char *line)
{
    if (model_require())
        return 1;
    struct sampler saved = cfg.s;
    uint64_t saved_seed = cfg.seed;
    int n_predict = cfg.n_predict, rc = 1;
    int first = parse_gen_opts(argc, argv, &n_predict);
    if (first < 0)
        goto out;
    if (first >= argc) {
        kprintf("error: gen needs a prompt text: gen [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] <text>\n");
        goto out;
    }
    int len = unescape(shell_rest(line, first), text_buf, sizeof text_buf);
    if (len < 0)
        goto out;
    struct engine *e = &model.eng;
    int n = encode(text_buf, (size_t)len, TOK_ENC_ADD_SPECIAL | TOK_ENC_SPECIAL, toks, e->n_ctx);
    if (n < 0)
        goto out;
    start_run();
    session_reset(&model.sess);
    kwrite(text_buf, (size_t)len);
    if (feed(toks, n, NULL, NULL) != 0)
        goto out;
    generate(n_predict);
    const struct session_stats *st = &model.sess.st;
    prof_work.runs++;                       /* the profile's workload */
    prof_work.prompt_tokens += (uint64_t)st->n_prompt;
    prof_work.generated_tokens += (uint64_t)st->n_gen;
    prof_work.prefill_cycles += st->prefill_ticks;
    prof_work.decode_cycles += st->decode_ticks;
    print_run_stats();
    rc = 0;
out:
    cfg.s = saved;
    cfg.seed = saved_seed;
    return rc;
}

/* "[id, id, ...]" */
static void print_ids(const int32_t *ids, int n)
{
    kprintf("[");
    for (int i = 0; i < n; i++)
        kprintf(i ? ", %d" : "%d", ids[i]);
    kprintf("]");
}

static int cmd_tokenize(int argc, char **argv, const char *line)
{
    (void)argv;
    if (model_require())
        return 1;
    if (argc < 2) {
        kprintf("error: tokenize needs a text\n");
        return 1;
    }
    int len = unescape(shell_rest(line, 1), text_buf, sizeof text_buf);
    if (len < 0)
        return 1;
    /* Not bounded by the context: nothing is fed.  A byte is at most one
     * token; the space prefix and BOS are two more. */
    static int32_t ids[LINE_MAX_BYTES + 2];
    int n = encode(text_buf, (size_t)len, TOK_ENC_ADD_SPECIAL | TOK_ENC_SPECIAL, ids, LINE_MAX_BYTES + 2);
    if (n < 0)
        return 1;
    print_ids(ids, n);
    kprintf("\n");
    return 0;
}

/* One JSON line of `eval`: the position, its `top` largest logits, and a
 * CRC-32 of every logit of the row, bit for bit (so tests can prove that
 * two targets, or core counts, computed the very same floats). */
static void eval_row(void *ctx, int pos, const float *lg)
{
    long top = *(const long *)ctx;
    uint32_t n_vocab = model.eng.hp.n_vocab;
    int32_t best[EVAL_MAX_TOP];
    int k = 0;
    for (int32_t t = 0; t < (int32_t)n_vocab; t++) {   /* insertion into the top k */
        int j;
        if (k < top) {
            j = k++;
        } else {
            if (!(lg[t] > lg[best[k - 1]]))
                continue;
            j = k - 1;
        }
        while (j > 0 && lg[t] > lg[best[j - 1]]) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = t;
    }
    kprintf("{\"pos\": %d, \"top\": [", pos);
    for (int j = 0; j < k; j++)
        kprintf("%s[%d, %.6f]", j ? ", " : "", best[j], (double)lg[best[j]]);
    kprintf("], \"crc32\": \"%08x\"}\n", crc32_fast(0, lg, (size_t)n_vocab * sizeof *lg));
}

static int cmd_eval(int argc, char **argv, const char *line)
{
    (void)line;
    if (model_require())
        return 1;
    long top = 8;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--top") == 0) {
        if (shell_parse_long(argv[i + 1], &top) != 0 || top < 1 || top > EVAL_MAX_TOP) {
            kprintf("error: --top needs a number from 1 to %d\n", EVAL_MAX_TOP);
            return 1;
        }
        i += 2;
    }
    struct engine *e = &model.eng;
    int n = 0;
    for (; i < argc; i++) {
        long id;
        if (shell_parse_long(argv[i], &id) != 0 || id < 0 || id >= (long)e->hp.n_vocab) {
            kprintf("error: '%s' is not a token id (0..%u)\n", argv[i], e->hp.n_vocab - 1);
            return 1;
        }
        if (n == e->n_ctx) {
            kprintf("error: more tokens than the context holds (%d)\n", e->n_ctx);
            return 1;
        }
        toks[n++] = (int32_t)id;
    }
    if (n == 0) {
        kprintf("error: eval needs token ids: eval [--top K] <id> <id> ...\n");
        return 1;
    }
    session_reset(&model.sess);
    return feed(toks, n, eval_row, &top) == 0 ? 0 : 1;
}

/* A vocabulary piece as a C string (the template's bos_token, eos_token). */
static void piece_text(int32_t id, char *out, size_t cap)
{
    const struct tok_entry *t = id >= 0 && (uint32_t)id < model.tok.n_vocab ? &model.tok.tok[id] : NULL;
    size_t n = t && t->len < cap ? t->len : 0;
    if (n)
        memcpy(out, t->text, n);
    out[n] = 0;
}

/* chat [--verbose-prompt]: the model's chat template (llm/chat.h), turn
 * by turn; --verbose-prompt prints each turn's token ids before they are
 * fed (as llama.cpp's --verbose-prompt). */
static int cmd_chat(int argc, char **argv, const char *line)
{
    (void)line;
    if (model_require())
        return 1;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--verbose-prompt") != 0) {
            kprintf("error: chat takes only --verbose-prompt (use `set system` for the system prompt)\n");
            return 1;
        }
        verbose = 1;
    }
    static char msg[LINE_MAX_BYTES + 1], turn[2 * LINE_MAX_BYTES + 256], bos[64], eos[64];
    struct chat_template t;
    chat_detect(model.m.chat_template.ptr, (size_t)model.m.chat_template.len, &t);
    piece_text((int32_t)model.m.hp.bos_id, bos, sizeof bos);
    piece_text((int32_t)model.m.hp.eos_id, eos, sizeof eos);
    int32_t eot = t.eot_text ? tok_lookup(&model.tok, t.eot_text, strlen(t.eot_text)) : -1;
    kprintf("Chat with %s: %s template (%s).\n", model.name, t.name, t.source);
    kprintf("System prompt: %s%s%s (set system <text> | none). /reset starts over, /exit leaves.\n",
            cfg.system[0] ? "\"" : "", cfg.system[0] ? cfg.system : "none", cfg.system[0] ? "\"" : "");
    start_run();
    session_reset(&model.sess);
    for (;;) {
        int n = line_read("you> ", msg, sizeof msg);
        if (n == -2 || (n >= 0 && strcmp(msg, "/exit") == 0))
            break;
        if (n <= 0)
            continue;
        if (strcmp(msg, "/reset") == 0) {
            session_reset(&model.sess);
            kprintf("(conversation cleared)\n");
            continue;
        }
        int len = unescape(msg, text_buf, sizeof text_buf);
        if (len < 0)
            continue;
        unsigned flags = TOK_ENC_SPECIAL;
        int m;
        if (session_used(&model.sess) == 0) {
            m = chat_first_turn(&t, bos, eos, cfg.system, text_buf, turn, sizeof turn);
            flags |= TOK_ENC_ADD_SPECIAL;
        } else {
            /* Close the last reply (its end of turn: sampled, or cut at
             * n_predict, the template wants it either way), then the next
             * user turn, continuing the text of the reply. */
            m = chat_next_turn(&t, bos, eos, text_buf, turn, sizeof turn);
            flags |= TOK_ENC_CONTINUE;
        }
        if (m < 0) {
            kprintf("error: the message is too long for the template\n");
            continue;
        }
        int nt = encode(turn, (size_t)m, flags, toks, session_room(&model.sess));
        if (nt < 0) {
            kprintf("(use /reset to start a new conversation)\n");
            continue;
        }
        if (verbose) {
            kprintf("(prompt tokens: ");
            print_ids(toks, nt);
            kprintf(")\n");
        }
        if (feed(toks, nt, NULL, NULL) != 0) {
            kprintf("(use /reset to start a new conversation)\n");
            continue;
        }
        kprintf("assistant> ");
        model.sess.eot_id = eot;
        generate(cfg.n_predict);
        model.sess.eot_id = -1;
        print_run_stats();
    }
    return 0;
}

/* set ctx N: a new context of N tokens (0: the model's context_length). */
static int set_ctx(const char *v)
{
    long l;
    if (shell_parse_long(v, &l) != 0 || l < 0 || l > (1L << 30)) {
        kprintf("error: set ctx takes a number of tokens (0: the model's context_length)\n");
        return 1;
    }
    if (model_require())
        return 1;
    char why[200];
    if (model_set_ctx((int)l, why, sizeof why) != 0) {
        kprintf("error: %s; the context stays at %d tokens\n", why, model.eng.n_ctx);
        return 1;
    }
    kprintf("ctx %d tokens (KV cache and activations %.1f MiB); the conversation starts over\n", model.eng.n_ctx,
            model.eng.mem_bytes / 1048576.0);
    return 0;
}

static int cmd_set(int argc, char **argv, const char *line)
{
    if (argc == 1) {
        kprintf("n_predict %d\ntemp      %.3f\ntop_k     %d\ntop_p     %.3f\nseed      %llu%s\n",
                cfg.n_predict, (double)cfg.s.temp, cfg.s.top_k, (double)cfg.s.top_p,
                (unsigned long long)cfg.seed, cfg.seed ? "" : " (new each run)");
        if (model.loaded)
            kprintf("ctx       %d (context_length %u)\n", model.eng.n_ctx, model.m.hp.n_ctx_train);
        kprintf("system    %s\n", cfg.system[0] ? cfg.system : "none");
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "system") == 0) {   /* the rest of the line, escapes decoded */
        const char *rest = shell_rest(line, 2);
        if (strcmp(rest, "none") == 0) {
            cfg.system[0] = 0;
            return 0;
        }
        return unescape(rest, cfg.system, sizeof cfg.system) < 0;
    }
    if (argc != 3) {
        kprintf("error: usage: set [<key> <value>]; keys: n_predict temp top_k top_p seed ctx system\n");
        return 1;
    }
    long l;
    float f;
    const char *k = argv[1], *v = argv[2];
    if (strcmp(k, "ctx") == 0)
        return set_ctx(v);
    if (strcmp(k, "n_predict") == 0 && shell_parse_long(v, &l) == 0 && l > 0 && l <= N_PREDICT_MAX)
        cfg.n_predict = (int)l;
    else if (strcmp(k, "temp") == 0 && shell_parse_float(v, &f) == 0 && f >= 0)
        cfg.s.temp = f;
    else if (strcmp(k, "top_k") == 0 && shell_parse_long(v, &l) == 0 && l >= 0)
        cfg.s.top_k = (int)l;
    else if (strcmp(k, "top_p") == 0 && shell_parse_float(v, &f) == 0 && f > 0 && f <= 1)
        cfg.s.top_p = f;
    else if (strcmp(k, "seed") == 0 && shell_parse_long(v, &l) == 0 && l >= 0)
        cfg.seed = (uint64_t)l;
    else {
        kprintf("error: bad key or value '%s %s' (n_predict 1..%d, temp >= 0, top_k >= 0, "
                "0 < top_p <= 1, seed >= 0, ctx 0..context_length, system <text> | none)\n", k, v, N_PREDICT_MAX);
        return 1;
    }
    return 0;
}

static int cmd_model(int argc, char **argv, const char *line)
{
    (void)argc, (void)argv, (void)line;
    if (model_require())
        return 1;
    const struct llama_hparams *hp = &model.m.hp;
    char types[160];
    llama_weights_summary(&model.m.w, types, sizeof types);
    kprintf("name:        %s\n", model.name);
    kprintf("file:        %llu bytes (%.1f MiB)\n", (unsigned long long)model.size, model.size / 1048576.0);
    kprintf("hparams:     vocab %u, embd %u, blocks %u, heads %u, kv heads %u, head dim %u, ff %u\n",
            hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff);
    kprintf("             ctx %d (trained %u), rms eps %g, rope base %g\n", model.eng.n_ctx,
            hp->n_ctx_train, (double)hp->rms_eps, (double)hp->rope_freq_base);
    kprintf("tensors:     %s\n", types);
    kprintf("memory:      %.1f MiB (weights file %.1f MiB, KV cache + activations %.1f MiB)\n",
            model.mem_bytes / 1048576.0, model.size / 1048576.0, model.eng.mem_bytes / 1048576.0);
    return 0;
}

const struct shell_cmd llm_commands[] = {
    { "gen", "[-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] <text>", "generate text after a prompt", cmd_gen, 0 },
    { "chat", "[--verbose-prompt]", "multi-turn chat in the model's template (Zephyr, Llama 2, ChatML)", cmd_chat, 0 },
    { "tokenize", "<text>", "print the token ids of a text", cmd_tokenize, 0 },
    { "eval", "[--top K] <id> ...", "logits of each position as JSON lines", cmd_eval, 0 },
    { "set", "[<key> <value>]", "show or set n_predict, sampling, ctx (context size), system (chat)", cmd_set, 0 },
    { "model", "", "model shapes, tensor types, size, memory", cmd_model, 0 },
    { 0 },
};
