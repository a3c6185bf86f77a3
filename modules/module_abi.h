/*
 * module_abi.h - the Fluid module ABI, defined once for the build
 * (tools/modpack.c), the kernel (kernel/mod/loader.c, cache.c) and the
 * host tools (tools/pgo.py reads these layouts from build/gen/fluid_layout.py,
 * which tools/genlayout.c prints from this file; cache/README.md and
 * profiles/README.md document them).
 *
 * A module is one op family (one modules/<name>.c file plus modules/modrt.c)
 * compiled with
 *   clang-19 -ffreestanding -fno-builtin -fPIC -fno-stack-protector
 *            -mno-red-zone -fvisibility=hidden -ffp-contract=off
 *            -O<n> -march=<tag>  [-DFLUID_SHAPE_<NAME>=<value> ...]
 * linked alone with modules/module.ld into a position-independent ELF,
 * and packed by tools/modpack into a flat "module file":
 *
 *   offset 0     struct fluid_mod_header (512 bytes)
 *   offset 512   body: the module's memory image from address 0 (code,
 *                read-only data, then from text_bytes, a page boundary,
 *                data and bss as zeros); body_bytes long
 *
 * The body contains no relocation: the code is PC-relative throughout, so
 * the loader copies it anywhere (4 KiB aligned) and calls it.  Anything the
 * module needs from the kernel comes through struct fluid_services
 * (modules/ops.h), handed to its init entry before any other call.
 *
 * Every field is little-endian.  Everything numbered here (op ids, shape
 * ids, feature bits in fluid/cpufeat.h) is append-only: never renumber.
 *
 * -ffp-contract=off: no module build fuses a*b+c on its own, so a module
 * compiled for a higher -march computes the same floats as the baseline
 * wherever its source does not choose a different summation order on
 * purpose (see modules/mm_common.h: Q4_0/Q8_0 are bit-identical across
 * ISAs; K-quants/F16/F32 SIMD paths differ in the last bits).
 */
#ifndef FLUID_MODULE_ABI_H
#define FLUID_MODULE_ABI_H

#include <stdint.h>
#include "fluid/cpufeat.h"

#define FLUID_MOD_MAGIC "FLUIDMOD"          /* 8 bytes, no NUL */
#define FLUID_MOD_ABI_VERSION 7u          /* 2: text_bytes (W^X split); 3: Q4_0/Q8_0
                                             x8 weight layout, matmul_args.n_rows;
                                             4: Q4_0 x8 in 4-byte row chunks,
                                             Q4_K x8; 5: Q8_0 x8 in 4-byte
                                             row chunks; 6: block_q8_0s keeps
                                             -8 * sum(q) (msum8); 7: build
                                             parameters (n_params, param) */
#define FLUID_MOD_PAGE 4096u                /* text/data split granularity */
#define FLUID_MOD_HEADER_BYTES 512u
#define FLUID_MOD_MAX_ENTRIES 24
#define FLUID_MOD_MAX_SHAPES 8
#define FLUID_MOD_MAX_PARAMS 2
#define FLUID_MOD_MAX_BODY (2u << 20)       /* sanity bound on body_bytes */
#define FLUID_MOD_FILE_ALIGN 64u            /* module files in packs/slots */
#define FLUID_MOD_INIT_SYMBOL "fluid_module_init"

/*
 * Op ids: one per compute kernel the forward pass calls.  A module's entry
 * table maps op ids to function offsets; the symbol name of each op's
 * function is the op name (modules/ops.h prototypes).  Append only.
 */
