/*
 * plat.h - the one seam between Fluid's portable core (kernel/core: GGUF,
 * tokenizer, forward pass, sampler, module loader/cache/profiler, shell)
 * and the machine it runs on.  Two platforms implement it:
 *
 *   plat/pc      the unikernel: BIOS boot hand-off, x86 system set-up,
 *                drivers (COM1, VGA, PS/2, virtio-blk, AHCI, ACPI), SMP
 *                start-up, the E820 allocator.  What ships.
 *   plat/hosted  a Linux process: the same image file, modules and cache,
 *                at native speed (termios, pread/pwrite, pthreads, mmap).
 *                How we measure and develop, as Unikraft's linuxu or
 *                Solo5's spt.
 *
 * The core includes no other platform header and has no per-platform
 * #ifdef: the same core objects are linked into both (kernel.elf and
 * fluid-hosted), so both compute the same bits.  The x86 ISA facts both
 * platforms share (CPUID, TSC) are arch/x86/.
 */
#ifndef FLUID_PLAT_H
#define FLUID_PLAT_H

#include <stddef.h>
#include <stdint.h>
#include "fluid/image.h"

/* Most CPUs any platform drives (per-CPU arrays are this long). */
#define FLUID_MAX_CPUS 64

/* ---- identity ---- */

/* "pc" or "hosted". */
const char *plat_name(void);

/* ---- console: text out, bytes in ---- */

/* Write n bytes to every console (pc: COM1 + VGA; hosted: stdout).
 * Callable from any CPU; a line written in one call is never interleaved. */
void plat_console_write(const char *s, size_t n);
/* The next input byte, or -1 when none is waiting (never blocks). */
int plat_console_poll(void);
/* Block until an input byte arrives and return it.  At the end of input
 * (hosted: stdin closed) the platform powers off: there is no one left to
 * answer. */
int plat_console_getc(void);
/* Ctrl-D on an empty line: hosted exits (as a shell does); pc ignores it
 * (a stray key must not switch a machine off). */
void plat_console_eof(void);

/* ---- the boot disk: the image this Fluid booted from ---- */

struct blkdev {
    const char *name;            /* "virtio-blk 00:04.0", "build/fluid.img" */
    uint64_t sectors;            /* capacity in 512-byte sectors */
    /* Read `bytes` (a multiple of 512) at `lba` into `buf`.  Returns 0 or a
     * negative BLK_E* code. */
    int (*read)(struct blkdev *d, uint64_t lba, void *buf, uint64_t bytes);
    /* Write likewise and make it durable before returning: the data is on
     * stable media, past any volatile write cache (virtio-blk: T_OUT then
     * T_FLUSH; AHCI: WRITE DMA EXT then FLUSH CACHE EXT; hosted: pwrite
     * then fdatasync).  Returns 0 or a negative BLK_E* code; after an
     * error, any part of the range may or may not have been written.
     * NULL: the disk cannot be written (read_only says why). */
    int (*write)(struct blkdev *d, uint64_t lba, const void *buf, uint64_t bytes);
    const char *read_only;       /* why write is NULL ("the device is read-only"), or NULL */
    /* One line saying what the last failed read or write ran into
     * ("WRITE DMA EXT at LBA 8200: ATA status 0x51 error 0x04"), set by
     * the pc drivers and the hosted write path when they return an error
     * (callers clear it before a call; "" after an error: use
     * blk_strerror). */
    char error[160];
    void *priv;
};

#define BLK_EIO -1        /* the device reported an error */
#define BLK_ERANGE -2     /* past the end of the disk */
#define BLK_EARG -3       /* length not a multiple of 512 */
#define BLK_ETIMEOUT -4   /* the device did not answer in time */
#define BLK_EDEAD -5      /* the device failed earlier and was disabled */
#define BLK_EROFS -6      /* the disk cannot be written */

/* "I/O error", "past the end of the disk", ... for a BLK_E* code. */
static inline const char *blk_strerror(int err)
{
    switch (err) {
    case 0: return "no error";
    case BLK_EIO: return "I/O error";
    case BLK_ERANGE: return "past the end of the disk";
    case BLK_EARG: return "length not a multiple of 512";
    case BLK_ETIMEOUT: return "the device did not answer in time";
    case BLK_EDEAD: return "the device was disabled after an earlier failure";
    case BLK_EROFS: return "the disk cannot be written";
    default: return "unknown error";
    }
}

/* The disk holding the image, or NULL (after printing why). */
struct blkdev *plat_boot_disk(void);
/* The image header the platform booted from: magic, version and header
 * CRC already checked (pc: by stage 2; hosted: by its loader). */
