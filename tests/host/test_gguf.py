"""Host tests of the GGUF parser and Llama validator (kernel/core/llm/gguf.c,
kernel/core/llm/llama_model.c), run through tests/host/gguf_harness.c built with
ASan+UBSan, and a bounded libFuzzer campaign (tests/host/gguf_fuzz.c).

    /usr/bin/python3 -m pytest tests/host/test_gguf.py
    FUZZ_SECONDS=300 /usr/bin/python3 -m pytest tests/host/test_gguf.py -k fuzz
"""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import make_bad_gguf as mk  # noqa: E402
from hostbuild import build  # noqa: E402

ROOT = HERE.parent.parent
MINI_DIR = Path("/work/shared/testdata/llamacpp")
MINI_FILES = sorted(MINI_DIR.glob("mini-*.gguf")) if MINI_DIR.is_dir() else []
SOURCES = ["kernel/core/llm/gguf.c", "kernel/core/llm/llama_model.c"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "60"))

# Types each mini file must contain (from the testdata README).
MINI_TYPES = {"F16": {"F32", "F16"}, "Q8_0": {"F32", "Q8_0"}, "Q4_0": {"F32", "Q4_0", "Q6_K"},
              "Q4_K_M": {"F32", "Q4_K", "Q6_K"}, "Q5_K_M": {"F32", "Q5_K", "Q6_K"}}


@pytest.fixture(scope="module")
def harness():
    return build("gguf_harness", ["tests/host/gguf_harness.c", *SOURCES], SAN)


def run(exe, path, *opts):
    """-> (exit code, stdout lines). Sanitizer output on stderr fails the test."""
    p = subprocess.run([str(exe), *opts, str(path)], capture_output=True, text=True, timeout=120)
    assert p.stderr == "", p.stderr
    return p.returncode, p.stdout.splitlines()


def write_case(tmp_path, name, preset="small"):
    data, expect = mk.build(name, preset)
    path = tmp_path / (name + ".gguf")
    path.write_bytes(data)
    return path, expect


def fields(line):
    """'hparams a=1 b=2' -> {'a': '1', 'b': '2'}"""
    return dict(kv.split("=", 1) for kv in line.split()[1:])


# ---------------------------------------------------------------------------
# An independent minimal reader, to cross-check the C parser on real files.

