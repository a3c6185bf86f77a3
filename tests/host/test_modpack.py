"""Host tests of the module ABI (issue 4): tools/modpack.c, the baseline
module region, SHA-256, the kernel's module and cache-slot checks
(kernel/core/mod/modfmt.c, run on the host through tests/host/modfmt_harness.c
with AddressSanitizer) against tools/pgo.py's writer, and pgo.py's analysis
rules (tag from the profiled CPU, thresholds).

Run: /usr/bin/python3 -m pytest -q tests/host/test_modpack.py
"""
import hashlib
import json
import os
import random
import re
import shlex
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import BUILD, ROOT
from hostbuild import build

sys.path.insert(0, str(ROOT / "tools"))
import pgo  # noqa: E402

MODPACK = BUILD / "tools" / "modpack"
OPS = ["mm_f32", "mm_f16", "mm_q8_0", "mm_q4_0", "mm_q4_K", "mm_q5_K", "mm_q6_K",
       "dequant_f32", "dequant_f16", "dequant_q8_0", "dequant_q4_0", "dequant_q4_K", "dequant_q5_K",
       "dequant_q6_K", "quantize_q8_0", "quantize_q8_K", "convert_f16", "copy_f32", "rmsnorm", "rope",
       "swiglu", "add", "attn_scores", "softmax", "attn_wsum"]


