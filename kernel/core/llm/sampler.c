/* sampler.c - greedy / top-k / top-p / temperature sampling. */
#include <math.h>
#include <stdlib.h>
#include "llm/sampler.h"

void sampler_seed(struct sampler *s, uint64_t seed)
{
    s->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

/* xorshift64* (Vigna 2016): uniform float in [0, 1). */
static float uniform(struct sampler *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

int32_t argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b)
{
    const struct sample_cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;
}

int32_t sampler_pick(struct sampler *s, const float *logits, int n, struct sample_cand *c)
{
    if (s->temp <= 0.0f)
        return argmax(logits, n);
    for (int i = 0; i < n; i++)
        c[i] = (struct sample_cand){ logits[i], i };
    qsort(c, (size_t)n, sizeof *c, by_logit_desc);
    int k = s->top_k > 0 && s->top_k < n ? s->top_k : n;
    /* Probabilities at temperature T over the k best (softmax, max first). */
    float sum = 0.0f;
    for (int i = 0; i < k; i++) {
        c[i].logit = expf((c[i].logit - c[0].logit) / s->temp);
        sum += c[i].logit;
    }
    if (s->top_p < 1.0f) {
        float cum = 0.0f;
        for (int i = 0; i < k; i++) {
            cum += c[i].logit / sum;
            if (cum >= s->top_p) {
                k = i + 1;
                break;
            }
        }
        sum = 0.0f;
        for (int i = 0; i < k; i++)
            sum += c[i].logit;
    }
    float r = uniform(s) * sum, acc = 0.0f;
    for (int i = 0; i < k; i++) {
        acc += c[i].logit;
        if (r < acc)
            return c[i].id;
    }
    return c[k - 1].id;
}
