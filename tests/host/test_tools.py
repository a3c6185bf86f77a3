"""Tests of the host-side model tools: tools/gguf.py, quants.py, vocab.py, make_model.py,
llama_ref.py.

The checks against llama.cpp use /work/shared/testdata/llamacpp (models and outputs made
by llama.cpp itself) and are skipped when that folder is absent.

    /usr/bin/python3 -m pytest -q tests/host/test_tools.py
"""
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
sys.path.insert(0, str(TOOLS))

import gguf  # noqa: E402
from gguf import (GGUFReader, GGUFWriter, GGML_F32, GGML_F16, GGML_BF16, GGML_Q4_0,  # noqa: E402
                  GGML_Q8_0, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, GGML_Q8_K, GGML_TYPES)
import quants  # noqa: E402

SHARED = Path(os.environ.get("FLUID_SHARED", "/work/shared")) / "testdata" / "llamacpp"
MINI_TYPES = ["F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M"]
need_shared = pytest.mark.skipif(not (SHARED / "mini-Q8_0.gguf").exists(),
                                 reason="shared/testdata/llamacpp is absent")
PY = "/usr/bin/python3"


def shared_file(t):
    return SHARED / f"mini-{t}.gguf"


# ------------------------------------------------------------------ (1) GGUF reader/writer

ALL_KV = [
    ("t.u8", 200, gguf.GGUF_U8), ("t.i8", -100, gguf.GGUF_I8), ("t.u16", 60000, gguf.GGUF_U16),
    ("t.i16", -30000, gguf.GGUF_I16), ("t.u32", 4000000000, gguf.GGUF_U32),
    ("t.i32", -2000000000, gguf.GGUF_I32), ("t.f32", 1.5, gguf.GGUF_F32), ("t.bool", True, gguf.GGUF_BOOL),
    ("t.str", "h\u00e9llo \u2581world", gguf.GGUF_STRING), ("t.u64", 2**63 + 5, gguf.GGUF_U64),
    ("t.i64", -2**62, gguf.GGUF_I64), ("t.f64", 2.0 ** -40, gguf.GGUF_F64),
    ("t.empty", "", gguf.GGUF_STRING),
]


def _write_sample(path, alignment=32, chunked=False):
    rng = np.random.default_rng(5)
    w = GGUFWriter(path, alignment=alignment)
    w.add("general.architecture", "llama")
    if alignment != 32:
        w.add("general.alignment", alignment, gguf.GGUF_U32)
    for k, v, t in ALL_KV:
        w.add(k, v, t)
    w.add("a.strs", ["a", "", "\u2581\u2581", "<0x0A>"])
    w.add("a.f32", np.array([0.5, -1e9, 3.25], np.float32))
    w.add("a.i32", np.array([1, -2, 3], np.int32))
    w.add("a.u8", np.array([1, 2, 255], np.uint8))
    w.add("a.f64", np.array([1e300], np.float64))
    w.add("a.bool", [True, False, True])
    w.add("a.empty", np.array([], np.int64))
    w.add("a.nested", [[1, 2], [3]], gguf.GGUF_ARRAY, gguf.GGUF_ARRAY)
    tensors = {}
    for name, ne, t in [("a", [32, 3], GGML_F32), ("b", [64, 2], GGML_F16), ("c", [32, 5], GGML_Q4_0),
                        ("d", [32, 1], GGML_Q8_0), ("e", [256, 2], GGML_Q4_K), ("f", [256, 1], GGML_Q5_K),
                        ("g", [256, 3], GGML_Q6_K), ("h", [7], GGML_F32), ("i", [8, 2, 3], GGML_F16)]:
        x = rng.standard_normal(int(np.prod(ne))).astype(np.float32).reshape(list(reversed(ne)))
        tensors[name] = (ne, t, quants.quantize(x, t))
        w.add_tensor_info(name, ne, t)
    w.write_header()
    for name, (ne, t, data) in tensors.items():
        if chunked and len(data) > 10:
            w.write_tensor_data(name, iter([data[:10], data[10:]]))
        else:
            w.write_tensor_data(name, data)
    w.close()
    return tensors


