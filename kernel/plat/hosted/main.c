/*
 * main.c - fluid-hosted: boot a Fluid image as a Linux process.
 *
 *   fluid-hosted [--test] [--stay] [--threads N] [--mem SIZE] [-c N] [--cpu TAG] IMAGE
 *
 * The same image file the unikernel boots (build/fluid.img): its header
 * and boot regions are checked as stage 2 checks them, its MODULES region
 * and PGO cache are loaded with the same checks (magic, ABI, SHA-256,
 * CPUID features; code mapped read+execute only after copying), its model
 * region is read and checked by the same core code, and the same `fluid>`
 * prompt runs on the terminal.  Set-up order mirrors plat/pc/main.c:
 * console, CPU, TSC, memory, workers, then fluid_start().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "fluid_start.h"
#include "hosted.h"
#include "lib/kprintf.h"
#include "mod/modfmt.h"
#include "plat/plat.h"

struct hosted_options hosted_opt = { .ctx_size = -1 };
char **hosted_argv;
uint64_t hosted_tsc_start;

static void usage(void)
{
    fprintf(stderr,
            "usage: fluid-hosted [--test] [--stay] [--threads N] [--mem SIZE] [-c N] [--cpu TAG] IMAGE\n"
            "  IMAGE        a Fluid disk image (make image [MODEL=file.gguf])\n"
            "  --threads N  worker threads (default: every CPU this process may use)\n"
            "  --mem SIZE   memory budget, e.g. 3G or 512M (default: MemAvailable)\n"
            "  -c, --ctx-size N  context size in tokens, up to the model's context_length\n"
            "               (0: context_length; default: context_length, at most 2048)\n"
            "  --cpu TAG    run as a CPU with only the instruction sets of TAG (x86-64,\n"
            "               x86-64-v2, -v3, -v4, -v4+vnni, -v4+vnni+bf16): the modules,\n"
            "               CRC and tag that CPU would get, e.g. the tag QEMU's TCG guest has\n"
            "  --stay       keep the prompt when the model does not load\n"
            "  --test       test mode: poweroff exits 1, a failure 3 (as QEMU's isa-debug-exit)\n");
    exit(HOSTED_EXIT_USAGE);
}

int plat_boot_ctx_size(void) { return hosted_opt.ctx_size; }

/* "3G", "512M", "65536K", "1048576": bytes, or 0 if malformed. */
static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    int shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10, end++;
    else if (*end == 'M' || *end == 'm') shift = 20, end++;
    else if (*end == 'G' || *end == 'g') shift = 30, end++;
    if (*end || v > (~0ull >> shift))
        return 0;
    return (uint64_t)v << shift;
}

/* MemAvailable from /proc/meminfo (bytes), or 1 GiB if unreadable. */
static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb ? (uint64_t)kb << 10 : 1ull << 30;
}

/* The TSC frequency: CPUID where it tells, else 10 ms against
 * CLOCK_MONOTONIC_RAW (median of three, as the PIT on pc; nanosecond
 * clocks make 10 ms good to about 1e-5). */
static void tsc_init(void)
{
    if (tsc_hz_from_cpuid() == 0)
        return;
    uint64_t f[3];
    for (int i = 0; i < 3; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC_RAW, &a);
        uint64_t t0 = rdtsc(), ns;
        do {
            clock_gettime(CLOCK_MONOTONIC_RAW, &b);
            ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
        } while (ns < 10000000ull);
        f[i] = (uint64_t)((unsigned __int128)(rdtsc() - t0) * 1000000000u / ns);
    }
    uint64_t lo = f[0] < f[1] ? f[0] : f[1], hi = f[0] < f[1] ? f[1] : f[0];
    cpu.tsc_hz = f[2] < lo ? lo : f[2] > hi ? hi : f[2];
    cpu.tsc_source = "calibrated against CLOCK_MONOTONIC_RAW";
}

