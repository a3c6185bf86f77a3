#!/usr/bin/env python3
"""`make roofline`: where decode and prefill time goes, per module (issue 9).

    roofline.py IMAGE [--smp N] [-n 64] [-p 128] [--bw GBS] [--peak GOPS]

Boots IMAGE hosted (build/fluid-hosted, native), runs two workloads with
the profiler on, each after `prof reset`:

  decode   `gen -n N` greedy from a 1-token prompt: per generated token
  prefill  `bench -p P -n 0 -r 1`: per prompt token

and prints, per op, a Markdown table (then the measured tok/s against
the module time: what the modules do not account for): CPU cycles per token (summed over
all CPUs), the op's share, GB/s of bytes touched and % of
the measured read bandwidth, GOP/s (2 per multiply-add) and % of the
integer peak, and what limits it by those two figures.  Wall time is the
busiest CPU's cycles over the TSC rate.

Bandwidth: `build/tools/mmbench bw -t N` (AVX2 loads over 1 GiB, best of
5) unless --bw gives it.  Peak: --peak, or measured by `mmbench peak -t
N` (independent 512-bit vpdpbusd, 64 byte products each, on an AVX-512
VNNI CPU, else vpmaddubsw, 32: chosen at run time, on every CPU, at the
clock the cores really run, boost included).
Python 3 standard library only.
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fluidvm  # noqa: E402
from pgo_capture import PROF_END, extract_profile  # noqa: E402


def capture(vm, line, timeout):
    vm.cmd("prof reset")
    out = vm.cmd(line, timeout=timeout)
    vm.send("prof export\r")
    vm.wait_for(PROF_END, timeout=120)
    vm.wait_for("fluid> ", timeout=30)
    text = vm.text()
    prof = extract_profile(text[text.rfind("prof export"):])
    return out, prof


def mmbench_best(exe, what, unit, threads):
    """The best figure of `mmbench bw` (GB/s) or `mmbench peak` (GOP/s)."""
    out = subprocess.run([exe, what, "-t", str(threads)], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"([0-9.]+) " + unit + " best", out).group(1))


def table(prof, tokens, bw, peak, what, measured=None):
    hz = prof["cpu"]["tsc_hz"]
    cpus = prof["cpu"]["cores"]
    ops = [o for o in prof["modules"] if o["calls"]]
    total = sum(o["cycles"] for o in ops)
    rows = []
    print(f"| op | variant | cycles/token | share | GB/s | % of {bw:.1f} GB/s | GOP/s | % of {peak:.0f} GOP/s | limit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for o in sorted(ops, key=lambda o: -o["cycles"]):
        # wall time: the busiest CPU's cycles (single-CPU ops run on CPU 0)
        wall = max([c["cycles"] for c in o.get("per_cpu") or []] or [o["cycles"] / cpus]) / hz
        gbs = o["bytes"] / wall / 1e9 if wall else 0.0
        gops = o["flops"] / wall / 1e9 if wall else 0.0
        pb, pc = 100 * gbs / bw, 100 * gops / peak
        limit = "memory" if pb >= 60 else ("compute" if pc >= 30 else "latency / overhead")
        if not o["op"].startswith("mm_"):
            limit = "small op" if o["cycles"] < 0.02 * total else "latency / overhead"
        rows.append(o)
        # a decode run's one-token calls ran the op's decode build (a tuned choice, if any)
        run = (o.get("decode_variant", o["variant"]), o.get("decode_march", o["march"])) if what == "decode" \
            else (o["variant"], o["march"])
        print(f"| {o['op']} | {run[0]} {run[1]} | {o['cycles'] / tokens:,.0f} | "
              f"{100 * o['cycles'] / total:.1f}% | {gbs:.1f} | {pb:.0f}% | {gops:.1f} | {pc:.0f}% | {limit} |")
    busy = tokens / (total / cpus / hz)
    print(f"| total | | {total / tokens:,.0f} | 100% | | | | | {what}: "
          f"{busy:.1f} tok/s of module time |")
    if measured:
        print(f"\n{what} measured {measured:.2f} tok/s: {100 * (1 - measured / busy):.0f}% of the wall time is "
              f"outside the modules (fork-join waits, imbalance, the engine's own code)")
    return busy


def measured_rate(out, key):
    """tok/s that `gen` ([prompt: ... | generated: N tokens, X tok/s]) or
    `bench` (| ... | ppN | X +- sd |) printed; None if absent."""
    if key == "gen":
        m = re.search(r"generated: \d+ tokens, ([0-9.]+) tok/s", out)
    else:
        m = re.search(r"\| pp\d+ \| ([0-9.]+) \+-", out)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image")
    ap.add_argument("--smp", type=int, default=None)
    ap.add_argument("--mem", default="3G")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("--bw", type=float, default=None)
    ap.add_argument("--peak", type=float, default=None)
    ap.add_argument("--mmbench", default=os.path.join(HERE, "..", "build", "tools", "mmbench"),
                    help="the mmbench that measures bandwidth and peak (make roofline: $(B)/tools/mmbench)")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    vm = fluidvm.boot(a.image, target="hosted", mem=a.mem, smp=a.smp)
    try:
        dec_out, dec = capture(vm, f"gen -n {a.n} --temp 0 --seed 1 Hello", a.timeout)
        # bench runs a warm-up prefill of min(P, 8) tokens first (cmd_bench.c)
        pre_out, pre = capture(vm, f"bench -p {a.p} -n 0 -r 1", a.timeout)
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    cpus = dec["cpu"]["cores"]
    bw = a.bw or mmbench_best(a.mmbench, "bw", "GB/s", cpus)
    if a.peak:
        peak, how = a.peak, "--peak"
    else:   # mmbench picks 512-bit vpdpbusd on an AVX-512 VNNI CPU, else vpmaddubsw
        peak, how = mmbench_best(a.mmbench, "peak", "GOP/s", cpus), "measured by mmbench peak"
    load = os.getloadavg()
    print(f"CPU {dec['cpu']['brand']} ({dec['cpu']['tag']}), {cpus} CPUs, TSC "
          f"{dec['cpu']['tsc_hz'] / 1e6:.0f} MHz; read bandwidth {bw:.1f} GB/s ({cpus} threads); int8 peak "
          f"{peak:.0f} GOP/s ({how}); load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(f"Decode ({a.n} tokens, per generated token):\n")
    table(dec, a.n, bw, peak, "decode", measured_rate(dec_out, "gen"))
    print(f"\nPrefill (pp{a.p}, per prompt token):\n")
    table(pre, a.p + min(a.p, 8), bw, peak, "prefill", measured_rate(pre_out, "bench"))


if __name__ == "__main__":
    main()