@pytest.mark.parametrize("alignment,chunked", [(32, False), (64, True), (1, False)])
def test_gguf_roundtrip(tmp_path, alignment, chunked):
    p = tmp_path / "rt.gguf"
    tensors = _write_sample(p, alignment, chunked)
    r = GGUFReader(p)
    assert r.version == 3
    assert r.alignment == alignment
    assert r.data_start % alignment == 0
    for k, v, t in ALL_KV:
        assert r.kv_types[k] == (t, None)
        if t in (gguf.GGUF_F32,):
            assert r.kv[k] == pytest.approx(v)
        else:
            assert r.kv[k] == v, k
    assert r.kv["a.strs"] == ["a", "", "\u2581\u2581", "<0x0A>"]
    assert r.kv_types["a.strs"] == (gguf.GGUF_ARRAY, gguf.GGUF_STRING)
    assert r.kv["a.f32"].dtype == np.float32 and list(r.kv["a.f32"]) == [0.5, -1e9, 3.25]
    assert r.kv_types["a.i32"] == (gguf.GGUF_ARRAY, gguf.GGUF_I32) and list(r.kv["a.i32"]) == [1, -2, 3]
    assert list(r.kv["a.u8"]) == [1, 2, 255] and list(r.kv["a.f64"]) == [1e300]
    assert list(r.kv["a.bool"]) == [True, False, True]
    assert len(r.kv["a.empty"]) == 0
    assert [list(a) for a in r.kv["a.nested"]] == [[1, 2], [3]]
    assert [t.name for t in r.tensors] == list(tensors)
    for ti in r.tensors:
        ne, t, data = tensors[ti.name]
        assert ti.ne == ne and ti.type == t
        assert ti.offset % alignment == 0
        assert bytes(r.raw(ti.name)) == bytes(data)
        assert r.array(ti.name).shape == tuple(reversed(ne))
    # file ends right after the last tensor's (padded) data
    last = r.tensors[-1]
    assert os.path.getsize(p) == gguf.align_up(last.data_offset + last.nbytes, alignment)


def test_gguf_header_bytes_by_hand(tmp_path):
    """A hand-assembled minimal file and the writer's output are byte-identical."""
    p = tmp_path / "h.gguf"
    w = GGUFWriter(p)
    w.add("k", 7, gguf.GGUF_U32)
    w.add_tensor_info("t", [4], GGML_F32)
    w.write_header()
    w.write_tensor_data("t", np.arange(4, dtype="<f4"))
    w.close()
    hdr = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    hdr += struct.pack("<Q", 1) + b"k" + struct.pack("<II", 4, 7)
    hdr += struct.pack("<Q", 1) + b"t" + struct.pack("<IQIQ", 1, 4, 0, 0)
    hdr += b"\0" * (-len(hdr) % 32)
    data = np.arange(4, dtype="<f4").tobytes()
    assert p.read_bytes() == hdr + data + b"\0" * 16        # each tensor padded to the alignment


def test_gguf_writer_checks(tmp_path):
    w = GGUFWriter(tmp_path / "x.gguf")
    w.add("a", 1)
    with pytest.raises(KeyError):
        w.add("a", 2)
    with pytest.raises(ValueError):
        w.add_tensor_info("q", [33, 2], GGML_Q4_0)       # row not a multiple of the block
    w.add_tensor_info("t", [4], GGML_F32)
    w.write_header()
    with pytest.raises(ValueError):
        w.write_tensor_data("t", b"123")
    w.abort()
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x.gguf.partial").exists()


@need_shared
@pytest.mark.parametrize("t", MINI_TYPES)
def test_gguf_reads_llamacpp_files(t):
    r = GGUFReader(shared_file(t))
    assert r.kv["general.architecture"] == "llama"
    assert r.kv["llama.embedding_length"] == 256 and r.kv["llama.block_count"] == 4
    assert len(r.tensors) == 3 + 4 * 9
    end = max(ti.data_offset + ti.nbytes for ti in r.tensors)
    assert end <= os.path.getsize(shared_file(t)) < end + 64


# ------------------------------------------------------------------ (2) quantization

def _f16(b):
    return float(np.frombuffer(bytes(b), "<f2")[0])


