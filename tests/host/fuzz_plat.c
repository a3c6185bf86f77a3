/* fuzz_plat.c - kernel/plat/plat.h over an in-memory image (see fuzz_plat.h). */
#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "fuzz_plat.h"
#include "plat/plat.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static void die(const char *what)
{
    fprintf(stderr, "fuzz_plat: %s\n", what);
    abort();
}

/* ---- identity, console ---- */

const char *plat_name(void) { return "fuzz"; }

static uint64_t bad_bytes;
static int first_bad = -1;
static char line[256], bad_line[256];
static size_t line_len;

void plat_console_write(const char *s, size_t n)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fwrite(s, 1, n, stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r';
        if (c == '\n') {
            line_len = 0;
        } else if (line_len < sizeof line - 1) {
            line[line_len++] = ok ? (char)c : '?';
            line[line_len] = 0;
        }
        if (!ok && bad_bytes++ == 0) {
            first_bad = c;
            /* the rest of the line is written later: keep what came so far */
            snprintf(bad_line, sizeof bad_line, "%s", line);
        }
    }
}

uint64_t fuzz_plat_bad_console_bytes(int *first, const char **where)
{
    *first = first_bad;
    *where = bad_line;
    return bad_bytes;
}

int plat_console_poll(void) { return -1; }
int plat_console_getc(void) { die("plat_console_getc: the load path reads no input"); return -1; }
void plat_console_eof(void) {}

/* ---- the boot disk: the image in memory ---- */

static struct fluid_image_header header;
static const uint8_t *disk_bytes_p;
static struct blkdev disk;

/* A block: [p, p + bytes) handed out, in a mapping of body bytes (whole
 * pages) between guard pages; [poison, p + body) is poisoned. */
struct block { uint8_t *p, *poison; uint64_t bytes, body, align; };
#define MAX_BLOCKS 64
static struct block blocks[MAX_BLOCKS];   /* live */
static int n_blocks;
static struct block spare[MAX_BLOCKS];    /* freed, kept for reuse, oldest first */
static int n_spare;
static uint64_t spare_bytes;
#define SPARE_MAX (64ull << 20)            /* mapped but unused memory kept at most */
static uint64_t live_bytes, budget;

static struct block *block_of(const void *p)
{
    for (int i = 0; i < n_blocks; i++)
        if ((const uint8_t *)p >= blocks[i].p && (const uint8_t *)p < blocks[i].p + blocks[i].bytes)
            return &blocks[i];
    return NULL;
}

/* As hosted's disk_read (kernel/plat/hosted/image.c): whole sectors inside
 * the disk.  Then everything in the destination block past the model
 * region's last byte is made unaddressable. */
static int disk_read(struct blkdev *d, uint64_t lba, void *buf, uint64_t bytes)
{
    if (bytes % FLUID_SECTOR_BYTES)
        return BLK_EARG;
    if (lba > d->sectors || bytes / FLUID_SECTOR_BYTES > d->sectors - lba)
        return BLK_ERANGE;
    uint64_t at = lba * FLUID_SECTOR_BYTES;
    memcpy(buf, disk_bytes_p + at, bytes);
    const struct fluid_region *m = &header.region[FLUID_REGION_MODEL];
    uint64_t end = m->lba * FLUID_SECTOR_BYTES + m->bytes;   /* inside the disk: checked by the caller */
    struct block *b = block_of(buf);
    if (b && end >= at && end <= at + bytes) {
        uint8_t *tail = (uint8_t *)buf + (end - at);
        if (tail < b->poison) {
            POISON(tail, (size_t)(b->poison - tail));
            b->poison = tail;
        }
    }
    return 0;
}

void fuzz_plat_boot(const struct fluid_image_header *h, const uint8_t *d, uint64_t bytes, uint64_t mem_budget)
{
    header = *h;
    disk_bytes_p = d;
    disk = (struct blkdev){ .name = "fuzz.img", .sectors = bytes / FLUID_SECTOR_BYTES, .read = disk_read };
    budget = mem_budget;
    bad_bytes = 0;
    first_bad = -1;
    line_len = 0;
    line[0] = bad_line[0] = 0;
}

struct blkdev *plat_boot_disk(void) { return disk_bytes_p ? &disk : NULL; }
const struct fluid_image_header *plat_image(void) { return &header; }

const void *plat_modules_region(uint64_t *bytes)
{
    *bytes = 0;   /* the compute modules are linked in: see load_fuzz.c */
    return NULL;
}

/* ---- CPUs: FUZZ_CPUS workers in turn on this thread ---- */

static int cpu_id;

int plat_cpus_online(void) { return FUZZ_CPUS; }
int plat_cpus_present(void) { return FUZZ_CPUS; }
int plat_cpu_ids(void) { return FUZZ_CPUS; }
int plat_cpu_id(void) { return cpu_id; }
const char *plat_wait_mode(void) { return "sequential"; }

void plat_parallel_for(int n_items, plat_fn fn, void *ctx)
{
    if (n_items <= 0)
        return;
    if (cpu_id != 0) {              /* nested: the caller runs it all, as pfor_run */
        fn(ctx, 0, n_items, cpu_id);
        return;
    }
    for (int w = 0; w < FUZZ_CPUS; w++) {
        /* pfor.c chunk_edge: chunk w of W is [n*w/W, n*(w+1)/W) */
        int b = (int)((int64_t)n_items * w / FUZZ_CPUS), e = (int)((int64_t)n_items * (w + 1) / FUZZ_CPUS);
        cpu_id = w;
        if (b < e)
            fn(ctx, b, e, w);
    }
    cpu_id = 0;
}