def read_gguf(path):
    d = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, d, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        s = d[pos:pos + n]
        pos += n
        return s.decode("utf-8", "replace")

    fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
            10: "<Q", 11: "<q", 12: "<d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(fmts[t])

    assert d[:4] == b"GGUF"
    pos = 4
    _, n_t, n_kv = take("<I"), take("<Q"), take("<Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("<I"))
    tensors = []
    for _ in range(n_t):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        tensors.append((name, ne, take("<I"), take("<Q")))
    align = kv.get("general.alignment", 32)
    data_offset = (pos + align - 1) // align * align
    return kv, tensors, data_offset


# ---------------------------------------------------------------------------
# (1) llama.cpp's own files

@pytest.mark.skipif(not MINI_FILES, reason="no llama.cpp test models in %s" % MINI_DIR)
@pytest.mark.parametrize("path", MINI_FILES, ids=[p.stem for p in MINI_FILES])
def test_mini_model_loads(harness, path):
    rc, out = run(harness, path, "--tensors", "--views", "--tokens", "300")
    assert rc == 0, out[:3]
    tensor_lines = [ln for ln in out if ln.startswith("tensor ")]
    assert out[len(tensor_lines)] == "OK"
    hp = fields(next(ln for ln in out if ln.startswith("hparams ")))
    assert {k: hp[k] for k in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim",
                               "n_embd_kv", "n_ff", "n_ctx_train", "rope_dim", "bos", "eos", "unk")} == dict(
        n_vocab="32000", n_embd="256", n_layer="4", n_head="8", n_head_kv="2", head_dim="32",
        n_embd_kv="64", n_ff="768", n_ctx_train="512", rope_dim="32", bos="1", eos="2", unk="0")
    assert abs(float(hp["rms_eps"]) - 1e-5) < 1e-9 and float(hp["rope_freq_base"]) == 10000.0

    # tensor records agree with the independent reader
    kv, tensors, data_offset = read_gguf(path)
    assert len(tensor_lines) == len(tensors) == 39
    for line, (name, ne, gtype, off) in zip(tensor_lines, tensors):
        f = line.split()
        gname, blck, bsize = mk.GGML[gtype]
        n = 1
        for x in ne:
            n *= x
        assert f[1] == name and f[2] == gname and int(f[3]) == len(ne)
        assert [int(x) for x in f[4:4 + len(ne)]] == ne
        assert int(f[8]) == data_offset + off and int(f[9]) == n // blck * bsize

    # summary: the README's type mix; total bytes = sum of all tensors
    kind = path.stem.split("-", 1)[1]
    summary = next(ln for ln in out if ln.startswith("summary "))
    assert summary.startswith("summary 39 tensors:")
    types = {part.split()[1] for part in summary.split(":", 1)[1].split(";")[0].split(",")}
    assert types == MINI_TYPES[kind]
    total = sum(int(ln.split()[9]) for ln in tensor_lines)
    assert next(ln for ln in out if ln.startswith("weights_bytes ")) == "weights_bytes %d" % total
    assert "output_tied 0" in out

    # weight views point at the right tensors
    by_name = {ln.split()[1]: ln.split() for ln in tensor_lines}
    views = [ln.split() for ln in out if ln.startswith("view ")]
    assert len(views) == 3 + 9 * 4
    for v in views:
        t = by_name[v[1] + ".weight"]
        assert v[2] == t[2] and int(v[3]) == int(t[4]) and int(v[6]) == int(t[8])
        assert int(v[7]) == int(t[9]) and int(v[5]) * int(v[4]) == int(t[9])

    # token accessor: text, type and score of the first 300 tokens
    toks = [ln.split(" ", 4) for ln in out if ln.startswith("token ")]
    assert len(toks) == 300
    for tid, ttype, score, text in ((int(t[1]), int(t[2]), float(t[3]), t[4]) for t in toks):
        assert text == kv["tokenizer.ggml.tokens"][tid]
        assert ttype == kv["tokenizer.ggml.token_type"][tid]
        assert score == pytest.approx(kv["tokenizer.ggml.scores"][tid])
    assert toks[3][4] == "<0x00>" and toks[258][4] == "<0xFF>"


@pytest.mark.skipif(not MINI_FILES, reason="no llama.cpp test models")
def test_mini_model_getters(harness):
    path = MINI_FILES[0]
    rc, out = run(harness, path, "--parse-only", "--get", "llama.block_count")
    assert rc == 0
    assert out[:8] == ["u32 ok 4", "i32 ok 4", "u64 ok 4", "i64 ok 4", "f32 wrong type 0",
                       "bool wrong type 0", "str wrong type ", "arr wrong type - 0"]
    rc, out = run(harness, path, "--parse-only", "--get", "tokenizer.ggml.tokens")
    assert out[7] == "arr ok string 32000"
    rc, out = run(harness, path, "--parse-only", "--get", "general.architecture")
    assert out[6] == "str ok llama"
    rc, out = run(harness, path, "--parse-only", "--get", "llama.rope.freq_base")
    assert out[4] == "f32 ok 10000" and out[0] == "u32 wrong type 0"
    rc, out = run(harness, path, "--parse-only", "--get", "no.such.key")
    assert out[0] == "u32 not found 0" and out[7] == "arr not found - 0"


# ---------------------------------------------------------------------------
# (2) generated files: valid ones and every malformed variant

@pytest.mark.parametrize("name", list(mk.CASES))
def test_case(harness, tmp_path, name):
    path, expect = write_case(tmp_path, name)
    rc, out = run(harness, path)
    if expect == "OK":
        assert rc == 0 and out[0] == "OK", out[:2]
    else:
        assert rc == 1 and len(out) == 1, out
        assert out[0].startswith("ERR "), out
        assert expect in out[0]


@pytest.mark.parametrize("name", mk.PARSE_OK)
def test_model_level_cases_parse(harness, tmp_path, name):
    """Model-level defects are not format errors: gguf_parse accepts them
    (e.g. a valid but unsupported IQ2_XXS tensor parses fine)."""
    path, _ = write_case(tmp_path, name)
    rc, out = run(harness, path, "--parse-only")
    assert rc == 0 and out[-1].startswith("OK parsed"), out


