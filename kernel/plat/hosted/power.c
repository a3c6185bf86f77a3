/*
 * power.c - ending the hosted process as the unikernel ends a machine:
 * poweroff exits (status 1 in test mode, as QEMU's isa-debug-exit reports
 * a clean poweroff; 0 otherwise), a failure exits with status 3, reboot
 * re-executes the binary on the same image.  Faults (SIGSEGV, SIGILL,
 * SIGFPE, SIGBUS) are reported like CPU exceptions, then exit with 3.
 * Also the platform's lines of `info` and its boot-time line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "hosted.h"
#include "lib/kprintf.h"
#include "plat/plat.h"
#include "shell/shell.h"

static uint64_t tsc_prompt;

const char *plat_name(void) { return "hosted"; }
int plat_test_mode(void) { return hosted_opt.test; }

void plat_power_off(void)
{
    hosted_console_restore();
    exit(hosted_opt.test ? 1 : 0);
}

void plat_fail_stop(void)
{
    hosted_console_restore();
    _exit(HOSTED_EXIT_FAILURE);
}

void plat_reboot(void)
{
    hosted_console_restore();
    execv("/proc/self/exe", hosted_argv);
    kprintf("reboot: cannot re-execute /proc/self/exe: exiting instead\n");
    exit(HOSTED_EXIT_FAILURE);
}

/* Async-signal-safe report: write(2) only, then _exit. */
static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char msg[160];
    static const char hex[] = "0123456789abcdef";
    uintptr_t a = (uintptr_t)si->si_addr;
    char addr[19] = "0x";
    for (int i = 0; i < 16; i++)
        addr[2 + i] = hex[(a >> (60 - 4 * i)) & 15];
    addr[18] = 0;
    const char *name = sig == SIGSEGV ? "page fault (SIGSEGV)" : sig == SIGILL ? "invalid opcode (SIGILL)" :
                       sig == SIGFPE ? "divide error (SIGFPE)" : "bus error (SIGBUS)";
    size_t n = 0;
    const char *parts[] = { "\n*** CPU exception: ", name, " at address ", addr, " on cpu ",
                            NULL, " ***\nSystem halted.\n" };
    char cpu_s[4] = { (char)('0' + plat_cpu_id() / 10 % 10), (char)('0' + plat_cpu_id() % 10), 0, 0 };
    parts[5] = plat_cpu_id() < 10 ? cpu_s + 1 : cpu_s;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        for (const char *p = parts[i]; *p && n < sizeof msg; p++)
            msg[n++] = *p;
    if (write(STDOUT_FILENO, msg, n) < 0)
        _exit(HOSTED_EXIT_FAILURE);
    hosted_console_restore();
    _exit(HOSTED_EXIT_FAILURE);
}

void hosted_fault_init(void)
{
    static char alt[64 << 10];
    stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt };
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    int sigs[] = { SIGSEGV, SIGILL, SIGFPE, SIGBUS };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

static double ms(uint64_t ticks) { return (double)tsc_to_us(ticks) / 1000.0; }

void plat_info(void)
{
    struct utsname u;
    if (uname(&u) == 0)
        kprintf("host:      %s %s %s\n", u.sysname, u.release, u.machine);
    kprintf("cores:     %d host CPUs, %d worker threads, idle workers wait with %s\n", plat_cpus_present(),
            plat_cpus_online(), plat_wait_mode());
    kprintf("boot:      process start to prompt %.1f ms\n", tsc_prompt ? ms(tsc_prompt - hosted_tsc_start) : 0.0);
}

void plat_model_failed(void)
{
    if (hosted_opt.stay)
        return;
    kprintf("fluid-hosted: no usable model, exiting (--stay keeps the prompt)\n");
    hosted_console_restore();
    exit(HOSTED_EXIT_FAILURE);
}

void plat_prompt_ready(void)
{
    tsc_prompt = rdtsc();
    kprintf("boot: process start to prompt %.1f ms\n", ms(tsc_prompt - hosted_tsc_start));
}

/* No machine-only commands here: `mem` (E820) and `fault` (CPU
 * exceptions) exist only on the pc platform. */
const struct shell_cmd plat_commands[] = {
    { 0 },
};