/* ---- memory ---- */

/* A block is mapped as hosted maps memory (kernel/plat/hosted/mem.c:
 * anonymous mmap, aligned by over-mapping), between two PROT_NONE guard
 * pages; the bytes from its end to the end of its last page are poisoned,
 * so ASan reports any access past `bytes`.  A freed block is kept for the
 * next request of the same size and alignment (its old contents are
 * "undefined" as plat.h allows): mapping afresh for every input would cost
 * more than the forward pass (page faults, and ASan resetting the shadow
 * of every mapping).  Not malloc, whose large blocks ASan re-poisons whole
 * on every free. */
#define PAGE 4096ull
static uint64_t round_page(uint64_t n) { return (n + PAGE - 1) & ~(PAGE - 1); }

static uint8_t *map_block(uint64_t body, uint64_t align)
{
    uint64_t span = PAGE + align + body + PAGE;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + PAGE + align - 1) & ~(uintptr_t)(align - 1));
    uint8_t *lo = a - PAGE, *hi = a + body + PAGE;   /* guards included */
    if (lo > p)
        munmap(p, (size_t)(lo - p));
    if (hi < p + span)
        munmap(hi, (size_t)(p + span - hi));
    mprotect(lo, PAGE, PROT_NONE);
    mprotect(a + body, PAGE, PROT_NONE);
    return a;
}

void *plat_alloc(uint64_t bytes, uint64_t align)
{
    if (bytes == 0 || (align & (align - 1)))
        return NULL;
    if (bytes > budget - live_bytes || n_blocks == MAX_BLOCKS)
        return NULL;
    if (align < PAGE)
        align = PAGE;
    struct block b = { NULL, NULL, bytes, round_page(bytes), align };
    for (int i = 0; i < n_spare; i++) {
        if (spare[i].body == b.body && spare[i].align == align) {
            b.p = spare[i].p;
            spare_bytes -= spare[i].body;
            memmove(&spare[i], &spare[i + 1], (size_t)(n_spare - i - 1) * sizeof spare[0]);
            n_spare--;
            break;
        }
    }
    if (!b.p && !(b.p = map_block(b.body, align)))
        return NULL;
    b.poison = b.p + bytes;
    POISON(b.poison, (size_t)(b.body - bytes));
    blocks[n_blocks++] = b;
    live_bytes += bytes;
    return b.p;
}

void plat_free(void *p, uint64_t bytes)
{
    if (!p)
        return;
    for (int i = 0; i < n_blocks; i++) {
        if (blocks[i].p != p)
            continue;
        struct block b = blocks[i];
        if (b.bytes != bytes)
            die("plat_free: byte count differs from the plat_alloc that returned the block");
        blocks[i] = blocks[--n_blocks];
        live_bytes -= bytes;
        UNPOISON(b.poison, (size_t)(b.p + b.body - b.poison));
        while (n_spare && (n_spare == MAX_BLOCKS || spare_bytes + b.body > SPARE_MAX)) {   /* drop the oldest */
            munmap(spare[0].p - PAGE, (size_t)(spare[0].body + 2 * PAGE));
            spare_bytes -= spare[0].body;
            memmove(&spare[0], &spare[1], (size_t)(--n_spare) * sizeof spare[0]);
        }
        if (b.body > SPARE_MAX) {
            munmap(b.p - PAGE, (size_t)(b.body + 2 * PAGE));
            return;
        }
        spare[n_spare++] = b;
        spare_bytes += b.body;
        return;
    }
    die("plat_free: not a live block from plat_alloc (double free?)");
}

void plat_mem_stats(struct plat_mem *m)
{
    m->usable = budget;
    m->free = budget - live_bytes;
    m->largest = m->free;
}

int fuzz_plat_live_blocks(void) { return n_blocks; }
uint64_t fuzz_plat_live_bytes(void) { return live_bytes; }

void *plat_code_alloc(uint64_t bytes) { return plat_alloc(bytes, 4096); }
int plat_code_seal(void *p, uint64_t text_bytes, uint64_t bytes)
{
    (void)p, (void)text_bytes, (void)bytes;
    return -1;   /* never runs loaded code */
}
void plat_code_free(void *p, uint64_t bytes) { plat_free(p, bytes); }

/* ---- PMU, power, reports ---- */

void plat_pmu_init(void) {}
void plat_pmu_read(uint64_t v[4]) { memset(v, 0, 4 * sizeof v[0]); }
int plat_boot_ctx_size(void) { return -1; }   /* none asked: the default context */
int plat_test_mode(void) { return 1; }
void plat_power_off(void) { die("plat_power_off on the load path"); for (;;) {} }
void plat_reboot(void) { die("plat_reboot on the load path"); for (;;) {} }
void plat_fail_stop(void) { die("plat_fail_stop: the kernel stopped on a fatal error"); for (;;) {} }
void plat_info(void) {}
void plat_model_failed(void) {}
void plat_prompt_ready(void) {}