def test_valid_small_model_details(harness, tmp_path):
    path, _ = write_case(tmp_path, "valid")
    rc, out = run(harness, path, "--views")
    hp = fields(out[1])
    assert hp["n_vocab"] == "300" and hp["n_layer"] == "2" and hp["n_embd_kv"] == "64"
    assert out[2] == "summary 21 tensors: 6 F32, 1 F16, 2 Q4_0, 4 Q8_0, 3 Q4_K, 2 Q5_K, 3 Q6_K; 1019.3 KiB"
    # the byte size of every view matches the generator's layout
    _, layout = mk.Model().serialize()
    for v in (ln.split() for ln in out if ln.startswith("view ")):
        info = layout["tensor"][v[1] + ".weight"]
        assert int(v[6]) == layout["data_offset"] + info["data_at"] and int(v[7]) == info["size"]


def test_tied_output_reuses_token_embd(harness, tmp_path):
    path, _ = write_case(tmp_path, "valid_tied_output")
    rc, out = run(harness, path, "--views")
    assert "output_tied 1" in out
    views = {ln.split()[1]: ln.split()[2:] for ln in out if ln.startswith("view ")}
    assert views["output"] == views["token_embd"]
    assert out[2].startswith("summary 20 tensors:")


def test_defaults_for_optional_keys(harness, tmp_path):
    path, _ = write_case(tmp_path, "valid_no_optional_keys")
    rc, out = run(harness, path)
    hp = fields(out[1])
    assert (hp["rope_freq_base"], hp["rope_dim"], hp["bos"], hp["eos"], hp["unk"]) == (
        "10000", "32", "1", "2", "0")


def test_getters_check_ranges(harness, tmp_path):
    path, _ = write_case(tmp_path, "key_negative")           # context_length = -1 (i32)
    _, out = run(harness, path, "--parse-only", "--get", "llama.context_length")
    assert out[:4] == ["u32 out of range 0", "i32 ok -1", "u64 out of range 0", "i64 ok -1"]
    path, _ = write_case(tmp_path, "key_huge")               # block_count = 2^63 + 1 (u64)
    _, out = run(harness, path, "--parse-only", "--get", "llama.block_count")
    assert out[:4] == ["u32 out of range 0", "i32 out of range 0",
                       "u64 ok 9223372036854775809", "i64 out of range 0"]
    path, _ = write_case(tmp_path, "valid")
    _, out = run(harness, path, "--parse-only", "--get", "tokenizer.ggml.scores")
    assert out[7] == "arr ok f32 300"


def test_arena_too_small(harness, tmp_path):
    path, _ = write_case(tmp_path, "valid")
    rc, out = run(harness, path, "--arena", "1000")
    assert rc == 1 and "gguf: key 'tokenizer.ggml.tokens': arena too small for string array offsets" in out[0]
    # enough for the parse (and its temporary sort scratch), not for the
    # layer table of the validator
    _, out = run(harness, path, "--parse-only")
    used = int(out[-1].split()[-1])
    rc, out = run(harness, path, "--arena", str(used + 400))   # sort scratch fits, 2 layers do not
    assert rc == 1 and out[0].startswith("ERR 109 llama: arena too small for 2 layers")


@pytest.mark.parametrize("preset,limit", [("tiny", 1 << 30), ("small", 16384)])
def test_every_prefix_fails_as_truncated(harness, tmp_path, preset, limit):
    """Every strict prefix of a valid file (whose data ends at EOF) is
    reported as truncated, or as a tensor running past the data section."""
    path, _ = write_case(tmp_path, "valid", preset=preset)
    size = path.stat().st_size
    rc, out = run(harness, path, "--prefixes", str(limit))
    tried = min(size, limit + 1)
    assert rc == 0 and out[-1].startswith("prefixes %d ok 0 " % tried), out
    assert out[-1].endswith(" other 0"), out
    bounds = int(out[-1].split()[7])
    _, layout = mk.Model(preset).serialize()
    # cuts at or after the data section start fail on tensor bounds
    assert bounds == max(0, tried - layout["data_offset"])


# ---------------------------------------------------------------------------
# The generator's command line (used to build bootable images with bad models)