const struct fluid_image_header *plat_image(void);
/* The MODULES region, in memory and CRC-checked, *bytes long; NULL with
 * *bytes = 0 when the image has none. */
const void *plat_modules_region(uint64_t *bytes);

/* ---- CPUs and the parallel-for ---- */

/* CPUs taking part in plat_parallel_for() (1 before the workers start). */
int plat_cpus_online(void);
/* CPUs the machine has (pc: the ACPI MADT; hosted: the CPUs this process
 * may run on). */
int plat_cpus_present(void);
/* One past the highest per-CPU id in use: the size of per-CPU arrays. */
int plat_cpu_ids(void);
/* The calling CPU's id: 0 = the boot CPU (which runs the shell), dense. */
int plat_cpu_id(void);

/* fn(ctx, begin, end, worker) runs worker's chunk [begin, end). */
typedef void (*plat_fn)(void *ctx, int begin, int end, int worker);
/* Split [0, n_items) into plat_cpus_online() contiguous chunks, run each
 * once (on whichever CPU claims it first) and return when all are done.
 * Lock-free (plat/common/pfor.c).  Which CPU runs a chunk varies; what a
 * chunk computes does not, so results are independent of the CPU count.
 * Called from CPU 0; a nested call runs the whole range on the caller. */
void plat_parallel_for(int n_items, plat_fn fn, void *ctx);
/* How idle workers wait, for `info` ("pause", "futex", ...). */
const char *plat_wait_mode(void);

/* ---- memory ---- */

/* `bytes` of memory (contents undefined) aligned to `align` (a power of two >=
 * 4096; >= 2 MiB asks for huge pages where the platform has them), or
 * NULL when it does not fit.  Never moves; lives until plat_free(). */
void *plat_alloc(uint64_t bytes, uint64_t align);
/* Give back what plat_alloc returned (same byte count). */
void plat_free(void *p, uint64_t bytes);

struct plat_mem {
    uint64_t usable;      /* bytes the platform may hand out in all */
    uint64_t free;        /* bytes not handed out */
    uint64_t largest;     /* largest single allocation that would succeed */
};
void plat_mem_stats(struct plat_mem *m);

/* ---- executable memory for verified modules (W^X) ---- */

/* Writable, not executable memory for a module body of `bytes`, page
 * aligned; NULL when out of memory. */
void *plat_code_alloc(uint64_t bytes);
/* Seal a copied module: [0, text_bytes) becomes read + execute, the rest
 * stays read + write (its data and bss), so no page is ever writable and
 * executable at once.  text_bytes is a multiple of 4096.  Returns 0, or -1
 * (the module must then not run). */
int plat_code_seal(void *p, uint64_t text_bytes, uint64_t bytes);
void plat_code_free(void *p, uint64_t bytes);

/* ---- PMU counters (the four events of mod/pmu.h) ---- */

/* Detect the counters; prints one line; fills `pmu` (mod/pmu.h). */
void plat_pmu_init(void);
/* Current counts of this CPU's four events (0 for absent ones). */
void plat_pmu_read(uint64_t v[4]);

/* ---- boot options ---- */

/* The context size (tokens) asked for at boot, as llama.cpp's -c/--ctx-size:
 * hosted: -c N / --ctx-size N; pc: QEMU's -fw_cfg name=opt/fluid/ctx-size,
 * string=N.  0 means the model's context_length; -1 that none was asked
 * (the core's default, FLUID_CTX_DEFAULT, applies). */
int plat_boot_ctx_size(void);

/* ---- power and test mode ---- */

/* Test mode (pc: QEMU fw_cfg opt/fluid/test=1; hosted: --test): poweroff
 * ends with status 1 and a failure with status 3, as QEMU's
 * isa-debug-exit does, so tests tell a clean exit from a kernel failure. */
int plat_test_mode(void);
__attribute__((noreturn)) void plat_power_off(void);
__attribute__((noreturn)) void plat_reboot(void);
/* After a fatal error has been printed: stop (failure status in tests). */
__attribute__((noreturn)) void plat_fail_stop(void);

/* ---- reports ---- */

/* Platform lines of `info` (cores, memory, boot times, ...). */
void plat_info(void);
/* The image holds a model but it did not load (the message is printed
 * and in model.error): pc keeps the prompt, so the machine can still be
 * asked (`info`, `modules`); hosted exits with status 3 unless started
 * with --stay, as a command-line tool should. */
void plat_model_failed(void);
/* Called once when the first prompt is about to appear: records the time
 * and prints the platform's "boot: ... to prompt" line. */
void plat_prompt_ready(void);

/* Each platform also defines `plat_commands`, the commands only it has
 * (pc: `mem`, the E820 map, and test-only fault injection): a shell_cmd
 * table, declared in core/shell/shell.h. */

#endif
