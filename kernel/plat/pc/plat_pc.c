/* plat_pc.c - the pc platform behind plat/plat.h: each call handed to the
 * driver or subsystem that does it on a bare machine (or under QEMU). */
#include <stdio.h>
#include "arch/x86/cpu.h"
#include "boot.h"
#include "dev/acpi.h"
#include "dev/blk.h"
#include "dev/console.h"
#include "dev/fwcfg.h"
#include "dev/power.h"
#include "lib/kprintf.h"
#include "mm/phys.h"
#include "mod/pmu.h"
#include "pmu_pc.h"
#include "plat/common/pfor.h"
#include "plat/plat.h"
#include "smp/smp.h"
#include "x86/io.h"
#include "x86/percpu.h"

const char *plat_name(void) { return "pc"; }

void plat_console_write(const char *s, size_t n) { console_write(s, n); }
int plat_console_poll(void) { return console_poll(); }
int plat_console_getc(void) { return console_getc(); }
void plat_console_eof(void) {}

struct blkdev *plat_boot_disk(void) { return blk_find_boot_disk(); }
const struct fluid_image_header *plat_image(void) { return &boot->image; }

const void *plat_modules_region(uint64_t *bytes)
{
    /* Stage 2 loaded it at FLUID_MODULES_LOAD and checked its CRC. */
    *bytes = boot->image.region[FLUID_REGION_MODULES].bytes;
    return *bytes ? (const void *)(uintptr_t)FLUID_MODULES_LOAD : NULL;
}

int plat_cpus_online(void) { return smp_online(); }
int plat_cpus_present(void) { return acpi.n_cpus > 0 ? acpi.n_cpus : 1; }
int plat_cpu_ids(void) { return smp_cpu_ids(); }
int plat_cpu_id(void) { return (int)this_cpu()->id; }
const char *plat_wait_mode(void) { return smp_wait_mode(); }

void plat_parallel_for(int n_items, plat_fn fn, void *ctx)
{
    pfor_run(this_cpu()->id, n_items, fn, ctx);
}

void *plat_alloc(uint64_t bytes, uint64_t align)
{
    return (void *)(uintptr_t)phys_alloc(&kphys, bytes, align < PHYS_PAGE ? PHYS_PAGE : align);
}

void plat_free(void *p, uint64_t bytes)
{
    if (p)
        phys_free(&kphys, (uint64_t)(uintptr_t)p, bytes);
}

void plat_mem_stats(struct plat_mem *m)
{
    m->usable = kphys.usable_bytes;
    m->free = phys_free_bytes(&kphys);
    m->largest = phys_largest_free(&kphys);
}

/* Memory is identity-mapped once by stage 2 with large pages, readable,
 * writable and executable: the pc platform checks each module's SHA-256
 * before its first call but does not yet enforce W^X in its page tables
 * (ROADMAP). */
void *plat_code_alloc(uint64_t bytes) { return plat_alloc(bytes, PHYS_PAGE); }
int plat_code_seal(void *p, uint64_t text_bytes, uint64_t bytes)
{
    (void)p, (void)text_bytes, (void)bytes;
    return 0;
}
void plat_code_free(void *p, uint64_t bytes) { plat_free(p, bytes); }

void plat_pmu_init(void) { pmu_init(); }

void plat_pmu_read(uint64_t v[PMU_EVENTS])
{
    for (int i = 0; i < PMU_EVENTS; i++) {
        if (pmu.counter[i] < 0) {
            v[i] = 0;
            continue;
        }
        uint32_t lo, hi;
        __asm__ volatile("rdpmc" : "=a"(lo), "=d"(hi) : "c"((uint32_t)pmu.counter[i]));
        v[i] = ((uint64_t)hi << 32) | lo;
    }
}

int plat_boot_ctx_size(void)
{
    char buf[16];
    if (fwcfg_read_file("opt/fluid/ctx-size", buf, sizeof buf) <= 0)
        return -1;
    long n = 0;
    for (const char *p = buf; *p; p++) {
        if (*p < '0' || *p > '9' || n > (1L << 30)) {
            kprintf("boot: opt/fluid/ctx-size '%s' is not a number of tokens; ignored\n", buf);
            return -1;
        }
        n = n * 10 + (*p - '0');
    }
    return (int)n;
}

int plat_test_mode(void) { return power_test_mode(); }
void plat_power_off(void) { power_off(); }
void plat_reboot(void) { power_reboot(); }
void plat_fail_stop(void) { power_fail_stop(); }

static double ms(uint64_t from, uint64_t to)
{
    return to > from ? (double)tsc_to_us(to - from) / 1000.0 : 0.0;
}

void plat_info(void)
{
    kprintf("cores:     %d found (ACPI MADT), %d online, idle workers wait with %s\n",
            plat_cpus_present(), smp_online(), smp_wait_mode());
    kprintf("boot:      stage 2 %.1f ms, kernel to prompt %.1f ms, stage 2 to prompt %.1f ms\n",
            ms(boot_times.stage2, boot_times.stage2_done),
            ms(boot_times.kernel, boot_times.prompt),
            ms(boot_times.stage2, boot_times.prompt));
}

void plat_model_failed(void) {}

void plat_prompt_ready(void)
{
    boot_times.prompt = rdtsc();
    kprintf("boot: stage 2 to prompt %.1f ms (stage 2 %.0f ms, kernel %.0f ms)\n",
            ms(boot_times.stage2, boot_times.prompt), ms(boot_times.stage2, boot_times.stage2_done),
            ms(boot_times.kernel, boot_times.prompt));
}
