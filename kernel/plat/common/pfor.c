/* pfor.c - the lock-free parallel-for (see pfor.h). */
#include "plat/common/pfor.h"
#include "arch/x86/insn.h"

/*
 * `word` holds the generation (high 32 bits: bumped by CPU 0 for every
 * job), the job's chunk count (bits 16-31) and the next unclaimed chunk
 * (bits 0-15).  A CPU claims chunk k < C of generation g with a
 * compare-exchange (g, C, k) -> (g, C, k + 1), and only then reads fn, ctx
 * and n.  The count must be in the word: a worker that read the word of
 * job g (all chunks claimed) and then fn/ctx/C while CPU 0 was already
 * writing job g + 1's would otherwise see k < C and claim a chunk that does
 * not exist, with a compare-exchange that still succeeds (the word is
 * still g's), run the new job's fn on it twice and count one chunk too
 * many, so CPU 0 waits forever (tests/host/pfor_stress.c reproduced both).
 * After a successful claim the fields are g's: CPU 0 wrote them before it
 * published g, and rewrites them only once every chunk of g, this one
 * too, is done.  word and the fields share one cache line (what a waking
 * worker reads); `done`, written by every CPU, has its own.
 */
static struct {
    _Alignas(64) _Atomic uint64_t word;
    _Atomic(plat_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int n;
    _Alignas(64) _Atomic int done;        /* chunks finished */
    _Alignas(64) int busy;                /* CPU 0 only: a job is running */
    uint32_t gen;                         /* CPU 0 only: last generation */
} job;

_Atomic uint64_t *const pfor_word = &job.word;

/* Bit i set: the CPU with per-CPU id i sleeps and needs a wake-up. */
static _Alignas(64) _Atomic uint64_t sleepers;

static struct pfor_hooks hooks;
static uint64_t spin_ticks;
static int n_workers = 1;
static int worker_of[PFOR_MAX_CPUS];     /* per-CPU id -> worker index */

/* Chunks per worker and job: more than one, so a CPU that the host (or an
 * interrupt) holds up leaves its later chunks to the others instead of
 * keeping them all waiting at the end of the job. */
#define PFOR_CHUNKS_PER_WORKER 4
_Static_assert(PFOR_MAX_CPUS * PFOR_CHUNKS_PER_WORKER <= 0xffff, "the chunk count fits its 16 bits of the word");

static inline uint32_t gen_of(uint64_t word) { return (uint32_t)(word >> 32); }
static inline uint32_t chunks_of(uint64_t word) { return (uint32_t)(word >> 16) & 0xffffu; }
static inline uint32_t next_of(uint64_t word) { return (uint32_t)word & 0xffffu; }

/* Chunk w of W over [0, n): [n*w/W, n*(w+1)/W). */
static int chunk_edge(int n, int w, int W)
{
    return (int)((int64_t)n * w / W);
}

void pfor_setup(const struct pfor_hooks *h, uint64_t ticks)
{
    hooks = *h;
    spin_ticks = ticks;
}

int pfor_add_worker(uint32_t id)
{
    worker_of[id] = n_workers;
    return n_workers++;
}

int pfor_workers(void) { return n_workers; }

uint32_t pfor_claimed(void) { return next_of(atomic_load_explicit(&job.word, memory_order_acquire)); }

/* Wait until the generation in job.word differs from `seen`: spin, but
 * sleep once no job came for spin_ticks, so an idle machine (the prompt)
 * does not keep every core busy.  No wake-up is lost: the worker sets its
 * bit in `sleepers` before it re-reads job.word, CPU 0 writes job.word
 * before it reads `sleepers` (both sequentially consistent), so at least
 * one sees the other; the sleep hook re-checks the generation itself. */
static void wait_change(uint32_t seen, uint32_t id)
{
    uint64_t since = rdtsc();             /* idle since (the end of our last job) */
    for (uint32_t i = 1;; i++) {
        uint64_t w = atomic_load_explicit(&job.word, memory_order_acquire);
        if (gen_of(w) != seen)
            return;
        if (i % 256 == 0 && rdtsc() - since > spin_ticks) {
            atomic_fetch_or(&sleepers, 1ull << id);
            if (gen_of(atomic_load(&job.word)) == seen)
                hooks.sleep(&job.word, seen);
            atomic_fetch_and(&sleepers, ~(1ull << id));
            since = rdtsc();
            continue;
        }
        hooks.spin(&job.word, w);
    }
}

/* Claim and run chunks of generation `gen` until none is left; `w` is
 * the caller's worker index (fn's worker argument). */
static void run_chunks(uint32_t gen, int w)
{
    uint64_t cur = atomic_load_explicit(&job.word, memory_order_acquire);
    for (;;) {
        uint32_t k = next_of(cur), C = chunks_of(cur);
        if (gen_of(cur) != gen || k >= C)
            return;                       /* a newer job, or all claimed */
        if (!atomic_compare_exchange_weak_explicit(&job.word, &cur, cur + 1,
                                                   memory_order_acquire, memory_order_acquire))
            continue;                     /* cur reloaded: try again */
        plat_fn fn = atomic_load_explicit(&job.fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&job.ctx, memory_order_relaxed);
        int n = atomic_load_explicit(&job.n, memory_order_relaxed);
        int b = chunk_edge(n, (int)k, (int)C), e = chunk_edge(n, (int)k + 1, (int)C);
        if (b < e)
            fn(ctx, b, e, w);
        atomic_fetch_add_explicit(&job.done, 1, memory_order_release);
        cur = atomic_load_explicit(&job.word, memory_order_acquire);
    }
}

void pfor_worker_loop(uint32_t id)
{
    uint32_t seen = gen_of(atomic_load(&job.word));
    for (;;) {
        wait_change(seen, id);
        seen = gen_of(atomic_load_explicit(&job.word, memory_order_acquire));
        run_chunks(seen, worker_of[id]);
    }
}

void pfor_run(uint32_t caller_id, int n_items, plat_fn fn, void *ctx)
{
    if (n_items <= 0)
        return;
    int W = n_workers;
    if (W == 1 || job.busy || caller_id != 0) {
        fn(ctx, 0, n_items, worker_of[caller_id]);
        return;
    }
    job.busy = 1;
    atomic_store_explicit(&job.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&job.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&job.n, n_items, memory_order_relaxed);
    const int C = n_items < W * PFOR_CHUNKS_PER_WORKER ? n_items : W * PFOR_CHUNKS_PER_WORKER;
    atomic_store_explicit(&job.done, 0, memory_order_relaxed);
    uint32_t gen = ++job.gen;
    atomic_store(&job.word, (uint64_t)gen << 32 | (uint64_t)C << 16);   /* go (seq_cst: see wait_change) */
    uint64_t sl = atomic_load(&sleepers);
    if (sl)
        hooks.wake(sl);
    run_chunks(gen, 0);
    while (atomic_load_explicit(&job.done, memory_order_acquire) != C)
        hooks.relax();
    job.busy = 0;
}
