#!/usr/bin/env python3
"""`make bench`: Fluid's prefill/decode speed next to llama.cpp's on the same GGUF.

    bench.py build/fluid.img --model file.gguf [--smp N] [--target hosted|qemu] [-p 128] [-n 64] [-r 3]

1. Starts Fluid on the image (which must carry --model) with every host
   core unless --smp says otherwise: hosted (build/fluid-hosted, native
   speed) unless QEMU has usable KVM (hardware speed), or as --target says.
2. Runs -r rounds, each one Fluid's `bench -p P -n N -r 1` at its prompt
   (the llama-bench-like table: ppP and tgN tok/s, and its memory-bandwidth
   line) and then the same file through the peer, node-llama-cpp (prebuilt
   llama.cpp, CPU backend; tools/peer/bench.mjs, installed by
   tools/peer-deps.sh) with the same thread count, measured as llama-bench
   does.  Alternating the two keeps a shared machine's drift out of the
   ratios.
3. Prints min / median / max of each, the ratios Fluid/peer round by
   round (median, min, max), the load average, and last one
   machine-readable line of medians:

   BENCH model=<file> threads=<n> fluid_pp=<tok/s> fluid_tg=<tok/s> peer_pp=<tok/s> peer_tg=<tok/s> pp_ratio=<x> tg_ratio=<x> target=<hosted|qemu>

   Any figure that could not be measured is `null`, with the reason printed
   above it.

In QEMU without KVM (TCG) Fluid's figures are the emulator's, tens to
hundreds of times below the hardware: the script says which target ran.
Python 3 standard library only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
PEER_SCRIPT = os.path.join(HERE, "peer", "bench.mjs")

# ---------------------------------------------------------------- parsing

_ROW = re.compile(
    r"^\|\s*(?P<model>.*?)\s*\|\s*(?P<size>[0-9.]+)\s*GiB\s*\|\s*(?P<cores>\d+)\s*\|"
    r"\s*(?P<test>pp|tg)(?P<n>\d+)\s*\|\s*(?P<mean>[-+0-9.eEnaif]+)\s*\+-\s*(?P<sd>[-+0-9.eEnaif]+)\s*\|\s*$")
_BW = re.compile(
    r"memory read bandwidth\s+(?P<bw>[0-9.]+)\s*GB/s\s*\((?P<bw_cores>\d+)\s*cores?\);\s*"
    r"decode moves\s+(?P<dec>[0-9.]+)\s*GB/s of weights\s*\((?P<pct>[0-9.]+)%")


def parse_fluid_bench(text):
    """Parse the output of Fluid's `bench` command.

    Returns {"model", "size_gib", "cores", "pp": {"n","mean","sd"} | None,
    "tg": ... | None, "bw_gbs", "bw_cores", "decode_gbs", "decode_pct"}
    (the last four None when the bandwidth line is missing).  Raises
    ValueError when the text has an error line or no result row."""
    text = text.replace("\r", "")
    for line in text.split("\n"):
        if line.strip().startswith("error:"):
            raise ValueError("Fluid's bench failed: " + line.strip())
    res = {"model": None, "size_gib": None, "cores": None, "pp": None, "tg": None,
           "bw_gbs": None, "bw_cores": None, "decode_gbs": None, "decode_pct": None}
    for line in text.split("\n"):
        m = _ROW.match(line.strip())
        if m:
            res["model"] = m["model"]
            res["size_gib"] = float(m["size"])
            res["cores"] = int(m["cores"])
            res[m["test"]] = {"n": int(m["n"]), "mean": float(m["mean"]), "sd": float(m["sd"])}
            continue
        m = _BW.search(line)
        if m:
            res["bw_gbs"] = float(m["bw"])
            res["bw_cores"] = int(m["bw_cores"])
            res["decode_gbs"] = float(m["dec"])
            res["decode_pct"] = float(m["pct"])
    if res["pp"] is None and res["tg"] is None:
        raise ValueError("no pp/tg row in Fluid's bench output:\n" + text[-2000:])
    return res


def parse_cpu_line(text):
    """The boot log's `cpu: ... N cores, ...` line: (line, N) or (None, None)."""
    m = re.search(r"^cpu: (.*?(\d+) cores.*)$", text.replace("\r", ""), re.M)
    return (m[1], int(m[2])) if m else (None, None)


def parse_peer_json(text):
    """The peer's stdout: the last line that is a JSON object.
    Returns the dict; raises ValueError when there is none."""
    for line in reversed(text.strip().split("\n")):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON object in the peer's output:\n" + text[-2000:])