#define FLUID_OP_LIST(X)                                                 \
    X(MM_F32, "mm_f32")   X(MM_F16, "mm_f16")   X(MM_Q8_0, "mm_q8_0")    \
    X(MM_Q4_0, "mm_q4_0") X(MM_Q4_K, "mm_q4_K") X(MM_Q5_K, "mm_q5_K")    \
    X(MM_Q6_K, "mm_q6_K")                                                \
    X(DQ_F32, "dequant_f32") X(DQ_F16, "dequant_f16")                     \
    X(DQ_Q8_0, "dequant_q8_0") X(DQ_Q4_0, "dequant_q4_0")                 \
    X(DQ_Q4_K, "dequant_q4_K") X(DQ_Q5_K, "dequant_q5_K")                 \
    X(DQ_Q6_K, "dequant_q6_K")                                           \
    X(QUANT_Q8_0, "quantize_q8_0") X(QUANT_Q8_K, "quantize_q8_K")         \
    X(CONVERT_F16, "convert_f16") X(COPY_F32, "copy_f32")                 \
    X(RMSNORM, "rmsnorm") X(ROPE, "rope") X(SWIGLU, "swiglu") X(ADD, "add") \
    X(ATTN_SCORES, "attn_scores") X(SOFTMAX, "softmax") X(ATTN_WSUM, "attn_wsum") \
    X(REPACK_Q4_0, "repack_q4_0") X(REPACK_Q8_0, "repack_q8_0") \
    X(QUANT_Q8_0S, "quantize_q8_0s") \
    X(MM_Q2_K, "mm_q2_K") X(MM_Q3_K, "mm_q3_K") X(MM_Q5_0, "mm_q5_0")    \
    X(MM_Q4_1, "mm_q4_1") X(MM_Q5_1, "mm_q5_1")                          \
    X(DQ_Q2_K, "dequant_q2_K") X(DQ_Q3_K, "dequant_q3_K")                 \
    X(DQ_Q5_0, "dequant_q5_0") X(DQ_Q4_1, "dequant_q4_1")                 \
    X(DQ_Q5_1, "dequant_q5_1") X(QUANT_Q8_1, "quantize_q8_1")          \
    X(REPACK_Q4_K, "repack_q4_K") X(REPACK_Q6_K, "repack_q6_K")

enum fluid_op {
#define FLUID_OP_ENUM(id, name) OP_##id,
    FLUID_OP_LIST(FLUID_OP_ENUM)
#undef FLUID_OP_ENUM
    OP_COUNT
};

/*
 * Model-shape constants a module may be specialised for.  A module source
 * that uses FLUID_SHAPE_<NAME> declares that it can use that constant
 * (tools/pgo.py finds the names in the source); its shaped build gets
 * -DFLUID_SHAPE_<NAME>=<value> and must keep a runtime check that takes
 * the generic path when the argument differs.  Append only.
 */
#define FLUID_SHAPE_LIST(X)                                              \
    X(N_EMBD, 1, "n_embd") X(N_FF, 2, "n_ff") X(HEAD_DIM, 3, "head_dim")  \
    X(N_HEAD, 4, "n_head") X(N_HEAD_KV, 5, "n_head_kv")                   \
    X(N_EMBD_KV, 6, "n_embd_kv") X(N_VOCAB, 7, "n_vocab")                 \
    X(N_LAYER, 8, "n_layer")

enum fluid_shape_id {
#define FLUID_SHAPE_ENUM(id, num, name) FLUID_SHAPE_ID_##id = num,
    FLUID_SHAPE_LIST(FLUID_SHAPE_ENUM)
#undef FLUID_SHAPE_ENUM
    FLUID_SHAPE_ID_MAX = 8
};

/*
 * Build parameters that are not model shapes: how a kernel is tuned, not
 * what it computes (a different value gives the same results).  A module
 * built with one records it, so `tune` can say which build it timed.
 * PREFETCH: the -DMM_PREFETCH_OVERRIDE=<bytes> distance of the matrix
 * products' software prefetch (modules/mm_common.h; 0 = none).  Append
 * only.
 */
#define FLUID_PARAM_LIST(X) X(PREFETCH, 1, "prefetch")

enum fluid_param_id {
#define FLUID_PARAM_ENUM(id, num, name) FLUID_PARAM_ID_##id = num,
    FLUID_PARAM_LIST(FLUID_PARAM_ENUM)
#undef FLUID_PARAM_ENUM
    FLUID_PARAM_ID_MAX = 1
};

/* Module flags. */
#define FLUID_MOD_F_BASELINE 1u   /* built for the image's module region */
#define FLUID_MOD_F_SHAPED 2u     /* built with shape constants */
#define FLUID_MOD_F_ISA 4u        /* a per-ISA build in the image's module region: the
                                     loader takes the best one the CPU can run */
#define FLUID_MOD_F_ALT 8u        /* with F_ISA: a build with other build parameters,
                                     loaded for `tune` to time; it runs only when
                                     a tuned choice names it */

/* Entry: op id -> offset of its function inside the body. */
struct fluid_mod_entry {
    uint16_t op;          /* enum fluid_op */
    uint16_t reserved;
    uint32_t offset;      /* < body_bytes */
};

/* A shape constant (or a build parameter) the module was compiled with. */
struct fluid_mod_shape {
    uint16_t id;          /* enum fluid_shape_id */
    uint16_t reserved;
    uint32_t value;
};

