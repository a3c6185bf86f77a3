/*
 * repack.h - lay the model's Q4_0, Q8_0, Q4_K and Q6_K matrices out as
 * their matmul modules read them: the 8-row interleaved x8 layouts of
 * modules/ops.h.
 *
 * Done once per loaded model, after the model region's CRC and the Llama
 * checks, before the first forward pass, in place in the file's memory
 * (the same bytes, rearranged within each group of 8 rows).  Only the
 * matrices that go through a matrix product are touched: token_embd is
 * read row by row (dequant_<t>) and stays GGUF; a tied output (output =
 * token_embd) gets a repacked copy of its own.
 */
#ifndef FLUID_REPACK_H
#define FLUID_REPACK_H

#include <stddef.h>
#include <stdint.h>
#include "llm/llama_model.h"

/* Repack every matrix of w whose type has a repack op, the groups split
 * over all CPUs.  *extra_bytes: memory taken for a tied output's copy
 * (0 otherwise).  Returns 0, or -1 with err set: the type's repack module
 * is missing, or no memory for the scratch rows or the tied copy. */
int weights_repack(struct llama_weights *w, uint64_t *extra_bytes, char *err, size_t errlen);

#endif
