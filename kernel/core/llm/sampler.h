/*
 * sampler.h - next-token choice from logits: greedy, or temperature with
 * top-k and top-p (nucleus, Holtzman et al. 2019) filtering, applied as
 * top-k, then softmax at temperature T, then top-p, from a seeded xorshift64* stream
 * so that a seed reproduces a run.
 */
#ifndef FLUID_SAMPLER_H
#define FLUID_SAMPLER_H
#include <stdint.h>

struct sampler {
    float temp;       /* <= 0: greedy (argmax) */
    int top_k;        /* <= 0: no top-k cut */
    float top_p;      /* >= 1: no top-p cut */
    uint64_t rng;     /* xorshift64* state, never 0 */
};

struct sample_cand { float logit; int32_t id; };

void sampler_seed(struct sampler *s, uint64_t seed);
/* Pick a token from logits[0..n).  `scratch` must hold n candidates. */
int32_t sampler_pick(struct sampler *s, const float *logits, int n, struct sample_cand *scratch);
/* Index of the largest logit (ties: lowest id). */
int32_t argmax(const float *logits, int n);
#endif
