/* chat.c - chat template recognition and turn formatting (see chat.h). */
#include <stdio.h>
#include <string.h>
#include "llm/chat.h"

static int contains(const char *text, size_t len, const char *marker)
{
    size_t m = strlen(marker);
    for (size_t i = 0; text && m <= len && i <= len - m; i++)
        if (memcmp(text + i, marker, m) == 0)
            return 1;
    return 0;
}

void chat_detect(const char *text, size_t len, struct chat_template *out)
{
    static const struct chat_template zephyr = { CHAT_ZEPHYR, "Zephyr", "from tokenizer.chat_template", NULL },
                                      llama2 = { CHAT_LLAMA2, "Llama 2", "from tokenizer.chat_template", NULL },
                                      chatml = { CHAT_CHATML, "ChatML", "from tokenizer.chat_template",
                                                 "<|im_end|>" };
    if (contains(text, len, "<|im_start|>"))
        *out = chatml;
    else if (contains(text, len, "[INST]") && contains(text, len, "<<SYS>>"))
        *out = llama2;
    else if (contains(text, len, "<|user|>") && contains(text, len, "<|assistant|>") &&
             !contains(text, len, "<|end|>"))
        *out = zephyr;
    else {
        *out = zephyr;
        out->source = len ? "the default: this model's tokenizer.chat_template is none Fluid knows "
                            "(Zephyr, Llama 2, ChatML)"
                          : "the default: this model has no tokenizer.chat_template";
    }
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* snprintf's result as chat.h's: the length, or -1 when it did not fit. */
static int fits(int n, size_t cap) { return n >= 0 && (size_t)n < cap ? n : -1; }

/* [a, b) of s without ASCII white space at either end. */
static void strip(const char *s, size_t *a, size_t *b)
{
    while (*a < *b && is_space(s[*a]))
        (*a)++;
    while (*b > *a && is_space(s[*b - 1]))
        (*b)--;
}

/* Llama 2's first [INST]: content = "<<SYS>>\n" system "\n<</SYS>>\n\n"
 * user, stripped at both ends as a whole (the template's content.strip()):
 * the message loses its leading white space only without a system block,
 * and an empty message takes the block's trailing "\n\n" with it. */
static int llama2_first(const char *system, const char *user, char *out, size_t cap)
{
    size_t a = 0, b = strlen(user);
    if (!system || !*system) {
        strip(user, &a, &b);
        return fits(snprintf(out, cap, "[INST] %.*s [/INST]", (int)(b - a), user + a), cap);
    }
    strip(user, &a, &b);
    if (a == b)
        return fits(snprintf(out, cap, "[INST] <<SYS>>\n%s\n<</SYS>> [/INST]", system), cap);
    return fits(snprintf(out, cap, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%.*s [/INST]", system, (int)b, user), cap);
}

int chat_first_turn(const struct chat_template *t, const char *bos, const char *eos, const char *system,
                    const char *user, char *out, size_t cap)
{
    (void)bos;   /* the first BOS comes from the tokenizer (chat.h) */
    int sys = system && *system;
    switch (t->format) {
    case CHAT_LLAMA2:
        return llama2_first(system, user, out, cap);
    case CHAT_CHATML:
        return fits(snprintf(out, cap, "%s%s%s<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
                             sys ? "<|im_start|>system\n" : "", sys ? system : "", sys ? "<|im_end|>\n" : "",
                             user), cap);
    case CHAT_ZEPHYR:
    default:
        return fits(snprintf(out, cap, "%s%s%s%s<|user|>\n%s%s\n<|assistant|>\n", sys ? "<|system|>\n" : "",
                             sys ? system : "", sys ? eos : "", sys ? "\n" : "", user, eos), cap);
    }
}

int chat_next_turn(const struct chat_template *t, const char *bos, const char *eos, const char *user,
                   char *out, size_t cap)
{
    switch (t->format) {
    case CHAT_LLAMA2: {
        size_t a = 0, b = strlen(user);
        strip(user, &a, &b);
        return fits(snprintf(out, cap, " %s%s[INST] %.*s [/INST]", eos, bos, (int)(b - a), user + a), cap);
    }
    case CHAT_CHATML:
        return fits(snprintf(out, cap, "<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user),
                    cap);
    case CHAT_ZEPHYR:
    default:
        return fits(snprintf(out, cap, "%s\n<|user|>\n%s%s\n<|assistant|>\n", eos, user, eos), cap);
    }
}