/* The 512-byte module header (offset 0 of a module file). */
struct fluid_mod_header {
    char magic[8];                 /* FLUID_MOD_MAGIC */
    uint32_t abi_version;          /* FLUID_MOD_ABI_VERSION */
    uint32_t header_bytes;         /* FLUID_MOD_HEADER_BYTES */
    char name[32];                 /* module name = source stem, NUL-padded */
    char march[48];                /* -march tag it was built for */
    char compiler[64];             /* "Debian clang version 19.1.x" */
    uint64_t features;             /* FEAT_BIT() mask the code requires */
    uint32_t opt_level;            /* 0..3 (-O<n>) */
    uint32_t flags;                /* FLUID_MOD_F_* */
    uint32_t body_bytes;           /* code + data + zero-filled bss */
    uint32_t init_offset;          /* fluid_module_init inside the body */
    uint32_t n_entries;            /* 1..FLUID_MOD_MAX_ENTRIES */
    uint32_t n_shapes;             /* 0..FLUID_MOD_MAX_SHAPES */
    struct fluid_mod_entry entry[FLUID_MOD_MAX_ENTRIES];
    struct fluid_mod_shape shape[FLUID_MOD_MAX_SHAPES];
    uint8_t sha256[32];            /* SHA-256 of the body_bytes of body */
    uint32_t text_bytes;           /* [0, text_bytes): code + read-only data,
                                      mapped read+execute; [text_bytes,
                                      body_bytes): data + bss, read+write.
                                      A multiple of FLUID_MOD_PAGE (W^X). */
    uint32_t n_params;             /* 0..FLUID_MOD_MAX_PARAMS */
    struct fluid_mod_shape param[FLUID_MOD_MAX_PARAMS]; /* id: enum fluid_param_id */
    uint8_t reserved[4];           /* zero */
    uint32_t header_crc;           /* CRC-32 (zlib) of bytes 0..507 */
};

_Static_assert(sizeof(struct fluid_mod_entry) == 8, "entry size");
_Static_assert(sizeof(struct fluid_mod_shape) == 8, "shape size");
_Static_assert(sizeof(struct fluid_mod_header) == FLUID_MOD_HEADER_BYTES, "module header size");

/*
 * The baseline module region (image.h FLUID_REGION_MODULES, loaded by
 * stage 2 at FLUID_MODULES_LOAD): module files back to back, each starting
 * on a FLUID_MOD_FILE_ALIGN boundary; the region's byte count (image
 * header) ends the list.
 *
 * The PGO cache region (FLUID_REGION_CACHE, 2 slots of
 * FLUID_CACHE_SLOT_BYTES, read by the kernel).  A slot:
 *
 *   offset 0          struct fluid_cache_slot (512 bytes)
 *   offset 512        registry: n_entries x struct fluid_cache_entry
 *   then              module files (FLUID_MOD_FILE_ALIGN aligned)
 *   slot_bytes - 512  struct fluid_cache_trailer (the commit record)
 *
 * A slot is valid when its header checks (magic, version, CRC, sizes), the
 * registry's SHA-256 matches, and the trailer at slot_bytes - 512 repeats
 * the header's generation and CRC.  Writers write the whole slot but the
 * trailer, flush, then write the trailer: a write cut short anywhere leaves
 * no trailer matching the new header, so that slot is ignored and the
 * other slot (the previous generation) wins.  The valid slot with the
 * highest generation is the cache.  Writers always replace the slot that
 * does not hold the newest valid generation.
 *
 * A slot may also hold tuned choices (written by the kernel's `tune`,
 * kernel/core/mod/tune.h; carried over by tools/pgo.py apply): after the
 * module files, n_choices x struct fluid_cache_choice at choice_offset,
 * covered by choice_sha256.  Each names, for one op, the module variant
 * `tune` measured fastest on this machine (by the SHA-256 of its body, so
 * it matches one module of the image's MODULES region or of this slot);
 * the kernel runs it for that op when the CPU tag it was measured on is
 * the booting CPU's.  choice_offset = n_choices = 0: no choices (every
 * slot written before choices existed reads so: those bytes were
 * reserved, zero).
 */
#define FLUID_CACHE_MAGIC "FLUIDCCH"
#define FLUID_CACHE_END_MAGIC "FLUIDEND"
#define FLUID_CACHE_VERSION 1u
#define FLUID_CACHE_MAX_ENTRIES 256
#define FLUID_CACHE_TAG_BYTES 48
#define FLUID_CACHE_MAX_CHOICES 64         /* >= OP_COUNT, room to append ops */
#define FLUID_CACHE_CHOICE_ALIGN 64u       /* choice_offset alignment */

