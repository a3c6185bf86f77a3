/*
 * pmu.c - PMU counters for the hosted platform through Linux's
 * perf_event_open(2): one group per thread (instructions as the leader,
 * then cycles, LLC misses, branch misses; user space only, so an
 * unprivileged process may count itself under perf_event_paranoid 2),
 * read with read(2) and PERF_FORMAT_GROUP.  Where the host has no PMU (a
 * VM without one: ENOENT) or forbids it, the counters are reported absent
 * with the reason, as the unikernel reports a machine without counters.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "hosted.h"
#include "lib/kprintf.h"
#include "mod/pmu.h"
#include "plat/plat.h"

static const uint64_t event_config[PMU_EVENTS] = {
    [PMU_INSTRUCTIONS] = PERF_COUNT_HW_INSTRUCTIONS,
    [PMU_CYCLES] = PERF_COUNT_HW_CPU_CYCLES,
    [PMU_LLC_MISSES] = PERF_COUNT_HW_CACHE_MISSES,
    [PMU_BRANCH_MISSES] = PERF_COUNT_HW_BRANCH_MISSES,
};

static __thread int fd[PMU_EVENTS] = { -1, -1, -1, -1 };
static __thread int leader = -1;

static int open_event(int e, int group)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = event_config[e];
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    a.read_format = PERF_FORMAT_GROUP;
    return (int)syscall(SYS_perf_event_open, &a, 0, -1, group, 0);
}

/* Open this thread's group with the events the first thread could open. */
void hosted_pmu_thread_init(void)
{
    if (!pmu.available)
        return;
    for (int e = 0; e < PMU_EVENTS; e++) {
        if (pmu.counter[e] < 0)
            continue;
        fd[e] = open_event(e, leader);
        if (leader < 0)
            leader = fd[e];
    }
}

void plat_pmu_init(void)
{
    int first = -1;
    for (int e = 0; e < PMU_EVENTS; e++) {
        int f = open_event(e, first < 0 ? -1 : fd[first]);
        if (f < 0 && first < 0 && e == PMU_INSTRUCTIONS) {
            snprintf(pmu.why, sizeof pmu.why, "perf_event_open: %s%s", strerror(errno),
                     errno == ENOENT || errno == EOPNOTSUPP ? " (no hardware counters on this host)" : "");
            kprintf("pmu: none (%s); profiles report \"pmu\": null\n", pmu.why);
            return;
        }
        fd[e] = f;
        pmu.counter[e] = f >= 0 ? e : -1;
        if (f >= 0 && first < 0)
            first = e;
    }
    leader = fd[first];
    pmu.available = 1;
    pmu.kind = "perf_event";
    pmu.n_counters = 0;
    char ev[96];
    int len = 0;
    for (int e = 0; e < PMU_EVENTS; e++)
        if (pmu.counter[e] >= 0) {
            pmu.n_counters++;
            len += snprintf(ev + len, sizeof ev - (size_t)len, "%s%s", len ? " " : "", pmu_event_name(e));
        }
    pmu_active = 1;
    kprintf("pmu: perf_event, %d counters; counting %s\n", pmu.n_counters, ev);
}

void plat_pmu_read(uint64_t v[PMU_EVENTS])
{
    /* PERF_FORMAT_GROUP: nr, then one value per member in open order. */
    uint64_t buf[1 + PMU_EVENTS] = { 0 };
    for (int e = 0; e < PMU_EVENTS; e++)
        v[e] = 0;
    if (leader < 0 || read(leader, buf, sizeof buf) < (ssize_t)sizeof(uint64_t))
        return;
    uint64_t k = 0;
    for (int e = 0; e < PMU_EVENTS && k < buf[0]; e++)
        if (fd[e] >= 0)
            v[e] = buf[1 + k++];
}