def test_cli(tmp_path):
    gen = [sys.executable, str(HERE / "make_bad_gguf.py")]
    listing = subprocess.run(gen + ["--list"], capture_output=True, text=True, check=True).stdout
    assert [ln.split()[0] for ln in listing.splitlines()] == list(mk.CASES)
    out = subprocess.run(gen + ["--expect", "misaligned_offset"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "gguf: tensor 'blk.1.attn_q.weight': offset 123 is not aligned to 32"
    dst = tmp_path / "x.gguf"
    subprocess.run(gen + ["unsupported_type", str(dst)], check=True)
    assert dst.read_bytes() == mk.build("unsupported_type")[0]
    subprocess.run(gen + ["--preset", "tiny", "valid", str(dst)], check=True)
    assert dst.read_bytes() == mk.build("valid", "tiny")[0]
    bad = subprocess.run(gen + ["no_such_case", str(dst)], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown case" in bad.stderr


# ---------------------------------------------------------------------------
# The code must build freestanding for the kernel, needing only libc's
# mem*/str* and (v)snprintf.

def test_freestanding_build(tmp_path):
    allowed = {"memcmp", "memcpy", "memset", "strlen", "snprintf", "vsnprintf"}
    ours = set()
    undefined = set()
    for src in SOURCES:
        obj = tmp_path / (Path(src).stem + ".o")
        subprocess.run(["clang-19", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-ffreestanding",
                        "-fno-builtin", "-mno-red-zone", "-fno-pic", "-mcmodel=kernel",
                        "-I", str(ROOT / "kernel"), "-I", str(ROOT / "modules"),
                        "-c", str(ROOT / src), "-o", str(obj)], check=True)
        nm = subprocess.run(["llvm-nm-19", str(obj)], capture_output=True, text=True, check=True).stdout
        for ln in nm.splitlines():
            parts = ln.split()
            if parts[-2] == "U":
                undefined.add(parts[-1])
            elif parts[-2] == "T":
                ours.add(parts[-1])
    assert undefined - ours <= allowed, undefined - ours - allowed


# ---------------------------------------------------------------------------
# (3) fuzzing

FUZZ_MAX_LEN = 65536


def _write_seeds(corpus):
    corpus.mkdir()
    seeds = {"tiny_valid": mk.build("valid", "tiny")[0],
             "tiny_tied": mk.build("valid_tied_output", "tiny")[0]}
    for name in mk.CASES:
        data, _ = mk.build(name)
        seeds["small_" + name] = data[:FUZZ_MAX_LEN]
    # the tiny model cut inside each section
    tiny = seeds["tiny_valid"]
    for n in (20, 200, 1200, 1700, 5000):
        seeds["tiny_cut_%d" % n] = tiny[:n]
    for p in MINI_FILES[:2]:
        with open(p, "rb") as fp:
            head = fp.read(FUZZ_MAX_LEN)
        seeds[p.stem + "_head"] = head
        seeds[p.stem + "_head_4k"] = head[:4096]
    for name, data in seeds.items():
        (corpus / name).write_bytes(data)


def _write_dict(path):
    words = {"GGUF", "llama", "general.alignment", "<0x41>"}
    m = mk.Model("tiny")
    words |= {k.key for k in m.kvs} | {t.name for t in m.tensors}
    lines = ['"%s"' % w.replace("\\", "\\\\").replace('"', '\\"') for w in sorted(words)]
    lines += ['"\\x%02x\\x00\\x00\\x00"' % t for t in (0, 1, 2, 8, 12, 13, 14, 30)]   # u32 type ids
    path.write_text("\n".join(lines) + "\n")


def test_fuzz(tmp_path):
    exe = build("gguf_fuzz", ["tests/host/gguf_fuzz.c", *SOURCES],
                ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"])
    corpus = tmp_path / "corpus"
    _write_seeds(corpus)
    _write_dict(tmp_path / "gguf.dict")
    art = tmp_path / "artifacts"
    art.mkdir()
    cmd = [str(exe), str(corpus), "-max_total_time=%d" % FUZZ_SECONDS, "-max_len=%d" % FUZZ_MAX_LEN,
           "-rss_limit_mb=2048", "-timeout=5", "-artifact_prefix=%s/" % art,
           "-dict=%s" % (tmp_path / "gguf.dict"), "-print_final_stats=1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=FUZZ_SECONDS + 300)
    log = p.stderr
    tail = "\n".join(log.splitlines()[-40:])
    assert p.returncode == 0, tail
    assert not list(art.iterdir()), (list(art.iterdir()), tail)
    for bad in ("ERROR: libFuzzer", "ERROR: AddressSanitizer", "runtime error:", "check failed"):
        assert bad not in log, tail
    assert "Done " in log, tail
