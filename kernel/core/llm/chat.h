/*
 * chat.h - chat templates: which conversation format a model wants, and
 * the text of each turn in it.
 *
 * A GGUF file carries its format as a Jinja template
 * (tokenizer.chat_template).  Fluid runs no Jinja: like llama.cpp's
 * llm_chat_detect_template (llama-chat.cpp) it recognises the templates it
 * knows by markers that their published texts contain, and writes those
 * formats itself:
 *
 *   ChatML   "<|im_start|>"                 <|im_start|>{role}\n{content}<|im_end|>\n
 *   Llama 2  "[INST]" and "<<SYS>>"         [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]
 *            (meta-llama/Llama-2-*-chat)    {reply} </s><s>[INST] {user} [/INST] ...
 *   Zephyr   "<|user|>" and "<|assistant|>" <|system|>\n{system}</s>\n<|user|>\n{user}</s>\n
 *            but not "<|end|>" (Phi-3)      <|assistant|>\n (TinyLlama-1.1B-Chat, zephyr-7b)
 *
 * checked in that order.  Absent, or none of these: Zephyr, with a note
 * saying so.  Each format ends the generation prompt where the assistant's
 * reply starts; a later turn first closes the reply (the template's end of
 * turn), then adds the user's message and the next generation prompt.
 * "</s>" and "<s>" above stand for the vocabulary's EOS and BOS texts.
 * The first turn is tokenized with llama.cpp's add_special (BOS from the
 * vocabulary, not from the text: as llama.cpp's common_chat_templates_apply
 * strips a template's leading BOS); later turns continue the context
 * (TOK_ENC_CONTINUE).  Special tokens in the text are parsed.
 */
#ifndef FLUID_LLM_CHAT_H
#define FLUID_LLM_CHAT_H

#include <stddef.h>

enum chat_format { CHAT_ZEPHYR, CHAT_LLAMA2, CHAT_CHATML };

struct chat_template {
    enum chat_format format;
    const char *name;       /* "Zephyr", "Llama 2", "ChatML" */
    const char *source;     /* "from tokenizer.chat_template", or why the default */
    const char *eot_text;   /* a token ending a reply besides EOS ("<|im_end|>"), or NULL */
};

/* Recognise tokenizer.chat_template (text of len bytes; NULL or len 0 when
 * the file has none). */
void chat_detect(const char *text, size_t len, struct chat_template *out);

/*
 * Write into out[0..cap) (NUL-terminated) the text of a turn: the first
 * one (system prompt, may be NULL or "" for none, then the user's message
 * and the generation prompt) or a later one (the end of the last reply,
 * then the user's message and the generation prompt).  bos and eos are
 * the vocabulary's BOS and EOS texts.  Llama 2 strips the message's
 * leading and trailing ASCII white space, as its template's .strip().
 * Returns the length in bytes, or -1 when it does not fit in cap.
 */
int chat_first_turn(const struct chat_template *t, const char *bos, const char *eos, const char *system,
                    const char *user, char *out, size_t cap);
int chat_next_turn(const struct chat_template *t, const char *bos, const char *eos, const char *user,
                   char *out, size_t cap);

#endif
