/*
 * fuzz_plat.h - a platform (kernel/plat/plat.h) for host programs that run
 * the kernel core on a disk image held in memory: the load-path fuzzer
 * (load_fuzz.c).  What it stands in for, and how strictly:
 *
 *   memory    plat_alloc maps a block as hosted does, between guard pages,
 *             with the bytes past the size asked for poisoned (so ASan
 *             sees every overrun), within a budget as --mem is on hosted;
 *             plat_free must name a live block with its exact byte count
 *             (else abort: the kernel broke plat.h's contract).
 *   boot disk the image bytes, read by LBA with hosted's range checks;
 *             the bytes of the last sector past the model region's end
 *             are poisoned for ASan once read, so reading past the GGUF
 *             file is an error even inside its sector and 2 MiB rounding.
 *   CPUs      FUZZ_CPUS workers, run one after another on this thread:
 *             the parallel-for splits [0, n) as plat/common/pfor.c does,
 *             and each chunk sees its own worker index and CPU id.
 *   console   output is kept out of sight (FUZZ_VERBOSE=1 shows it);
 *             any byte that is not printable ASCII, '\n' or '\r' is
 *             counted (the kernel prints only sanitised text).
 *   the rest  no input, no PMU, no modules region; power-off and a fatal
 *             stop abort (the load path must never reach them).
 */
#ifndef FLUID_FUZZ_PLAT_H
#define FLUID_FUZZ_PLAT_H

#include <stdint.h>
#include "fluid/image.h"

#define FUZZ_CPUS 2

/* Boot from disk[0..disk_bytes) (kept, not copied: it must outlive the
 * run) whose checked header is *h (copied), within a memory budget of
 * mem_budget bytes.  Resets the console counters. */
void fuzz_plat_boot(const struct fluid_image_header *h, const uint8_t *disk, uint64_t disk_bytes,
                    uint64_t mem_budget);

/* Blocks and bytes plat_alloc handed out and plat_free has not taken back. */
int fuzz_plat_live_blocks(void);
uint64_t fuzz_plat_live_bytes(void);

/* Console bytes since fuzz_plat_boot that were not printable ASCII, '\n'
 * or '\r'; the first such byte (-1: none) and the line it was in. */
uint64_t fuzz_plat_bad_console_bytes(int *first, const char **line);

#endif
