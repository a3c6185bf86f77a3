/*
 * sha256.h - SHA-256 (FIPS 180-4, section 6.2), shared by the kernel (the
 * module loader checks every module body with it) and the host tools
 * (tools/modpack.c writes the digests).  Pure C99, no allocation, no
 * dependencies beyond <stddef.h>/<stdint.h>.
 *
 *   struct sha256 s; sha256_init(&s); sha256_update(&s, p, n); ...
 *   sha256_final(&s, digest);            digest: 32 bytes, big-endian words
 *   sha256(p, n, digest);                the same in one call
 */
#ifndef FLUID_SHA256_H
#define FLUID_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32

struct sha256 {
    uint32_t h[8];        /* chaining state H0..H7 */
    uint64_t bytes;       /* message length so far */
    uint8_t buf[64];      /* partial block */
    uint32_t used;        /* bytes in buf */
};

/* Start a new digest (initial hash value, FIPS 180-4 5.3.3). */
void sha256_init(struct sha256 *s);
/* Absorb n bytes at p (any length, any alignment). */
void sha256_update(struct sha256 *s, const void *p, size_t n);
/* Pad, finish and write the 32-byte digest; s must be re-initialised
 * before reuse. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_BYTES]);
/* One-shot digest of n bytes at p. */
void sha256(const void *p, size_t n, uint8_t out[SHA256_BYTES]);
/* Lower-case hex of the first `nbytes` bytes of a digest into out
 * (2 * nbytes + 1 chars including the NUL). */
void sha256_hex(const uint8_t *digest, int nbytes, char *out);

#endif