/* Slot header, 512 bytes. */
struct fluid_cache_slot {
    char magic[8];                 /* FLUID_CACHE_MAGIC */
    uint32_t version;              /* FLUID_CACHE_VERSION */
    uint32_t header_bytes;         /* 512 */
    uint64_t generation;           /* >= 1, +1 per pgo-apply that changes it */
    uint32_t slot_bytes;           /* used bytes, trailer included; multiple
                                      of 512, <= FLUID_CACHE_SLOT_BYTES */
    uint32_t n_entries;            /* registry entries */
    uint32_t registry_offset;      /* 512 */
    uint32_t registry_bytes;       /* n_entries * sizeof(fluid_cache_entry) */
    uint8_t registry_sha256[32];   /* SHA-256 of the registry */
    uint64_t created_unix;         /* seconds since 1970 (informational) */
    char writer[64];               /* "fluid pgo.py ..." (informational) */
    char model_id[64];             /* model the plan was made for */
    /* Tuned choices (0/0: none).  Byte offset from the slot start, after
     * every module file, FLUID_CACHE_CHOICE_ALIGN aligned; the table ends
     * before the trailer. */
    uint32_t choice_offset;
    uint32_t n_choices;            /* <= FLUID_CACHE_MAX_CHOICES */
    uint8_t choice_sha256[32];     /* SHA-256 of the n_choices records */
    char choice_tag[FLUID_CACHE_TAG_BYTES]; /* CPU tag `tune` ran on: the
                                      choices apply to CPUs of this tag only */
    char choice_cpu[48];           /* its CPUID brand string (informational) */
    char choice_model_id[64];      /* model whose shapes were timed */
    uint64_t choice_tsc_hz;        /* TSC rate of the cycle counts */
    uint8_t reserved[92];
    uint32_t header_crc;           /* CRC-32 of bytes 0..507 */
};

/* One registry entry, 128 bytes: a module file in this slot. */
struct fluid_cache_entry {
    char tag[FLUID_CACHE_TAG_BYTES]; /* CPU tag it is for ("x86-64-v3") */
    char name[32];                 /* module name */
    uint32_t offset;               /* module file offset from slot start */
    uint32_t bytes;                /* module file bytes (header + body) */
    uint8_t sha256[32];            /* = the module header's body SHA-256 */
    uint32_t opt_level;
    uint32_t flags;
};

/* A tuned choice, 160 bytes: for op `op`'s calls of `phase`, run the
 * module whose body hashes to sha256 (name, march, opt_level and flags
 * repeat its header, for messages).  Cycle counts are TSC cycles per token
 * of this op's calls on the model's shapes (mod/tune_work.h), minima over
 * repetitions.  A matrix product has up to two choices: FLUID_CHOICE_ALL
 * (timed on a prefill batch) and FLUID_CHOICE_DECODE for its one-token
 * calls, since the kernel fastest for one differs from the other's (a
 * build that waits less on memory can lose a third of prefill speed).
 * At most one choice per (op, phase). */
#define FLUID_CHOICE_ALL 0u                /* every call (none with DECODE below) */
#define FLUID_CHOICE_DECODE 1u             /* calls with one token (decode steps) */
struct fluid_cache_choice {
    uint16_t op;                   /* enum fluid_op */
    uint16_t phase;                /* FLUID_CHOICE_*; 0 in slots before phases */
    uint32_t opt_level;            /* -O level of the chosen module */
    char module[32];               /* its name */
    char march[48];                /* its -march tag */
    uint8_t sha256[32];            /* its body's SHA-256 */
    uint32_t flags;                /* its FLUID_MOD_F_* flags */
    uint32_t reserved1;
    uint64_t cycles;               /* its measured cost */
    uint64_t default_cycles;       /* what ran before tune chose, measured alike */
    uint8_t reserved[16];
};

/* Commit record, the last 512 bytes of slot_bytes. */
struct fluid_cache_trailer {
    char magic[8];                 /* FLUID_CACHE_END_MAGIC */
    uint64_t generation;           /* = header generation */
    uint32_t header_crc;           /* = header header_crc */
    uint32_t slot_bytes;           /* = header slot_bytes */
    uint8_t reserved[484];
    uint32_t trailer_crc;          /* CRC-32 of bytes 0..507 */
};

_Static_assert(sizeof(struct fluid_cache_slot) == 512, "slot header size");
_Static_assert(sizeof(struct fluid_cache_entry) == 128, "registry entry size");
_Static_assert(sizeof(struct fluid_cache_trailer) == 512, "trailer size");
_Static_assert(sizeof(struct fluid_cache_choice) == 160, "choice size");
_Static_assert(FLUID_CACHE_MAX_CHOICES >= OP_COUNT, "a choice per op");

#endif
