#!/usr/bin/python3
"""Build, seed and run the load-path fuzzer (tests/host/load_fuzz.c).

    fuzzload.py seeds DIR                 write the seed corpus into DIR
    fuzzload.py campaign [--runs N] [--jobs J] [--seconds S] [--corpus DIR] [--isa v3|base]
                                          a libFuzzer campaign (make fuzz) of N executions
                                          in all (default 10^7) over J jobs: the corpus
                                          DIR (default build/fuzz/corpus) grows across
                                          campaigns; crashes go to build/fuzz/artifacts/
    fuzzload.py run FILE...               run inputs once each (reproduce a crash)

The fuzzer is libFuzzer (clang-19 -fsanitize=fuzzer,address,undefined) over
the kernel core on tests/host/fuzz_plat.c; the compute modules are linked in,
built as the image's per-ISA modules are (-O2 -march=x86-64-v3, or the
-O1 -march=x86-64 baseline with --isa base) with ASan and UBSan but without
coverage instrumentation (their loops do not depend on the input's
structure, and tracing every compare in them cost 3x the executions).

Seeds (all small; see write_seeds): tools/make_model.py's micro models in
every supported file type; llama.cpp's own files from ../shared/testdata/
llamacpp cut down to a few layers, rows and tokens (their metadata as
llama.cpp wrote it, their quantized blocks as llama-quantize wrote them),
and their first 64 KiB; tests/host/make_bad_gguf.py's tiny cases; images of
a model with each kind of region CRC (fuzz_image.c), whole and truncated.
Regression inputs (every crash the fuzzer found, minimized) live in
tests/host/fuzz/regress/ and join every run.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(ROOT / "tools"))

import hostbuild  # noqa: E402

DICT = HERE / "fuzz" / "load.dict"
REGRESS = HERE / "fuzz" / "regress"
SHARED = Path(os.environ.get("FLUID_SHARED", ROOT.parent / "shared")) / "testdata" / "llamacpp"
FUZZ_DIR = ROOT / "build" / "fuzz"

CORE = ["tests/host/load_fuzz.c", "tests/host/fuzz_plat.c", "tests/host/fuzz_image.c",
        "kernel/plat/hosted/image_check.c",
        *[f"kernel/core/llm/{f}.c" for f in ("model", "gguf", "llama_model", "tokenizer", "engine",
                                           "session", "sampler", "repack")],
        "kernel/core/mod/optab.c", "kernel/core/mod/pmu.c", "kernel/core/lib/kprintf.c",
        "kernel/core/lib/crc32_fast.c", "kernel/arch/x86/cpu.c"]
# Every module but the run-time (load_fuzz.c stands in for modrt.c): the
# fuzzer finds each op's function by its name.
MODULES = sorted(p.stem for p in (ROOT / "modules").glob("*.c") if p.stem != "modrt")
MODULE_HEADERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "modules").glob("*.h"))
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
# as the Makefile builds the image's modules (ISA_FLAGS_v3 / the baseline)
ISA = {"v3": ["-O2", "-march=x86-64-v3"], "base": ["-O1", "-march=x86-64"]}
V3_CPU_FLAGS = {"avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"}
# Longest input: above the largest seed (micro F32, 313 KB; llama.cpp's
# K-quant files cut down, ~250 KB).
MAX_LEN = 384 << 10
# libFuzzer options of every run.  -rss_limit_mb: the kernel's own memory
# is FUZZ_MEM_BUDGET (64 MiB) plus ASan's shadow and quarantine.
BASE_OPTS = ["-max_len=%d" % MAX_LEN, "-rss_limit_mb=2048", "-timeout=10", "-dict=%s" % DICT,
             "-print_final_stats=1"]
BAD = ("ERROR: libFuzzer", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
       "check failed", "fuzz_plat:", "load_fuzz:")


def cpu_has_v3():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return V3_CPU_FLAGS <= set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return False


def default_isa():
    return "v3" if cpu_has_v3() else "base"


# ---------------------------------------------------------------------------
# building

def _stale(out, sources):
    return not out.exists() or out.stat().st_mtime < hostbuild._newest_input(
        [str(ROOT / s) for s in sources])


def build_fuzzer(isa=None):
    """build/host/load_fuzz_<isa>: the modules as objects (sanitizers, no
    coverage), then the core with -fsanitize=fuzzer linked to them."""
    isa = isa or default_isa()
    out = hostbuild.OUT / f"load_fuzz_{isa}"
    objdir = hostbuild.OUT / f"load_fuzz_{isa}.mod"
    objdir.mkdir(parents=True, exist_ok=True)
    objs = []
    for m in MODULES:
        src, obj = f"modules/{m}.c", objdir / f"{m}.o"
        if _stale(obj, [src, *MODULE_HEADERS]):
            subprocess.run([hostbuild.CC, *hostbuild.BASE_FLAGS, *ISA[isa], "-ffp-contract=off", *SAN,
                            "-c", str(ROOT / src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    if _stale(out, CORE + [f"modules/{m}.c" for m in MODULES] + MODULE_HEADERS):
        subprocess.run([hostbuild.CC, *hostbuild.BASE_FLAGS, "-fsanitize=fuzzer,address,undefined",
                        "-fno-sanitize-recover=all", "-rdynamic", "-o", str(out), *[str(ROOT / s) for s in CORE],
                        *objs, "-lm", "-ldl"], check=True)
    return out


def build_image_tool():
    return hostbuild.build("fuzz_image", ["tests/host/fuzz_image.c", "kernel/core/lib/crc32_fast.c"],
                           ["-DFUZZ_IMAGE_MAIN"])


# ---------------------------------------------------------------------------
# seeds

def shrink_gguf(src, dst, n_vocab, n_layer, n_embd, n_head, n_head_kv, n_ff, tied=False):
    """Cut a llama GGUF file down to a smaller model of the same kind: the
    first n_vocab tokens, the first n_layer blocks, and of every tensor the
    first rows and whole blocks of columns its new shape keeps (heads are
    rows grouped by head, so the first heads stay whole; head_dim and the
    RoPE dimension stay).  Keys in the source's order with its value types;
    tied=True drops output.weight.  Returns dst."""
    from gguf import GGUFReader, GGUFWriter, GGML_TYPES
    r = GGUFReader(src)
    kv = r.kv
    E0, F0, L0 = kv["llama.embedding_length"], kv["llama.feed_forward_length"], kv["llama.block_count"]
    H0 = kv["llama.attention.head_count"]
    D = E0 // H0
    KV0 = D * kv.get("llama.attention.head_count_kv", H0)
    V0 = len(kv["tokenizer.ggml.tokens"])
    assert n_embd == n_head * D and n_layer <= L0 and n_vocab <= V0
    dims = {E0: n_embd, F0: n_ff, KV0: n_head_kv * D, V0: n_vocab}
    assert len(dims) == 4, "shape values must differ to map them"
    new = {"llama.embedding_length": n_embd, "llama.feed_forward_length": n_ff,
           "llama.block_count": n_layer, "llama.attention.head_count": n_head,
           "llama.attention.head_count_kv": n_head_kv, "llama.vocab_size": n_vocab}
    w = GGUFWriter(dst, alignment=r.alignment)
    for key, value in kv.items():
        vt, et = r.kv_types[key]
        if key in new:
            value = new[key]
        elif key.startswith("tokenizer.ggml.") and et is not None and len(value) == V0:
            value = value[:n_vocab]
        w.add(key, value, vt, et)
    keep = []
    for t in r.tensors:
        m = re.match(r"blk\.(\d+)\.", t.name)
        if (m and int(m.group(1)) >= n_layer) or (tied and t.name == "output.weight"):
            continue
        ne = [dims[d] for d in t.ne]
        _, bs, bb = GGML_TYPES[t.type]
        assert ne[0] % bs == 0, f"{t.name}: {ne[0]} columns are not whole {bs}-blocks"
        rows = r.raw(t.name).reshape(-1, t.ne[0] // bs * bb)
        keep.append((t.name, ne, t.type, rows[:ne[1] if len(ne) > 1 else 1, :ne[0] // bs * bb]))
    for name, ne, t, _ in keep:
        w.add_tensor_info(name, ne, t)
    w.write_header()
    for name, _, _, data in keep:
        w.write_tensor_data(name, np.ascontiguousarray(data))
    w.close()
    return dst


# llama.cpp's files cut down: (file, n_vocab, n_layer, n_embd, n_head, n_head_kv, n_ff, tied).
# Row lengths must stay whole blocks: 32 for F16/Q8_0/Q4_0 (Q4_0's output is Q6_K,
# 256: dropped), 256 for the K-quant files.
SHRINK = [("mini-F16", 300, 1, 32, 1, 1, 32, False), ("mini-Q8_0", 300, 2, 64, 2, 1, 32, False),
          ("mini-Q4_0", 300, 1, 32, 1, 1, 64, True), ("mini-Q4_K_M", 260, 1, 256, 8, 2, 256, False),
          ("mini-Q5_K_M", 260, 1, 256, 8, 2, 256, True)]
MICRO_TYPES = ["F32", "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M"]
HEAD_BYTES = 64 << 10


def write_seeds(corpus):
    """Write the seed corpus into corpus/ (created); returns {name: bytes}.
    Needs the npm vocabulary (tools/npm-deps.sh) for the micro models;
    ../shared's files are used when present."""
    import make_bad_gguf as mk
    import make_model
    corpus = Path(corpus)
    corpus.mkdir(parents=True, exist_ok=True)
    tmp = corpus / ".tmp"
    tmp.mkdir(exist_ok=True)
    seeds = {}
    for t in MICRO_TYPES:
        p = make_model.make_model(tmp / f"micro-{t}.gguf", "micro", t, seed=1)
        seeds[f"micro-{t}.gguf"] = Path(p).read_bytes()
    p = make_model.make_model(tmp / "micro-Q8_0-tied.gguf", "micro", "Q8_0", seed=2, with_output=False)
    seeds["micro-Q8_0-tied.gguf"] = Path(p).read_bytes()
    if SHARED.is_dir():
        for name, *shape in SHRINK:
            src = SHARED / f"{name}.gguf"
            if src.exists():
                seeds[f"llamacpp-{name}-cut.gguf"] = Path(shrink_gguf(src, tmp / "cut.gguf", *shape)).read_bytes()
                with open(src, "rb") as f:
                    seeds[f"llamacpp-{name}-head.gguf"] = f.read(HEAD_BYTES)
    for name in mk.CASES:
        try:
            seeds[f"bad-{name}.gguf"] = mk.build(name, "tiny")[0]
        except (StopIteration, KeyError, IndexError):
            pass   # a case written for the small preset's second block or K-quant rows
    # image mode: the Q4_0 micro model in an image with each kind of CRC, and cut short
    tool = build_image_tool()
    for crc in ("chunked", "plain", "none"):
        out = tmp / "img"
        subprocess.run([str(tool), "--crc", crc, str(tmp / "micro-Q4_0.gguf"), str(out)], check=True)
        seeds[f"image-micro-Q4_0-{crc}.img"] = out.read_bytes()
    img = seeds["image-micro-Q4_0-plain.img"]
    seeds["image-truncated-header.img"] = img[:700]
    seeds["image-truncated-model.img"] = img[:len(img) // 2]
    shutil.rmtree(tmp)
    for name, data in seeds.items():
        assert len(data) <= MAX_LEN, (name, len(data))
        (corpus / name).write_bytes(data)
    return seeds


# ---------------------------------------------------------------------------
# running

def regression_inputs():
    return sorted(p for p in REGRESS.iterdir() if p.is_file()) if REGRESS.is_dir() else []


def run_inputs(exe, files, timeout=600):
    """Run each file once; -> (returncode, log)."""
    p = subprocess.run([str(exe), "-rss_limit_mb=2048", "-timeout=10", *map(str, files)], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stderr


def fuzz(exe, corpus_dirs, artifacts, runs=None, seconds=None, jobs=1, seed=None, extra=(), timeout=None):
    """One libFuzzer run over corpus_dirs (new inputs go to the first).
    jobs > 1: that many parallel jobs, each with `runs`.  -> dict with
    returncode, executions, seconds, log (all jobs' logs), crashes."""
    artifacts = Path(artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    opts = [*BASE_OPTS, "-artifact_prefix=%s/" % artifacts]
    if runs is not None:
        opts.append("-runs=%d" % runs)
    if seconds is not None:
        opts.append("-max_total_time=%d" % seconds)
    if seed is not None:
        opts.append("-seed=%d" % seed)
    if jobs > 1:
        logdir = artifacts / "logs"
        logdir.mkdir(exist_ok=True)
        for f in logdir.glob("fuzz-*.log"):
            f.unlink()
        opts += ["-jobs=%d" % jobs, "-workers=%d" % jobs]
    cmd = ["nice", "-n", "19", str(exe), *opts, *extra, *map(str, corpus_dirs)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       cwd=str(artifacts / "logs") if jobs > 1 else None)
    elapsed = time.time() - t0
    # with -jobs the jobs write fuzz-N.log, which the parent also prints when each job ends
    counted = [f.read_text(errors="replace") for f in sorted((artifacts / "logs").glob("fuzz-*.log"))] \
        if jobs > 1 else [p.stderr]
    log = "\n".join([p.stderr] + (counted if jobs > 1 else []))
    execs = sum(int(m) for c in counted for m in re.findall(r"stat::number_of_executed_units: (\d+)", c))
    crashes = sorted(p.name for p in artifacts.iterdir() if p.is_file())
    return dict(returncode=p.returncode, executions=execs, seconds=elapsed, log=log, crashes=crashes,
                command=" ".join(cmd))


def findings(result):
    """Sanitizer or harness reports in a run's log, or crash files."""
    bad = [b for b in BAD if b in result["log"]]
    return bad + result["crashes"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seeds")
    s.add_argument("dir")
    c = sub.add_parser("campaign")
    c.add_argument("--runs", type=int, default=10_000_000, help="executions in all (split over the jobs)")
    c.add_argument("--seconds", type=int, help="stop after this long instead")
    c.add_argument("--jobs", type=int, default=1)
    c.add_argument("--corpus", default=str(FUZZ_DIR / "corpus"))
    c.add_argument("--isa", choices=sorted(ISA), default=None)
    r = sub.add_parser("run")
    r.add_argument("files", nargs="+")
    r.add_argument("--isa", choices=sorted(ISA), default=None)
    a = ap.parse_args(argv)
    if a.cmd == "seeds":
        print("%d seeds in %s" % (len(write_seeds(a.dir)), a.dir))
        return 0
    exe = build_fuzzer(a.isa)
    if a.cmd == "run":
        rc, log = run_inputs(exe, a.files)
        sys.stderr.write(log)
        return rc
    corpus = Path(a.corpus)
    if not corpus.is_dir() or not any(corpus.iterdir()):
        write_seeds(corpus)
    seeds = FUZZ_DIR / "seeds"
    write_seeds(seeds)       # fresh seeds join every campaign (the corpus keeps what it found)
    dirs = [corpus, seeds] + ([REGRESS] if REGRESS.is_dir() else [])
    print("fuzzing %s (%s) over %s: %s" % (exe.name, a.isa or default_isa(), " ".join(map(str, dirs)),
                                           "%d s" % a.seconds if a.seconds else "%d runs in %d jobs" %
                                           (a.runs, a.jobs)), flush=True)
    per_job = -(-a.runs // a.jobs)
    res = fuzz(exe, dirs, FUZZ_DIR / "artifacts", runs=None if a.seconds else per_job, seconds=a.seconds,
               jobs=a.jobs)
    bad = findings(res)
    print("command: %s" % res["command"])
    print("executions: %d in %.0f s (%.0f exec/s), corpus %d inputs; %s" % (
        res["executions"], res["seconds"], res["executions"] / max(res["seconds"], 1e-9),
        len(list(corpus.iterdir())), "no crash" if not bad else "FOUND: %s" % bad))
    if bad:
        print("\n".join(res["log"].splitlines()[-60:]))
    return 1 if bad or res["returncode"] else 0


if __name__ == "__main__":
    sys.exit(main())