def _num(x, fmt):
    if x is None:
        return "null"
    try:
        if x != x or x in (float("inf"), float("-inf")):
            return "null"
    except TypeError:
        return "null"
    return fmt % x


def ratio(a, b):
    """a / b, or None when either is missing or b is not positive."""
    if a is None or b is None or not b > 0 or a != a:
        return None
    return a / b


def bench_line(model, threads, fluid_pp, fluid_tg, peer_pp, peer_tg):
    """The final machine-readable line; None figures print as `null`."""
    model = str(model).replace(" ", "%20")
    return ("BENCH model=%s threads=%s fluid_pp=%s fluid_tg=%s peer_pp=%s peer_tg=%s pp_ratio=%s tg_ratio=%s" % (
        model, threads if threads is not None else "null",
        _num(fluid_pp, "%.2f"), _num(fluid_tg, "%.2f"), _num(peer_pp, "%.2f"), _num(peer_tg, "%.2f"),
        _num(ratio(fluid_pp, peer_pp), "%.3f"), _num(ratio(fluid_tg, peer_tg), "%.3f")))


# ---------------------------------------------------------------- running

def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def oversubscribed(threads):
    """A warning when the host's 1-minute load is above its core count, or None."""
    try:
        load1 = float(loadavg().split()[0])
    except ValueError:
        return None
    cores = os.cpu_count() or 1
    if load1 <= cores + 1:
        return None
    return (f"the host is oversubscribed (load {load1:.1f} on {cores} cores): llama.cpp's threads wait for "
            f"each other at a spinning barrier, so with {threads} threads on a busy host the peer's figures "
            f"can fall far below what this machine does when idle")


class FluidSession:
    """One booted Fluid (hosted process or QEMU) kept for every round."""

    def __init__(self, image, model, target, smp, mem, boot_timeout):
        from fluidvm import boot
        self.vm = boot(image, target=target, mem=mem, smp=smp, boot_timeout=boot_timeout)
        log = self.vm.text().replace("\r", "")
        if "model: loaded" not in log:
            self.close()
            raise ValueError("the image has no usable model (build it with `make image MODEL=...`); boot log:\n"
                             + log[-1500:])
        m = re.search(r"^model: (.+?), \d+ MiB on ", log, re.M)
        if m and model and m[1] != os.path.basename(model):
            print(f"bench: WARNING: the image carries {m[1]}, not {os.path.basename(model)}")
        self.cpu_line, _ = parse_cpu_line(log)
        self.boot_log = log

    def bench(self, p, n, r, timeout):
        line = f"bench -p {p} -n {n} -r {r}"
        print(f"fluid> {line}", flush=True)
        out = self.vm.cmd(line, timeout=timeout)
        sys.stdout.write(out.replace("\r", ""))
        sys.stdout.flush()
        return parse_fluid_bench(out)

    def close(self):
        try:
            self.vm.send("poweroff\r")
            self.vm.wait_exit(10)
        except Exception:
            pass
        self.vm.close()