/* --cpu TAG: keep the tag's instruction sets and the non-ISA bits; a tag
 * this CPU cannot run is refused (it would only fault later). */
static void restrict_cpu(const char *tag)
{
    uint64_t m;
    if (modfmt_tag_features(tag, &m) != 0) {
        fprintf(stderr, "fluid-hosted: --cpu '%s' is not a CPU tag (x86-64, x86-64-v2..v4, +vnni, +bf16)\n", tag);
        exit(HOSTED_EXIT_USAGE);
    }
    if (m & ~cpu.features) {
        char names[256];
        modfmt_feature_names(m & ~cpu.features, names, sizeof names);
        fprintf(stderr, "fluid-hosted: --cpu %s needs %s, which this CPU (tag %s) lacks\n", tag, names, cpu.tag);
        exit(HOSTED_EXIT_FAILURE);
    }
    cpu_restrict(m | FLUID_FEAT_NON_ISA);
}

int main(int argc, char **argv)
{
    hosted_tsc_start = rdtsc();
    hosted_argv = argv;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--test"))
            hosted_opt.test = 1;
        else if (!strcmp(a, "--stay"))
            hosted_opt.stay = 1;
        else if (!strcmp(a, "--threads") && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > FLUID_MAX_CPUS) {
                fprintf(stderr, "fluid-hosted: --threads takes 1..%d\n", FLUID_MAX_CPUS);
                return HOSTED_EXIT_USAGE;
            }
            hosted_opt.threads = (int)n;
        } else if (!strcmp(a, "--mem") && i + 1 < argc) {
            if (!(hosted_opt.mem_bytes = parse_size(argv[++i]))) {
                fprintf(stderr, "fluid-hosted: --mem takes a size such as 3G or 512M\n");
                return HOSTED_EXIT_USAGE;
            }
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || n < 0 || n > (1L << 30)) {
                fprintf(stderr, "fluid-hosted: %s takes a number of tokens (0: the model's context_length)\n", a);
                return HOSTED_EXIT_USAGE;
            }
            hosted_opt.ctx_size = (int)n;
        } else if (!strcmp(a, "--cpu") && i + 1 < argc) {
            hosted_opt.cpu_tag = argv[++i];
        } else if (a[0] == '-' || hosted_opt.image)
            usage();
        else
            hosted_opt.image = a;
    }
    if (!hosted_opt.image)
        usage();
    hosted_fault_init();
    if (hosted_image_open(hosted_opt.image) != 0)
        return HOSTED_EXIT_FAILURE;
    hosted_console_init();
    kprintf("Fluid hosted: %s\n", hosted_opt.image);
    uint32_t r[4];
    cpuid(1, 0, r);
    cpu_detect((r[2] >> 27) & 1 ? xgetbv(0) : 3);   /* OSXSAVE: what Linux enabled */
    if (hosted_opt.cpu_tag)
        restrict_cpu(hosted_opt.cpu_tag);
    tsc_init();
    hosted_mem_init(hosted_opt.mem_bytes ? hosted_opt.mem_bytes : mem_available());
    struct plat_mem m;
    plat_mem_stats(&m);
    kprintf("memory: %llu MiB budget (%s)\n", (unsigned long long)(m.usable >> 20),
            hosted_opt.mem_bytes ? "--mem" : "MemAvailable");
    hosted_cpus_init(hosted_opt.threads);
    kprintf("cpu: %s family 0x%x model 0x%x, x86-64-v%d, tag %s, %d cores, TSC %llu MHz (%s)%s\n", cpu.vendor,
            cpu.family, cpu.model, cpu.level, cpu.tag, plat_cpus_present(), (unsigned long long)(cpu.tsc_hz / 1000000),
            cpu.tsc_source, hosted_opt.cpu_tag ? ", instruction sets limited by --cpu" : "");
    if (hosted_opt.test)
        kprintf("test mode: on\n");
    fluid_start();
}