def scalar_dequant(block, t):
    """Straight transcription of shared/REFERENCE.md's block layouts, one block."""
    b = [int(v) for v in block]
    out = [0.0] * GGML_TYPES[t][1]
    if t == GGML_Q8_0:
        d = _f16(block[0:2])
        for j in range(32):
            q = b[2 + j] - 256 if b[2 + j] > 127 else b[2 + j]
            out[j] = d * q
    elif t == GGML_Q4_0:
        d = _f16(block[0:2])
        for j in range(16):
            out[j] = d * ((b[2 + j] & 15) - 8)
            out[j + 16] = d * ((b[2 + j] >> 4) - 8)
    elif t in (GGML_Q4_K, GGML_Q5_K):
        d, dmin = _f16(block[0:2]), _f16(block[2:4])
        s = b[4:16]

        def sm(j):
            if j < 4:
                return s[j] & 63, s[j + 4] & 63
            return (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        qh = b[16:48] if t == GGML_Q5_K else None
        q = b[48:176] if t == GGML_Q5_K else b[16:144]
        for g in range(4):
            for half in range(2):
                sub = 2 * g + half
                sc, mn = sm(sub)
                for l in range(32):
                    byte = q[32 * g + l]
                    nib = (byte & 15) if half == 0 else (byte >> 4)
                    if qh is not None and (qh[l] >> (2 * g + half)) & 1:
                        nib += 16
                    out[32 * sub + l] = d * sc * nib - dmin * mn
    elif t == GGML_Q6_K:
        ql, qh = b[0:128], b[128:192]
        sc = [v - 256 if v > 127 else v for v in b[192:208]]
        d = _f16(block[208:210])
        for h in range(2):
            for l in range(32):
                qs = [(ql[64 * h + l] & 15) | (((qh[32 * h + l] >> 0) & 3) << 4),
                      (ql[64 * h + l + 32] & 15) | (((qh[32 * h + l] >> 2) & 3) << 4),
                      (ql[64 * h + l] >> 4) | (((qh[32 * h + l] >> 4) & 3) << 4),
                      (ql[64 * h + l + 32] >> 4) | (((qh[32 * h + l] >> 6) & 3) << 4)]
                for k in range(4):
                    out[128 * h + l + 32 * k] = d * sc[8 * h + l // 16 + 2 * k] * (qs[k] - 32)
    else:
        raise ValueError(t)
    return np.array(out)


@pytest.mark.parametrize("t", [GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K])
def test_dequant_layout_matches_reference_sheet(t):
    rng = np.random.default_rng(t)
    _, bs, ts = GGML_TYPES[t]
    blocks = rng.integers(0, 256, size=(6, ts), dtype=np.uint8)
    # sane f16 scales (random bytes could be inf/nan)
    for off in {GGML_Q8_0: [0], GGML_Q4_0: [0], GGML_Q4_K: [0, 2], GGML_Q5_K: [0, 2], GGML_Q6_K: [208]}[t]:
        blocks[:, off:off + 2] = rng.uniform(-0.1, 0.1, 6).astype("<f2").view(np.uint8).reshape(6, 2)
    got = quants.dequantize(blocks.reshape(-1), t, 6 * bs).reshape(6, bs)
    for i in range(6):
        np.testing.assert_allclose(got[i], scalar_dequant(blocks[i], t), rtol=1e-6, atol=1e-7)


QERR = {GGML_F16: 3e-4, GGML_BF16: 2.5e-3, GGML_Q8_0: 0.006, GGML_Q8_K: 0.008, GGML_Q4_0: 0.09,
        GGML_Q4_K: 0.075, GGML_Q5_K: 0.038, GGML_Q6_K: 0.019}


@pytest.mark.parametrize("t", list(QERR))
def test_quantize_error_bounds(t):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 512)).astype(np.float32) * 3
    q = quants.quantize(x, t)
    _, bs, ts = GGML_TYPES[t]
    assert q.dtype == np.uint8 and len(q) == x.size // bs * ts
    y = quants.dequantize(q, t, x.size).reshape(x.shape)
    rel = np.sqrt(np.mean((x - y) ** 2)) / np.sqrt(np.mean(x ** 2))
    assert rel < QERR[t], rel
    # every block's largest value is represented to within a step
    assert np.all(np.isfinite(y))
    z = np.zeros((2, 256), np.float32)
    assert not quants.dequantize(quants.quantize(z, t), t, z.size).any()


def test_activation_quantizers():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 512)).astype(np.float32)
    for f, tol in [(quants.act_q8_0, 0.006), (quants.act_q8_0_avx, 0.006), (quants.act_q8_k, 0.008),
                   (quants.act_f16, 3e-4)]:
        y = f(x)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.sqrt(np.mean((x - y) ** 2)) < tol
    # act_q8_k equals dequantize(quantize(Q8_K)) (same reference algorithm)
    q = quants.quantize(x, GGML_Q8_K)
    np.testing.assert_array_equal(quants.act_q8_k(x), quants.dequantize(q, GGML_Q8_K, x.size).reshape(x.shape))
    b = q.reshape(-1, 292)
    qs = b[:, 4:260].view(np.int8).astype(np.int32)
    np.testing.assert_array_equal(b[:, 260:292].copy().view("<i2"), qs.reshape(-1, 16, 16).sum(2))
    # the Q8_0 variants only differ in rounding ties / last-ulp reciprocals
    assert np.mean(quants.act_q8_0(x) != quants.act_q8_0_avx(x)) < 1e-3
    assert quants.quantize_activation(x, GGML_F32) is not None