def run_peer(model, threads, p, n, r, timeout, ctx=0):
    """Run tools/peer/bench.mjs; returns (dict or None, reason or None)."""
    node = shutil.which("node")
    if not node:
        return None, "node (Node.js) is not installed"
    if not os.path.isdir(os.path.join(HERE, "peer", "node_modules", "node-llama-cpp")):
        return None, "node-llama-cpp is not installed in tools/peer (run tools/peer-deps.sh)"
    cmd = [node, PEER_SCRIPT, "--model", os.path.abspath(model), "--threads", str(threads),
           "--pp", str(p), "--tg", str(n), "--reps", str(r), "--ctx", str(ctx)]
    print("peer: " + " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              cwd=os.path.join(HERE, "peer"))
    except subprocess.TimeoutExpired:
        return None, f"the peer did not finish within {timeout} s"
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace").strip()
    try:
        d = parse_peer_json(out)
    except ValueError as e:
        return None, f"the peer exited with status {proc.returncode}: {err[-1500:] or e}"
    if not d.get("ok"):
        return None, d.get("error") or f"the peer exited with status {proc.returncode}"
    return d, None


def stats(xs):
    """(min, median, max) of the figures measured, or None."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs)
    med = xs[k // 2] if k % 2 else (xs[k // 2 - 1] + xs[k // 2]) / 2
    return xs[0], med, xs[-1]


def fmt_stats(st):
    return "not measured" if st is None else "%.2f / %.2f / %.2f" % st


def rss_of(pid):
    """(VmRSS, VmHWM) of a process in bytes, from /proc."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                got[k] = int(v.split()[0]) * 1024
    return got.get("VmRSS"), got.get("VmHWM")


def memory_round(a, session, threads):
    """Resident memory of both engines with the model loaded and a context
    of --memory-ctx tokens: Fluid's hosted process after the rounds (its
    context is the model's, capped by FLUID_CTX_DEFAULT), the peer after a
    short run with that context.  One line of text, or None."""
    parts = []
    if session and hasattr(session.vm, "proc") and session.vm.name.startswith("fluid-hosted"):
        ctx = re.search(r"ctx (\d+)", session.boot_log)
        rss, hwm = rss_of(session.vm.proc.pid)
        parts.append(f"Fluid {rss / 2**20:.0f} MiB resident (peak {hwm / 2**20:.0f}; hosted, n_ctx "
                     f"{ctx[1] if ctx else '?'}, F16 KV)")
    if not a.no_peer:
        peer, err = run_peer(a.model, threads, 16, 16, 1, a.timeout, ctx=a.memory_ctx)
        if peer and peer.get("rss_bytes"):
            parts.append(f"peer {peer['rss_bytes'] / 2**20:.0f} MiB resident (n_ctx {peer.get('context_size')}, "
                         f"F16 KV; node alone {peer['rss_start_bytes'] / 2**20:.0f} MiB of it)")
        elif err:
            parts.append(f"peer not measured: {err}")
    return "memory: " + "; ".join(parts) if parts else None


def choose_target(forced):
    """hosted (native) unless QEMU can run at hardware speed (usable KVM)."""
    from fluidvm import kvm_usable
    if forced:
        return forced
    return "qemu" if kvm_usable() else "hosted"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image")
    ap.add_argument("--model", required=True, help="the GGUF file the image carries (the peer runs it too)")
    ap.add_argument("--smp", type=int, help="Fluid's cores and the peer's threads (default: all host cores)")
    ap.add_argument("--mem", default="3G")
    ap.add_argument("--target", choices=["hosted", "qemu"],
                    help="where Fluid runs (default: QEMU with usable KVM, else hosted)")
    ap.add_argument("-p", type=int, default=128, help="prefill batch (default 128)")
    ap.add_argument("-n", type=int, default=64, help="decode steps (default 64)")
    ap.add_argument("-r", type=int, default=3, help="rounds, Fluid and peer alternating (default 3)")
    ap.add_argument("--boot-timeout", type=float, default=1800)
    ap.add_argument("--timeout", type=float, default=6 * 3600, help="for Fluid's bench command and for the peer")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--ttft", type=int, default=64,
                    help="prompt length of the time-to-first-token test run in every round (0: none)")
    ap.add_argument("--memory-ctx", type=int, default=2048,
                    help="context of the resident-memory comparison after the rounds (0: none)")
    a = ap.parse_args(argv)

    from fluidvm import kvm_usable
    if not os.path.exists(a.image):
        sys.exit(f"bench: {a.image} does not exist (run `make image MODEL=...`)")
    if not os.path.exists(a.model):
        sys.exit(f"bench: {a.model} does not exist")
    threads = a.smp or os.cpu_count() or 1
    target = choose_target(a.target)
    accel = "native" if target == "hosted" else ("kvm" if kvm_usable() else "tcg")
    print(f"bench: model {a.model} ({os.path.getsize(a.model) / 1e9:.2f} GB), {threads} threads, "
          f"pp{a.p} tg{a.n}, {a.r} rounds (Fluid and the peer alternating)")
    if target == "hosted":
        print("bench: Fluid runs hosted (build/fluid-hosted: the same image, modules and kernels as a Linux\n"
              "       process): native speed, like the peer.")
    elif accel == "kvm":
        print("bench: Fluid runs in QEMU under KVM: its figures are this machine's hardware speed.")
    else:
        print("bench: Fluid runs under QEMU TCG: its figures are EMULATOR speed, far below the hardware;\n"
              "       the ratios below are not a comparison of Fluid's code with llama.cpp's.")
    print(f"bench: host load average {loadavg()} (other work on this machine makes all figures noisy)")

    fluid_err, peer_err = None, "skipped (--no-peer)" if a.no_peer else None
    rounds = {"fluid": {"pp": [], "tg": []}, "peer": {"pp": [], "tg": []}}
    ttft = {"fluid": [], "peer": []}     # ms: the prefill of --ttft tokens, whose logits give token 1
    last_fluid, peer_bytes, session = None, None, None
    cpu = None
    try:
        session = FluidSession(a.image, a.model, target, threads, a.mem, a.boot_timeout)
        cpu = session.cpu_line
    except Exception as e:    # BootError, ValueError: report and go on to the peer
        fluid_err = f"{type(e).__name__}: {e}"
        print(f"bench: Fluid could not be measured: {fluid_err}")
    try:
        for i in range(a.r):
            print(f"bench: round {i + 1} of {a.r}; host load average {loadavg()}", flush=True)
            if session:
                try:
                    last_fluid = session.bench(a.p, a.n, 1, a.timeout)
                    for k in ("pp", "tg"):
                        rounds["fluid"][k].append(last_fluid[k]["mean"] if last_fluid.get(k) else None)
                    if a.ttft:
                        t = session.bench(a.ttft, 0, 1, a.timeout)
                        ttft["fluid"].append(1000 * a.ttft / t["pp"]["mean"] if t.get("pp") else None)
                except Exception as e:
                    fluid_err = f"{type(e).__name__}: {e}"
                    print(f"bench: Fluid failed: {fluid_err}")
                    session.close()
                    session = None
            if not a.no_peer and peer_err is None:
                peer, err = run_peer(a.model, threads, a.p, a.n, 1, a.timeout)
                if peer is None:
                    peer_err = err
                    print(f"bench: peer (node-llama-cpp) could not be measured: {peer_err}")
                else:
                    peer_bytes = peer.get("model_bytes")
                    for k in ("pp", "tg"):
                        rounds["peer"][k].append(peer[k]["mean"] if peer.get(k) else None)
                    if a.ttft:
                        t, _ = run_peer(a.model, threads, a.ttft, 0, 1, a.timeout)
                        ttft["peer"].append(1000 * a.ttft / t["pp"]["mean"] if t and t.get("pp") else None)
        mem = memory_round(a, session, threads) if a.memory_ctx else None
    finally:
        if session:
            session.close()
    warn = oversubscribed(threads)
    if warn:
        print(f"bench: WARNING: {warn}")

    st = {e: {k: stats(v) for k, v in d.items()} for e, d in rounds.items()}
    print()
    print("| engine | target | threads | test | t/s min / median / max |")
    print("|---|---|---|---|---|")
    for name, tgt, e in (("Fluid", target if target == "hosted" else f"qemu-{accel}", "fluid"),
                         ("node-llama-cpp 3.22.1", "native", "peer")):
        for k, nn in (("pp", a.p), ("tg", a.n)):
            if nn > 0:
                print(f"| {name} | {tgt} | {threads} | {k}{nn} | {fmt_stats(st[e][k])} |")
    print()
    med = {e: {k: (st[e][k][1] if st[e][k] else None) for k in ("pp", "tg")} for e in st}
    for k, label in (("pp", "prefill pp"), ("tg", "decode tg")):
        pair = [f / p_ for f, p_ in zip(rounds["fluid"][k], rounds["peer"][k]) if f and p_]
        rr, rm = stats(pair), ratio(med["fluid"][k], med["peer"][k])
        print(f"ratio Fluid/peer, {label}: " + (f"{rm:.3f} (of the medians, as in BENCH)" if rm else "n/a")
              + ("; round by round median %.3f, min %.3f, max %.3f over %d rounds" % (rr[1], rr[0], rr[2], len(pair))
                 if rr else ""))
    if a.ttft:
        sf, sp = stats(ttft["fluid"]), stats(ttft["peer"])
        print(f"time to first token, {a.ttft}-token prompt (ms, min / median / max): Fluid "
              f"{fmt_stats(sf)}, peer {fmt_stats(sp)}"
              + (f"; ratio Fluid/peer {sf[1] / sp[1]:.3f} (of the medians)" if sf and sp else ""))
    if mem:
        print(mem)
    if last_fluid and last_fluid.get("bw_gbs") is not None:
        print(f"Fluid decode moves {last_fluid['decode_gbs']:.2f} GB/s of weights against a measured read bandwidth "
              f"of {last_fluid['bw_gbs']:.2f} GB/s ({last_fluid['bw_cores']} cores): {last_fluid['decode_pct']:.0f}% "
              f"of it (last round)")
    if peer_bytes and med["peer"]["tg"]:
        print(f"peer decode moves about {peer_bytes * med['peer']['tg'] / 1e9:.2f} GB/s (weights "
              f"{peer_bytes / 1e9:.2f} GB x {med['peer']['tg']:.2f} tok/s)")
    print(f"Fluid ran {target}" + (f" ({accel}, emulation: not hardware speed)" if accel == "tcg" else f" ({accel})")
          + (f"; {cpu}" if cpu else "") + f"; host load average {loadavg()}")
    print(bench_line(a.model, threads, med["fluid"]["pp"], med["fluid"]["tg"], med["peer"]["pp"],
                     med["peer"]["tg"]) + f" target={target}")
    return 0 if last_fluid else 1


if __name__ == "__main__":
    sys.exit(main())