@pytest.fixture(scope="module")
def harness():
    if not MODPACK.exists():
        pytest.fail("build/tools/modpack missing (run `make image` first)")
    return build("modfmt_harness", ["tests/host/modfmt_harness.c", "kernel/core/mod/modfmt.c", "kernel/core/lib/sha256.c"],
                 ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
ABI_VERSION = int(re.search(r"#define FLUID_MOD_ABI_VERSION (\d+)u", (ROOT / "modules/module_abi.h").read_text()).group(1))


def run(harness, *args):
    r = subprocess.run([str(harness), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def mf():
    return pgo.modflags()


def compile_module(tmp, mf, src_text, name="bad", extra_ld=()):
    """Compile a C module source with the Makefile's module flags and link it
    with modrt.c and module.ld; returns (link result, elf path)."""
    src = tmp / f"{name}.c"
    src.write_text(src_text)
    cflags = shlex.split(mf["MOD_CFLAGS"]) + ["-O1", "-march=x86-64"]
    objs = []
    for s in (src, ROOT / "modules" / "modrt.c"):
        o = tmp / f"{s.stem}.o"
        subprocess.run([mf["CC"], *cflags, "-c", str(s), "-o", str(o)], check=True, cwd=ROOT)
        objs.append(str(o))
    elf = tmp / f"{name}.elf"
    r = subprocess.run([mf["LD"], *shlex.split(mf["MOD_LDFLAGS"]), *extra_ld, *objs, "-o", str(elf)],
                       capture_output=True, text=True, cwd=ROOT)
    return r, elf


def modpack(elf, out, name="bad", *extra):
    return subprocess.run([str(MODPACK), "module", "-o", str(out), "--elf", str(elf), "--name", name,
                           "--march", "x86-64", "--opt", "1", "--features", "SSE SSE2", *extra],
                          capture_output=True, text=True)


def test_sha256_matches_hashlib(harness, tmp_path):
    rng = random.Random(4)
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 128, 1000, 100_003):
        f = tmp_path / f"d{n}"
        data = bytes(rng.getrandbits(8) for _ in range(n))
        f.write_bytes(data)
        assert run(harness, "sha256", f).strip() == hashlib.sha256(data).hexdigest(), n


def test_module_region_covers_every_op_once_per_level(harness):
    """The image's module region: the -O1 x86-64 baselines (SSE2 only: any
    x86-64 CPU runs them), then per-ISA -O2 builds for x86-64-v2, -v3 and
    -v4+vnni, each set covering every op exactly once, each module
    requiring exactly what its tag implies."""
    data = (BUILD / "modules.bin").read_bytes()
    off, seen, names = 0, {}, {}
    while off < len(data):
        m = pgo.parse_module(data, off)
        if m["flags"] & 1:
            level = "baseline"
            assert m["march"] == "x86-64" and m["opt"] == 1, m["name"]
            assert m["features"] == 0x3, "baseline modules may need SSE and SSE2 only"
        else:
            assert m["flags"] & 4, f"{m['name']}: neither baseline nor per-ISA build"
            level = m["march"]
            assert m["opt"] == 2
            bits, _ = pgo.cpufeat()
            assert m["features"] == sum(1 << bits[f] for f in pgo.tag_features(level)), (m["name"], level)
        assert m["abi"] == ABI_VERSION and m["header_bytes"] == 512
        # W^X: code below a page boundary, data and bss above it.
        assert m["text_bytes"] % 4096 == 0 and 0 < m["text_bytes"] <= m["body_bytes"]
        assert "clang" in m["compiler"]
        h = data[off:off + 512]
        assert struct.unpack_from("<I", h, 508)[0] == zlib.crc32(h[:508])
        n_entries = struct.unpack_from("<I", h, 184)[0]
        for i in range(n_entries):
            op, _, offset = struct.unpack_from("<HHI", h, 192 + 8 * i)
            assert offset < m["text_bytes"], "entry points lie in the read+execute part"
            seen.setdefault(level, []).append(OPS[op])
        names.setdefault(level, []).append(m["name"])
        sub = "base" if level == "baseline" else {"x86-64-v2": "v2", "x86-64-v3": "v3", "x86-64-v4+vnni": "v4vnni"}[level]
        f = BUILD / "modules" / sub / f"{m['name']}.fmod"
        assert run(harness, "module", f, "0xffffffffffffffff").startswith(f"ok {m['name']}")
        off = (off + len(m["file"]) + 63) // 64 * 64
    assert list(seen) == ["baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4+vnni"], "baselines first, levels rising"
    srcs = sorted(p.stem for p in (ROOT / "modules").glob("*.c") if p.stem != "modrt")
    for level, ops in seen.items():
        assert sorted(ops) == sorted(OPS), f"{level}: every op exactly once"
        assert sorted(names[level]) == srcs, f"{level}: one module per source file"


def test_modpack_accepts_a_clean_module(tmp_path, mf, harness):
    r, elf = compile_module(tmp_path, mf, '#include "ops.h"\nvoid add(float *y, const float *x, int n)'
                            '{ for (int i = 0; i < n; i++) y[i] += x[i]; }\n')
    assert r.returncode == 0, r.stderr
    out = tmp_path / "ok.fmod"
    p = modpack(elf, out, "good", "--shape", "n_embd=64")
    assert p.returncode == 0, p.stderr
    m = pgo.parse_module(out.read_bytes())
    assert m["name"] == "good" and m["shapes"] == {1: 64} and m["flags"] & 2
    assert hashlib.sha256(m["file"][512:]).digest() == m["sha256"]
    assert run(harness, "module", out).split() == ["ok", "good", "add"]
    info = subprocess.run([str(MODPACK), "info", str(out)], capture_output=True, text=True, check=True).stdout
    assert "add@0x" in info and "shape n_embd = 64" in info


def test_modpack_refuses_data_relocations(tmp_path, mf):
    # A table of pointers needs R_X86_64_RELATIVE at load time: refused.
    r, elf = compile_module(tmp_path, mf, "static int a, b;\nint *tab[] = { &a, &b };\n"
                            "void add(float *y, const float *x, int n) { (void)x; y[0] = (float)*tab[n]; }\n")
    assert r.returncode == 0, r.stderr
    p = modpack(elf, tmp_path / "x.fmod")
    assert p.returncode == 1
    assert "relocation section" in p.stderr and "applies no relocations" in p.stderr
    assert not (tmp_path / "x.fmod").exists()


def test_undefined_symbols_fail_the_build(tmp_path, mf):
    src = "extern float kernel_thing(float);\nvoid add(float *y, const float *x, int n) { y[0] = kernel_thing(x[n]); }\n"
    r, _ = compile_module(tmp_path, mf, src)
    assert r.returncode != 0 and "undefined symbol: kernel_thing" in r.stderr
    # Even if the linker is told to let it through, modpack refuses.
    r, elf = compile_module(tmp_path, mf, src, extra_ld=["--unresolved-symbols=ignore-all"])
    assert r.returncode == 0, r.stderr
    p = modpack(elf, tmp_path / "x.fmod")
    assert p.returncode == 1
    assert "relocation section" in p.stderr or "undefined symbol 'kernel_thing'" in p.stderr


def test_modpack_refuses_objects_and_modules_without_ops(tmp_path, mf):
    r, elf = compile_module(tmp_path, mf, "int helper(int x) { return x + 1; }\n")
    assert r.returncode == 0
    p = modpack(elf, tmp_path / "x.fmod")
    assert p.returncode == 1 and "no function named after an op" in p.stderr
    obj = tmp_path / "bad.o"     # unlinked object
    p = modpack(obj, tmp_path / "y.fmod")
    assert p.returncode == 1 and "not a linked image" in p.stderr
    notelf = tmp_path / "notelf.bin"
    notelf.write_bytes(b"#!/bin/sh\n" * 20)
    p = modpack(notelf, tmp_path / "z.fmod")
    assert p.returncode == 1 and "not an ELF file" in p.stderr
    p = subprocess.run([str(MODPACK), "module", "-o", str(tmp_path / "w.fmod"), "--elf", str(elf), "--name", "w",
                        "--march", "x86-64", "--opt", "1", "--features", "SSE NOSUCH"], capture_output=True, text=True)
    assert p.returncode == 1 and "unknown CPU feature 'NOSUCH'" in p.stderr


def test_module_checks_reject_damage(harness, tmp_path):
    good = (BUILD / "modules" / "base" / "mm_q4_0.fmod").read_bytes()
    cases = {
        "magic": (0, "bad magic"),
        "crc": (300, "header checksum mismatch"),
        "body": (512 + 100, "SHA-256 mismatch"),
    }
    for name, (off, want) in cases.items():
        bad = bytearray(good)
        bad[off] ^= 0x10
        f = tmp_path / f"{name}.fmod"
        f.write_bytes(bad)
        out = run(harness, "module", f)
        assert out.startswith("reject") and want in out, (name, out)
    # text_bytes off a page boundary (header re-sealed: only that check fails).
    bad = bytearray(good)
    struct.pack_into("<I", bad, 480, struct.unpack_from("<I", bad, 480)[0] + 64)
    struct.pack_into("<I", bad, 508, zlib.crc32(bytes(bad[:508])))
    f = tmp_path / "text.fmod"
    f.write_bytes(bad)
    assert "text size" in run(harness, "module", f)
    f = tmp_path / "trunc.fmod"
    f.write_bytes(good[:len(good) // 2])
    assert "truncated" in run(harness, "module", f)
    # Feature check: a mask without SSE2.
    f = tmp_path / "ok.fmod"
    f.write_bytes(good)
    assert "requires SSE2, which this CPU lacks" in run(harness, "module", f, "1")


def test_tag_features_agree_with_pgo(harness):
    bits, _ = pgo.cpufeat()
    for tag in ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "x86-64-v4+vnni", "x86-64-v4+vnni+bf16"):
        mask = sum(1 << bits[f] for f in pgo.tag_features(tag))
        assert int(run(harness, "tag", tag), 16) == mask, tag
        assert pgo.tag_from_features(pgo.tag_features(tag)) == tag
    assert run(harness, "tag", "x86-64-v3+vnni").strip() == "unknown"
    assert run(harness, "tag", "armv8").strip() == "unknown"


def _slot(gen=3):
    files = [(BUILD / "modules" / "base" / f"{n}.fmod").read_bytes() for n in ("add", "mm_q4_0", "rmsnorm")]
    entries = [dict(tag="x86-64-v3", file=files[0]), dict(tag="x86-64-v3", file=files[1]),
               dict(tag="x86-64-v4", file=files[2])]
    return pgo.build_slot(gen, entries, "tiny-random-12345678")


def test_cache_slot_writer_and_kernel_checks_agree(harness, tmp_path):
    slot = _slot()
    f = tmp_path / "slot.bin"
    f.write_bytes(slot)
    out = run(harness, "slot", f)
    assert out.splitlines()[0] == "state valid", out
    assert "generation 3 entries 3" in out
    assert "entry 2 x86-64-v4 rmsnorm ok" in out
    state, _, info = pgo.parse_slot(slot)
    assert state == "valid" and info["generation"] == 3 and info["model_id"] == "tiny-random-12345678"

    def state_of(data):
        f.write_bytes(bytes(data))
        return run(harness, "slot", f).splitlines()[0]

    assert state_of(bytes(len(slot))).startswith("state empty")
    assert state_of(slot[:len(slot) // 2]).startswith("state incomplete"), "half a slot: no commit record"
    torn = bytearray(slot)
    torn[-512 + 8] ^= 1                  # the trailer's generation
    assert state_of(torn).startswith("state incomplete")
    bad = bytearray(slot)
    bad[600] ^= 1                        # inside the registry
    assert state_of(bad).startswith("state damaged registry")
    bad = bytearray(slot)
    bad[20] ^= 1                         # header
    assert state_of(bad).startswith("state damaged header")
    # A flipped bit inside a module body: the slot stays valid, that module fails.
    st, _, info = pgo.parse_slot(slot)
    e = info["entries"][1]
    bad = bytearray(slot)
    bad[e["offset"] + 512 + 40] ^= 4
    f.write_bytes(bytes(bad))
    out = run(harness, "slot", f)
    assert "state valid" in out and "entry 1 x86-64-v3 mm_q4_0 reject SHA-256 mismatch" in out
    assert "entry 0 x86-64-v3 add ok" in out


def test_slot_checks_survive_random_damage(harness, tmp_path):
    """No input crashes the checks (ASan/UBSan harness): random byte
    mutations of a valid slot and of a module file."""
    slot = _slot()
    rng = random.Random(11)
    f = tmp_path / "fuzz.bin"
    for i in range(150):
        data = bytearray(slot)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(1024)
            data[pos] = rng.getrandbits(8)
        if rng.random() < 0.2:
            data = data[:rng.randrange(len(data))]
        f.write_bytes(bytes(data))
        out = run(harness, "slot", f)
        assert out.startswith("state "), out
        run(harness, "module", f)


def test_analyze_uses_the_profiled_cpu_and_thresholds(tmp_path):
    """The plan's -march tag comes from the profile's CPUID feature list,
    not from the machine running analyze; shares map to -O3/-O2/-O1/baseline."""
    _, levels = pgo.cpufeat()
    feats = sorted({"SSE", "SSE2"} | levels[2])          # an x86-64-v2 machine
    mods = [("mm_q4_0", "mm_q4_0", 600), ("mm_q8_0", "mm_q8_0", 100), ("quantize_q8_0", "quantize", 20),
            ("rmsnorm", "rmsnorm", 2), ("add", "add", 0)]
    prof = {"schema": "fluid-profile", "schema_version": 1,
            "cpu": {"tag": "x86-64-v2", "features": feats},
            "model": {"id": "m-1", "shapes": {"n_embd": 64, "n_ff": 192, "head_dim": 16}},
            "modules": [{"op": op, "module": mod, "calls": 10 if c else 0, "cycles": c * 1000}
                        for op, mod, c in mods]}
    p = tmp_path / "p.json"
    p.write_text(json.dumps(prof))
    plan_path = pgo.main(["analyze", "--profile", str(p), "--out", str(tmp_path / "plan.json")])
    plan = json.loads(Path(plan_path).read_text())
    assert plan["tag"] == "x86-64-v2" and plan["march_flags"] == ["-march=x86-64-v2"]
    d = {m["module"]: m["decision"] for m in plan["modules"]}
    # shares: 600/722 = 83% -> O3, 100/722 = 13.9% -> O2, 20/722 = 2.8% -> O1, 2/722 = 0.28% -> baseline
    assert d == {"mm_q4_0": "-O3", "mm_q8_0": "-O2", "quantize": "-O1", "rmsnorm": "baseline", "add": "baseline"}
    assert plan["features"] == sorted({"SSE", "SSE2"} | levels[2])


def test_analyze_feedback_drops_variants_measured_slower(tmp_path):
    """Feedback from earlier profiles in the same model/tag directory: a
    cached variant measured slower than the baseline is replaced by the same
    -O level for the portable tag, then by the baseline."""
    _, levels = pgo.cpufeat()
    feats = sorted({"SSE", "SSE2"} | levels[2] | levels[3])
    d = tmp_path / "m-1" / "x86-64-v3"
    d.mkdir(parents=True)

    def prof(name, variant, opt, march, cycles, mtime):
        p = {"schema": "fluid-profile", "schema_version": 1, "cpu": {"tag": "x86-64-v3", "features": feats},
             "model": {"id": "m-1", "shapes": {}},
             "modules": [{"op": "mm_q4_0", "module": "mm_q4_0", "variant": variant, "opt_level": opt,
                          "march": march, "calls": 10, "cycles": cycles},
                         {"op": "add", "module": "add", "variant": "baseline", "opt_level": 1,
                          "march": "x86-64", "calls": 10, "cycles": 10}]}
        f = d / name
        f.write_text(json.dumps(p))
        os.utime(f, (mtime, mtime))
        return f

    def decide(path):
        plan = json.loads(Path(pgo.main(["analyze", "--profile", str(path)])).read_text())
        m = next(m for m in plan["modules"] if m["module"] == "mm_q4_0")
        return m["decision"], m["march"], m["reason"]

    first = prof("1.json", "baseline", 1, "x86-64", 1000, 1)
    assert decide(first)[:2] == ("-O3", "x86-64-v3")
    second = prof("2.json", "cache", 3, "x86-64-v3", 2000, 2)       # 2x slower per call
    dec, march, why = decide(second)
    assert (dec, march) == ("-O3", "x86-64") and "2.00x" in why
    third = prof("3.json", "cache", 3, "x86-64", 1500, 3)           # portable -O3 also slower
    dec, march, why = decide(third)
    assert dec == "baseline" and "kept at baseline" in why
    fourth = prof("4.json", "baseline", 1, "x86-64", 1000, 4)
    assert decide(fourth)[0] == "baseline"
    plan = json.loads(Path(pgo.main(["analyze", "--profile", str(fourth), "--no-feedback"])).read_text())
    assert next(m for m in plan["modules"] if m["module"] == "mm_q4_0")["decision"] == "-O3"