def test_scale_packing_roundtrip():
    rng = np.random.default_rng(3)
    sc = rng.integers(0, 64, (50, 8)).astype(np.uint8)
    mn = rng.integers(0, 64, (50, 8)).astype(np.uint8)
    s2, m2 = quants.unpack_scales_k4(quants.pack_scales_k4(sc, mn))
    np.testing.assert_array_equal(sc, s2)
    np.testing.assert_array_equal(mn, m2)


@need_shared
@pytest.mark.parametrize("t", MINI_TYPES)
def test_dequant_llamacpp_statistics(t):
    """Weights ~ N(0, 0.02), embeddings ~ N(0, 1), norms ~ 1 + N(0, 0.1) (the README)."""
    r = GGUFReader(shared_file(t))
    for ti in r.tensors:
        a = r.array(ti.name)
        assert np.all(np.isfinite(a)), ti.name
        if ti.name.endswith("norm.weight"):
            assert abs(a.mean() - 1) < 0.03 and 0.07 < a.std() < 0.13, ti.name
        elif ti.name == "token_embd.weight":
            assert abs(a.mean()) < 0.01 and 0.97 < a.std() < 1.03, ti.name
        else:
            assert abs(a.mean()) < 0.002 and 0.019 < a.std() < 0.021, ti.name


@need_shared
@pytest.mark.parametrize("t,name,min_equal", [
    ("Q4_0", "blk.0.ffn_up.weight", 0.99),
    ("Q4_0", "blk.1.attn_q.weight", 0.99),
    ("Q8_0", "blk.0.ffn_gate.weight", 0.6),
    ("Q4_K_M", "blk.0.ffn_up.weight", 0.6),
    ("Q4_K_M", "blk.2.ffn_down.weight", 0.85),     # Q6_K
    ("Q5_K_M", "blk.1.ffn_down.weight", 0.6),
])
def test_quantizers_agree_with_llama_quantize(t, name, min_equal):
    """Re-quantizing the F16 model's weights gives llama-quantize's values (it started from
    F32, so blocks whose scale moved by the F16 rounding may differ) and no larger error."""
    src = GGUFReader(shared_file("F16")).array(name)
    r = GGUFReader(shared_file(t))
    ti = r.tensor(name)
    ours = quants.dequantize(quants.quantize(src, ti.type), ti.type, ti.n_elements)
    theirs = quants.dequantize(r.raw(name), ti.type, ti.n_elements)
    assert np.mean(ours == theirs) >= min_equal
    s = src.reshape(-1)
    assert np.sqrt(np.mean((ours - s) ** 2)) <= 1.01 * np.sqrt(np.mean((theirs - s) ** 2))


# ------------------------------------------------------------------ (3) reference forward pass

@need_shared
@pytest.mark.parametrize("t", MINI_TYPES)
def test_llama_ref_matches_llamacpp(t):
    from llama_ref import LlamaRef
    model = LlamaRef(shared_file(t))
    runs = json.loads((SHARED / f"mini-{t}.json").read_text())
    n = agree = 0
    worst = 0.0
    for run in runs:
        prompt, greedy = run["prompt_tokens"], run["greedy"]
        logits = model.logits(prompt + greedy[:-1])          # teacher forcing
        assert np.all(np.isfinite(logits))
        for k, step in enumerate(run["steps"]):
            row = logits[len(prompt) - 1 + k]
            n += 1
            agree += int(np.argmax(row)) == step["top"][0][0]
            for tok, val in step["top"]:
                worst = max(worst, abs(float(row[tok]) - val))
    assert n == 48
    assert agree >= 47, f"top-1 agreement {agree}/48"
    assert worst <= 0.05, f"largest |logit difference| {worst}"


def test_llama_ref_cli_and_tied_output(tmp_path):
    import make_model
    p = tmp_path / "tiny-tied.gguf"
    make_model.make_model(p, "tiny", "Q8_0", seed=4, with_output=False)
    out = subprocess.run([PY, str(TOOLS / "llama_ref.py"), str(p), "--tokens", "1", "15043", "3186",
                          "--top", "3"], capture_output=True, text=True, check=True)
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["pos"] for x in lines] == [0, 1, 2]
    assert all(len(x["top"]) == 3 for x in lines)
    from llama_ref import LlamaRef
    m = LlamaRef(p)
    assert m.output_name == "token_embd.weight"
    lg = m.logits([1, 15043, 3186])
    assert lines[2]["top"][0][0] == int(np.argmax(lg[2]))


# ------------------------------------------------------------------ (4) vocabulary

def test_npm_deps_noop_is_fast():
    subprocess.run([str(TOOLS / "npm-deps.sh")], check=True)       # installs when missing
    t0 = time.time()
    subprocess.run([str(TOOLS / "npm-deps.sh")], check=True)
    assert time.time() - t0 < 1.0


def test_vocab_facts():
    from vocab import load_vocab, build_vocab
    v = load_vocab()
    toks, scores, types = v["tokens"], v["scores"], v["token_types"]
    assert len(toks) == len(scores) == len(types) == 32000
    assert toks[:3] == ["<unk>", "<s>", "</s>"] and toks[3] == "<0x00>" and toks[258] == "<0xFF>"
    assert toks[15043] == "\u2581Hello" and toks[3186] == "\u2581world" and toks[29991] == "!"
    assert types[0] == 2 and types[1:3] == [3, 3] and set(types[3:259]) == {6} and set(types[259:]) == {1}
    minus = [i for i, s in enumerate(scores) if s == -1e9]
    assert minus == [259, 268, 308, 418, 462, 539, 632, 795, 965, 1669, 1678, 3986, 4706, 9651, 18884, 29871]
    assert sorted(len(toks[i]) for i in minus) == list(range(1, 17))
    assert scores[260] == -1.0 and scores[31999] == -(31999 - 259)
    assert build_vocab() == v                    # the cache equals a fresh extraction


@need_shared
@pytest.mark.parametrize("t", ["Q8_0", "F16"])
def test_vocab_equals_llamacpp_gguf(t):
    from vocab import load_vocab
    v = load_vocab()
    r = GGUFReader(shared_file(t))
    assert r.kv["tokenizer.ggml.tokens"] == v["tokens"]
    np.testing.assert_array_equal(r.kv["tokenizer.ggml.scores"], np.asarray(v["scores"], np.float32))
    np.testing.assert_array_equal(r.kv["tokenizer.ggml.token_type"], np.asarray(v["token_types"], np.int32))
    for k in ("bos_token_id", "eos_token_id", "unknown_token_id"):
        assert r.kv["tokenizer.ggml." + k] == {"bos_token_id": 1, "eos_token_id": 2, "unknown_token_id": 0}[k]


# ------------------------------------------------------------------ (5) make_model

@pytest.mark.parametrize("ftype", ["F32", "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q4_1", "Q5_0", "Q5_1",
                                   "Q2_K"])
def test_make_model_tiny_deterministic(tmp_path, ftype):
    import make_model
    a, b, c = tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf"
    make_model.make_model(a, "tiny", ftype, seed=7)
    make_model.make_model(b, "tiny", ftype, seed=7)
    make_model.make_model(c, "tiny", ftype, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    r = GGUFReader(a)
    assert r.kv["general.alignment"] == 32 and r.kv["general.file_type"] == make_model.FILE_TYPES[ftype]
    assert r.kv["llama.embedding_length"] == 64 and r.kv["llama.block_count"] == 2
    assert len(r.tensors) == 3 + 2 * 9
    from llama_ref import LlamaRef
    lg = LlamaRef(a).logits([1, 450, 4996, 17354])
    assert np.all(np.isfinite(lg)) and lg.std(axis=1).min() > 0.05


@pytest.mark.parametrize("ftype", ["Q4_0", "Q4_K_M", "Q5_K_M", "Q8_0", "Q2_K", "Q3_K_S", "Q4_1", "Q5_0", "Q5_1",
                                   "Q6_K"])
def test_make_model_direct_blocks(tmp_path, ftype):
    """The direct block generator (used for the 1.1B preset) on the mini shapes:
    weights with the intended magnitudes, finite and varied logits."""
    import make_model
    p, p2 = tmp_path / "m.gguf", tmp_path / "m2.gguf"
    make_model.make_model(p, "mini", ftype, seed=1, gen="direct")
    make_model.make_model(p2, "mini", ftype, seed=1, gen="direct")
    assert p.read_bytes() == p2.read_bytes()
    r = GGUFReader(p)
    for ti in r.tensors:
        a = r.array(ti.name)
        assert np.all(np.isfinite(a))
        if ti.name.endswith("norm.weight"):      # 256 samples of 1 + N(0, 0.1)
            assert abs(a.mean() - 1) < 0.05 and 0.07 < a.std() < 0.13, ti.name
            continue
        want = 1.0 if ti.name == "token_embd.weight" else 0.02
        assert abs(a.std() / want - 1) < 0.05, (ti.name, a.std())
        assert abs(a.mean()) < 0.05 * want, (ti.name, a.mean())
    from llama_ref import LlamaRef
    lg = LlamaRef(p).logits([1, 9038, 2501, 263, 931])
    assert np.all(np.isfinite(lg)) and lg.std(axis=1).min() > 0.2


@need_shared
@pytest.mark.parametrize("ftype", MINI_TYPES)
def test_make_model_mini_matches_llamacpp_layout(tmp_path, ftype):
    """mini preset: same hyperparameters, vocabulary and per-tensor types as llama.cpp's files."""
    import make_model
    p = tmp_path / "mini.gguf"
    make_model.make_model(p, "mini", ftype, seed=2, gen="direct")
    ours, theirs = GGUFReader(p), GGUFReader(shared_file(ftype))
    assert {t.name: (t.type, t.ne) for t in ours.tensors} == {t.name: (t.type, t.ne) for t in theirs.tensors}
    for k, v in theirs.kv.items():
        if k.startswith("llama.") or k.startswith("tokenizer.") or k in (
                "general.architecture", "general.file_type", "general.quantization_version"):
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(ours.kv[k], v)
            else:
                assert ours.kv[k] == v, k
            assert ours.kv_types[k] == theirs.kv_types[k], k


@pytest.mark.parametrize("ftype,size_gb", [("Q4_0", 0.64), ("Q4_K_M", 0.67), ("Q8_0", 1.17), ("F16", 2.20)])
def test_make_model_tinyllama_header(ftype, size_gb):
    out = subprocess.run([PY, str(TOOLS / "make_model.py"), "--preset", "tinyllama", "--type", ftype,
                          "--dry-run"], capture_output=True, text=True, check=True)
    s = json.loads(out.stdout)
    assert 1.09e9 < s["n_params"] < 1.11e9
    assert abs(s["file_size"] / 1e9 - size_gb) < 0.01
    types = {name: (t, ne) for name, t, ne in s["tensors"]}
    assert len(types) == 3 + 22 * 9
    assert types["token_embd.weight"][1] == [2048, 32000]
    assert types["output.weight"][1] == [2048, 32000]
    assert types["blk.21.attn_q.weight"][1] == [2048, 2048]
    assert types["blk.0.attn_k.weight"][1] == [2048, 256]
    assert types["blk.0.attn_v.weight"][1] == [2048, 256]
    assert types["blk.5.ffn_gate.weight"][1] == [2048, 5632]
    assert types["blk.5.ffn_up.weight"][1] == [2048, 5632]
    assert types["blk.5.ffn_down.weight"][1] == [5632, 2048]
    assert types["blk.5.attn_norm.weight"] == ("F32", [2048])
    assert types["output_norm.weight"] == ("F32", [2048])
    kv = s["kv"]
    assert kv["llama.attention.head_count"] == 32 and kv["llama.attention.head_count_kv"] == 4
    assert kv["llama.feed_forward_length"] == 5632 and kv["llama.context_length"] == 2048
    assert kv["llama.rope.dimension_count"] == 64 and kv["general.alignment"] == 32
    mats = [n for n in types if not n.endswith("norm.weight")]
    if ftype == "Q4_0":
        assert types["output.weight"][0] == "Q6_K"
        assert all(types[n][0] == "Q4_0" for n in mats if n != "output.weight")
    elif ftype == "Q4_K_M":
        six = sorted(int(n.split(".")[1]) for n in mats if types[n][0] == "Q6_K" and n.startswith("blk"))
        more = [0, 1, 4, 7, 10, 13, 16, 19, 20, 21]
        assert six == sorted(more + more)                      # attn_v and ffn_down of those blocks
        assert types["output.weight"][0] == "Q6_K" and types["token_embd.weight"][0] == "Q4_K"
        assert {types[n][0] for n in mats} == {"Q4_K", "Q6_K"}
    else:
        assert {types[n][0] for n in mats} == {ftype}
