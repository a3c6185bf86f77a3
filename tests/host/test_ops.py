"""Host tests of the compute kernels in modules/ against numpy.

The kernels are built into tests/host/ops_harness.c several times: scalar
(-march=x86-64), the machine's own ISA (-march=native), and x86-64-v3 /
x86-64-v4+VNNI / AVX-VNNI builds that run only when this CPU has those
features.  Run: /usr/bin/python3 -m pytest tests/host/test_ops.py
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import quant_ref_np as qr  # noqa: E402
from hostbuild import build  # noqa: E402

MODULES = ["mm_f32", "mm_f16", "mm_q8_0", "mm_q4_0", "mm_q4_1", "mm_q5_0", "mm_q5_1",
           "mm_q2_K", "mm_q3_K", "mm_q4_K", "mm_q5_K", "mm_q6_K",
           "quantize", "rmsnorm", "rope", "swiglu", "add", "attention", "modrt"]
SOURCES = [f"modules/{m}.c" for m in MODULES] + ["tests/host/ops_harness.c"]
WTYPES = ["f32", "f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K",
          "q6_K"]
# Row-tiled SIMD in the scalar float order (Q4_0's tiles fuse the scale
# multiply-add as ggml's AVX2 kernel does, so only agree to rounding).
TILED = ("q8_0", "q4_1", "q5_0", "q5_1")
F32 = np.float32


def cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


FLAGS = cpu_flags()
V3 = {"avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "abm"}
V4 = V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
BUILDS = {  # name -> (compiler flags, CPU flags needed to run it)
    "scalar": (["-march=x86-64"], set()),
    # clang 19 warns that a CPU with AVX10.1 (Granite Rapids) gets avx10.1-512.
    "native": (["-march=native", "-Wno-invalid-feature-combination", "-O2"], set()),
    "v3": (["-march=x86-64-v3", "-O2"], V3),
    "v4vnni": (["-march=x86-64-v4", "-mavx512vnni", "-O2"], V4 | {"avx512_vnni"}),
    "avxvnni": (["-march=x86-64-v3", "-mavxvnni", "-O2"], V3 | {"avx_vnni"}),
}
_exes = {}


def harness(name):
    """Build (always, so every ISA variant is compile-checked) and return the
    harness executable; skip the test if this CPU cannot run it."""
    flags, need = BUILDS[name]
    if name not in _exes:
        _exes[name] = build(f"ops_harness_{name}", SOURCES, flags)
    if not need <= FLAGS:
        pytest.skip(f"CPU lacks {sorted(need - FLAGS)}")
    return _exes[name]


class H:
    """Runs one harness build on arrays, through files in a temp dir."""

    def __init__(self, build_name, tmp):
        self.exe, self.tmp, self.k = harness(build_name), tmp, 0

    def file(self, data):
        self.k += 1
        p = self.tmp / f"in{self.k}.bin"
        p.write_bytes(data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes())
        return p

    def run(self, *args, out_dtype=np.float32):
        out = self.tmp / "out.bin"
        subprocess.run([str(self.exe), *map(str, args), str(out)], check=True)
        return np.fromfile(out, dtype=out_dtype)

    def quant(self, t, x):
        return self.run("quant", t, len(x), self.file(np.asarray(x, F32)),
                        out_dtype=np.uint8).tobytes()

    def mm(self, t, w, x, n_in, n_out, n_tok, row0, row1):
        y = self.run("mm", t, n_in, n_out, n_tok, row0, row1, self.file(w), self.file(x))
        return y.reshape(n_tok, n_out)


ALL_BUILDS = list(BUILDS)


@pytest.fixture(params=ALL_BUILDS)
def h(request, tmp_path):
    return H(request.param, tmp_path)


@pytest.fixture(params=["scalar", "native"])
def h2(request, tmp_path):
    return H(request.param, tmp_path)


# ---------------------------------------------------------------- data

def rand_f16(rng, n, lo, hi):
    return rng.uniform(lo, hi, n).astype(np.float16)


def random_weights(rng, t, n_out, n_in):
    """Random blocks: every packed field random, scales in a sane range."""
    qk, dt = qr.BLOCK[t]
    nb = n_out * n_in // qk
    if t == "f32":
        return rng.standard_normal(n_out * n_in).astype(F32).tobytes()
    if t == "f16":
        return rng.standard_normal(n_out * n_in).astype(np.float16).tobytes()
    b = np.frombuffer(rng.integers(0, 256, nb * dt.itemsize, dtype=np.uint8).tobytes(),
                      dtype=dt).copy()
    b["d"] = rand_f16(rng, nb, 0.001, 0.05) * rng.choice([-1, 1], nb)
    if "dmin" in dt.names:
        b["dmin"] = rand_f16(rng, nb, 0.0, 0.02)
    if "m" in dt.names:
        b["m"] = rand_f16(rng, nb, -0.4, 0.4)
    return b.tobytes()


def acts(rng, n_tok, n_in):
    x = rng.standard_normal((n_tok, n_in)).astype(F32)
    x *= rng.uniform(0.1, 10, (n_tok, 1)).astype(F32)
    x[0, :7] = 0  # a few exact zeros
    return x


def exact_data(rng, t, n_in, n_out, n_tok):
    """Weights and activation blocks whose dot products are exact in float:
    power-of-two scales (one per tensor), small integers.  Returns
    (w bytes, x bytes, exact float64 reference of shape (n_tok, n_out))."""
    qk, dt = qr.BLOCK[t]
    if t in ("f32", "f16"):
        w = (rng.integers(-8, 9, n_out * n_in) * 0.125)
        x = (rng.integers(-8, 9, n_tok * n_in) * 0.25)
        ft = F32 if t == "f32" else np.float16
        ref = w.reshape(n_out, n_in) @ x.reshape(n_tok, n_in).T
        return w.astype(ft).tobytes(), x.astype(ft).tobytes(), ref.T
    nb = n_out * n_in // qk
    b = np.frombuffer(rng.integers(0, 256, nb * dt.itemsize, dtype=np.uint8).tobytes(),
                      dtype=dt).copy()
    b["d"] = 2.0 ** -6
    if "dmin" in dt.names:
        b["dmin"] = 2.0 ** -6
    if "m" in dt.names:
        b["m"] = -8 * 2.0 ** -6
    if t == "q8_0":
        b["qs"][:, 0] = -128  # the SIMD sign trick must handle it
    at = qr.ACT[t]
    aq, adt = qr.BLOCK[at]
    na = n_tok * n_in // aq
    a = np.zeros(na, adt)
    lim = 127 if at in ("q8_0", "q8_0s") else 7
    a["qs"] = rng.integers(-lim, lim + 1, (na, aq))
    a["d"] = 2.0 ** -5
    if at == "q8_K":
        a["bsums"] = a["qs"].astype(np.int64).reshape(na, 16, 16).sum(axis=2)
    if at == "q8_0s":
        a["msum8"] = -8 * a["qs"].astype(np.int64).sum(axis=1)
    if at == "q8_1":   # |sum| <= 224: s = d * sum is exact in f16
        a["s"] = 2.0 ** -5 * a["qs"].astype(np.int64).sum(axis=1)
    q, sc, off = qr.int_form(t, b.tobytes())
    bound = (np.abs(q * sc) + np.abs(off)).reshape(n_out, n_in) @ \
        np.full(n_in, float(lim)) * 2.0 ** -5
    assert bound.max() < 2.0 ** 24 * 2.0 ** -11, "exact-test data could round"
    wd = qr.dequant(t, b.tobytes()).reshape(n_out, n_in)
    xd = qr.dequant(at, a.tobytes()).reshape(n_tok, n_in)
    return b.tobytes(), a.tobytes(), xd @ wd.T


# ---------------------------------------------------------------- builds

def test_isa_paths():
    out = subprocess.run([str(harness("scalar")), "isa"], check=True,
                         capture_output=True, text=True).stdout
    assert "avx2=0" in out and "f16c=0" in out
    if "avx2" in FLAGS:
        out = subprocess.run([str(harness("native")), "isa"], check=True,
                             capture_output=True, text=True).stdout
        assert "avx2=1" in out


def test_mem_functions(h):
    out = subprocess.run([str(h.exe), "mem"], capture_output=True, text=True).stdout
    assert out.strip() == "OK"


FREESTANDING = ["-std=c11", "-ffreestanding", "-fno-builtin", "-fPIC", "-fno-stack-protector",
                "-mno-red-zone", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror"]


@pytest.mark.parametrize("march", [["-O1", "-march=x86-64"], ["-O3", "-march=x86-64-v3"],
                                   ["-O3", "-march=x86-64-v4"],
                                   ["-O3", "-march=native", "-Wno-invalid-feature-combination"],
                                   ["-O3", "-march=x86-64-v4", "-mavx512vnni"],
                                   ["-O3", "-march=x86-64-v3", "-mavxvnni"]])
def test_modules_freestanding(tmp_path, march):
    """Each module builds with the module flags, and linked alone with modrt
    it has no undefined symbols and no relocations (position independent)."""
    lld = shutil.which("ld.lld-19")
    readelf = shutil.which("llvm-readelf-19")
    objs = {}
    for m in MODULES:
        o = tmp_path / f"{m}.o"
        subprocess.run(["clang-19", *FREESTANDING, *march, "-c", str(ROOT / "modules" / f"{m}.c"),
                        "-o", str(o)], check=True)
        objs[m] = o
    if not (lld and readelf):
        pytest.skip("ld.lld-19 / llvm-readelf-19 missing")
    for m in MODULES:
        if m == "modrt":
            continue
        so = tmp_path / f"{m}.so"
        subprocess.run([lld, "-shared", "--no-undefined", "-o", str(so), str(objs[m]),
                        str(objs["modrt"])], check=True)
        rel = subprocess.run([readelf, "-r", str(so)], capture_output=True, text=True).stdout
        assert "no relocations" in rel, f"{m}: {rel}"


# ---------------------------------------------------------------- conversions

def test_f16_all_halves(h):
    bits = np.arange(65536, dtype=np.uint16)
    got = h.run("dequant", "f16", 65536, h.file(bits))
    want = bits.view(np.float16).astype(F32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


def test_f16_from_float(h):
    rng = np.random.default_rng(1)
    specials = np.array([0.0, -0.0, 1.0, 65504, 65519.99, 65520, 65536, 1e30, np.inf, -np.inf,
                         2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26,
                         1.5 * 2.0 ** -24, 2.5 * 2.0 ** -24, 2.0 ** -14, 2.0 ** -14 * 0.99999,
                         1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1e-8, -3.14159, np.nan], F32)
    # exact ties between neighbouring halves, normal and subnormal
    h16 = rng.integers(0, 0x7bff, 2000).astype(np.uint16)
    lo = h16.view(np.float16).astype(np.float64)
    hi = (h16 + 1).view(np.float16).astype(np.float64)
    ties = ((lo + hi) / 2).astype(F32)
    x = np.concatenate([specials, -specials, ties,
                        (rng.standard_normal(20000) * 10.0 ** rng.uniform(-9, 5, 20000)).astype(F32)])
    got = h.run("quant", "f16", len(x), h.file(x), out_dtype=np.uint16)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    nan = np.isnan(x)
    assert np.all(np.isnan(got[nan].view(np.float16)))
    bad = np.nonzero(got[~nan] != want[~nan])[0]
    assert len(bad) == 0, [(float(x[~nan][i]), hex(got[~nan][i]), hex(want[~nan][i])) for i in bad[:5]]


def test_copy_f32(h):
    x = np.random.default_rng(2).standard_normal(100).astype(F32)
    assert h.quant("f32", x) == x.tobytes()


@pytest.mark.parametrize("t", ["q8_0", "q8_0s", "q8_0_x86", "q8_1", "q8_K"])
def test_quantize_act(h, t):
    rng = np.random.default_rng(3)
    n = 256 * 6
    x = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3)).astype(F32)
    x[:256] = 0                              # zero block
    x[256:512] = np.abs(x[256:512])          # max positive
    x[512:768] = -np.abs(x[512:768])         # max negative
    x[800] = 1e4                             # outlier
    x[1024:1280] = rng.integers(-3, 4, 256)  # ties in x * scale
    got = h.quant(t, x)
    want = {"q8_0": qr.quantize_q8_0, "q8_0_x86": qr.quantize_q8_0_x86, "q8_1": qr.quantize_q8_1,
            "q8_K": qr.quantize_q8_K, "q8_0s": qr.quantize_q8_0s}[t](x)
    if t == "q8_0s":   # every field, d as float32 bits
        assert got == want
        return
    bt = t[:4]
    gb, wb = qr.blocks(bt, got), qr.blocks(bt, want)
    assert np.array_equal(gb["qs"], wb["qs"])
    assert np.array_equal(gb["d"].view(np.uint32 if bt == "q8_K" else np.uint16),
                          wb["d"].view(np.uint32 if bt == "q8_K" else np.uint16))
    if t == "q8_1":
        assert np.array_equal(gb["s"].view(np.uint16), wb["s"].view(np.uint16))
    if t == "q8_K":
        assert np.array_equal(gb["bsums"], wb["bsums"])
        assert np.abs(gb["qs"]).max() <= 127


def test_quantize_q8_0s_special_values_scalar_simd_agree(tmp_path):
    """The SIMD Q8_0S quantiser gives the scalar one's bytes also on blocks
    with inf, NaN (anywhere in the block), ties at .5, denormals, an amax
    whose 1/d overflows, and values in every vector lane position."""
    rng = np.random.default_rng(21)
    blocks = []
    for k in range(120):
        b = (rng.standard_normal(32) * 10.0 ** rng.uniform(-4, 4)).astype(F32)
        if k % 6 == 1:
            b[rng.integers(32)] = np.inf * rng.choice([-1, 1])
        if k % 6 == 2:
            b[rng.integers(32)] = np.nan
        if k % 6 == 3:
            b[:] = rng.integers(-254, 255, 32) * F32(0.5)   # x * id on .5 ties
        if k % 6 == 4:   # denormals: d = amax / 127 denormal or 0, 1/d huge or inf
            b[:] = rng.standard_normal(32).astype(F32) * F32(10.0 ** -rng.uniform(38, 44))
        if k % 6 == 5:
            b[:] = 0
            b[k % 32] = -3.0
        blocks.append(b)
    x = np.concatenate(blocks).astype(F32)
    s, v = H("scalar", tmp_path), H("native", tmp_path)
    assert v.quant("q8_0s", x) == s.quant("q8_0s", x)
    finite = np.concatenate([b for k, b in enumerate(blocks) if k % 6 in (0, 3, 5)])   # numpy: no inf casts
    assert v.quant("q8_0s", finite) == qr.quantize_q8_0s(finite)


@pytest.mark.parametrize("t", WTYPES)
def test_dequant(h2, t):
    rng = np.random.default_rng(4)
    n = 512 * 3
    w = random_weights(rng, t, 1, n)
    got = h2.run("dequant", t, n, h2.file(w))
    want = qr.dequant(t, w)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("t", WTYPES)
def test_np_reference_vs_tools_quants(t):
    """Cross-check quant_ref_np against the model writer's tools/quants.py."""
    try:
        sys.path.insert(0, str(ROOT / "tools"))
        import gguf
        import quants
    except Exception as e:  # pragma: no cover - optional
        pytest.skip(f"tools/quants.py not importable: {e}")
    rng = np.random.default_rng(5)
    w = random_weights(rng, t, 1, 512)
    tid = gguf.GGML_TYPE_BY_NAME[t.upper()]
    theirs = quants.dequantize(w, tid, 512).astype(np.float64)
    assert np.allclose(qr.dequant(t, w), theirs, rtol=1e-6, atol=1e-7)


def test_np_quantizers_vs_tools_quants():
    """The activation quantizers agree with tools/quants.py's act_* (which
    return dequantized values)."""
    try:
        sys.path.insert(0, str(ROOT / "tools"))
        import quants
    except Exception as e:  # pragma: no cover - optional
        pytest.skip(f"tools/quants.py not importable: {e}")
    rng = np.random.default_rng(15)
    x = (rng.standard_normal(1024) * 3).astype(F32)
    x[:256] = 0
    x[300:340] = rng.integers(-4, 5, 40)
    for mine, theirs, bt in [(qr.quantize_q8_0, quants.act_q8_0, "q8_0"),
                             (qr.quantize_q8_0_x86, quants.act_q8_0_avx, "q8_0"),
                             (qr.quantize_q8_K, quants.act_q8_k, "q8_K")]:
        got = qr.dequant(bt, mine(x)).astype(F32)
        assert np.array_equal(got, theirs(x)), theirs.__name__


# ---------------------------------------------------------------- matmul

def mm_reference(t, w, xq, n_out, n_in, n_tok):
    xd = qr.dequant(qr.ACT[t], xq).reshape(n_tok, n_in)
    if qr.ACT[t] == "q8_1":
        # w = d*q + m per block of 32: the m term meets the activation block's
        # stored f16 sum s (llama.cpp's ggml_vec_dot_q4_1_q8_1), not sum(d*q)
        q, sc, off = qr.int_form(t, w)
        wq = (sc * q).reshape(n_out, n_in)
        m = -off.reshape(n_out, n_in // 32, 32)[:, :, 0]
        s = qr.blocks("q8_1", xq)["s"].astype(np.float64).reshape(n_tok, n_in // 32)
        return xd @ wq.T + s @ m.T, np.abs(xd) @ np.abs(wq).T + np.abs(s) @ np.abs(m).T
    wd = qr.dequant(t, w).reshape(n_out, n_in)
    ref = xd @ wd.T
    mag = np.abs(xd) @ np.abs(wd).T
    return ref, mag


@pytest.mark.parametrize("t", WTYPES)
@pytest.mark.parametrize("n_tok,rows", [(1, (0, 37)), (7, (3, 29)), (9, (36, 37))])
def test_mm(h, t, n_tok, rows):
    rng = np.random.default_rng(100 * WTYPES.index(t) + n_tok)
    n_in, n_out = 512 if t not in ("f32", "f16") else 200, 37
    w = random_weights(rng, t, n_out, n_in)
    x = acts(rng, n_tok, n_in)
    xq = h.quant(qr.ACT[t], x.ravel())
    assert xq == qr.quantize_act(t, x.ravel())   # C quantizer = numpy reference
    y = h.mm(t, w, xq, n_in, n_out, n_tok, *rows)
    ref, mag = mm_reference(t, w, xq, n_out, n_in, n_tok)
    r0, r1 = rows
    err = np.abs(y[:, r0:r1] - ref[:, r0:r1])
    assert np.all(err <= 1e-5 * mag[:, r0:r1] + 1e-30), err.max()
    outside = np.ones(n_out, bool)
    outside[r0:r1] = False
    assert np.all(y[:, outside] == F32(1e30))   # other rows untouched


@pytest.mark.parametrize("t", WTYPES)
def test_mm_token_groups_invariant(h, t):
    """A token's result does not depend on how tokens are grouped (prefill
    processes 4 at a time, 8 in the 16-row zmm tiles): n_tok = 11 equals 11
    single-token products, on rows in 16-row tiles, 8-row tiles and alone."""
    rng = np.random.default_rng(6)
    n_in, n_out, n_tok = 512, 29, 11
    w = random_weights(rng, t, n_out, n_in)
    xq = h.quant(qr.ACT[t], acts(rng, n_tok, n_in).ravel())
    y = h.mm(t, w, xq, n_in, n_out, n_tok, 0, n_out)
    rb = len(xq) // n_tok
    for k in range(n_tok):
        y1 = h.mm(t, w, xq[k * rb:(k + 1) * rb], n_in, n_out, 1, 0, n_out)
        assert np.array_equal(y1[0], y[k])


@pytest.mark.parametrize("t", WTYPES)
def test_mm_row_split_invariant(h, t):
    """A row's result does not depend on the row range it is computed in
    (8-row tiles vs left-over rows), as when rows are split over CPUs."""
    rng = np.random.default_rng(14)
    n_in, n_out, n_tok = 256, 21, 5
    w = random_weights(rng, t, n_out, n_in)
    xq = h.quant(qr.ACT[t], acts(rng, n_tok, n_in).ravel())
    y = h.mm(t, w, xq, n_in, n_out, n_tok, 0, n_out)
    for r0, r1 in [(1, 21), (3, 12), (12, 21), (20, 21)]:
        yp = h.mm(t, w, xq, n_in, n_out, n_tok, r0, r1)
        assert np.array_equal(yp[:, r0:r1], y[:, r0:r1])


@pytest.mark.parametrize("t", WTYPES)
def test_mm_exact_integer_paths(h, t):
    """With power-of-two scales every path (scalar, AVX2, VNNI) must give the
    exact product: the integer parts agree bit for bit."""
    rng = np.random.default_rng(7)
    n_in, n_out, n_tok = (512 if t != "q6_K" else 256), 9, 6
    w, x, ref = exact_data(rng, t, n_in, n_out, n_tok)
    y = h.mm(t, w, x, n_in, n_out, n_tok, 0, n_out)
    assert np.array_equal(y.astype(np.float64), ref)


@pytest.mark.parametrize("t", WTYPES)
def test_mm_scalar_simd_agree(tmp_path, t):
    """Scalar and SIMD builds agree on realistic data (float summation order
    differs only)."""
    rng = np.random.default_rng(8)
    n_in, n_out, n_tok = 1024, 40, 11   # 16-row tiles, an 8-row one; tokens 8 + 3
    w = random_weights(rng, t, n_out, n_in)
    x = acts(rng, n_tok, n_in).ravel()
    s, v = H("scalar", tmp_path), H("native", tmp_path)
    xq = s.quant(qr.ACT[t], x)
    assert v.quant(qr.ACT[t], x) == xq
    ys = s.mm(t, w, xq, n_in, n_out, n_tok, 0, n_out)
    yv = v.mm(t, w, xq, n_in, n_out, n_tok, 0, n_out)
    _, mag = mm_reference(t, w, xq, n_out, n_in, n_tok)
    assert np.all(np.abs(ys - yv) <= 2e-6 * mag)
    if t in TILED:   # row-tiled SIMD keeps the scalar float order
        assert np.array_equal(ys, yv)


# ---------------------------------------------------------------- element-wise

def test_rmsnorm(h):
    rng = np.random.default_rng(9)
    n = 2048
    x = (rng.standard_normal(n) * 3).astype(F32)
    w = rng.standard_normal(n).astype(F32)
    got = h.run("rmsnorm", n, "1e-5", h.file(x), h.file(w))
    ss = np.sum((x * x).astype(np.float64))
    scale = F32(1) / np.sqrt(F32(ss / n) + F32(1e-5))
    want = (x * scale) * w
    assert np.allclose(got, want, rtol=1e-6, atol=1e-7)


def test_rope(h):
    rng = np.random.default_rng(10)
    nh, hd, pos = 4, 64, 17
    x = rng.standard_normal(nh * hd).astype(F32)
    theta = pos * 10000.0 ** (-np.arange(0, hd, 2) / hd)
    cs = np.stack([np.cos(theta), np.sin(theta)], 1).astype(F32).ravel()
    got = h.run("rope", nh, hd, h.file(x), h.file(cs)).reshape(nh, hd)
    xr = x.reshape(nh, hd // 2, 2).astype(np.float64)
    c, s = cs[0::2].astype(np.float64), cs[1::2].astype(np.float64)
    want = np.stack([xr[..., 0] * c - xr[..., 1] * s, xr[..., 0] * s + xr[..., 1] * c], -1)
    assert np.allclose(got, want.reshape(nh, hd), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [5632, 13])   # 13: the AVX2 build's partial last vector
def test_swiglu_add(h, n):
    rng = np.random.default_rng(11)
    g = (rng.standard_normal(n) * 4).astype(F32)
    g[:4] = [0, -100, 100, -0.0]
    g[-1] = 30
    u = rng.standard_normal(n).astype(F32)
    got = h.run("swiglu", n, h.file(g), h.file(u))
    gd = g.astype(np.float64)
    assert np.allclose(got, gd / (1 + np.exp(-gd)) * u, rtol=1e-6, atol=1e-30)
    got = h.run("add", n, h.file(g), h.file(u))
    assert np.array_equal(got, g + u)


def test_swiglu_exp_range(h):
    """silu over the whole range where expf(-v) is a normal float (the
    AVX2 build's vexpf8, modules/vexpf.h), its ends, and NaN in, NaN out."""
    g = np.concatenate([np.linspace(-87.3, 87.3, 40001), [-88.8, 89.0, -1e30, 1e30, np.nan]]).astype(F32)
    u = np.ones_like(g)
    got = h.run("swiglu", len(g), h.file(g), h.file(u))
    gd = g[:-1].astype(np.float64)
    with np.errstate(over="ignore"):
        want = gd / (1 + np.exp(-gd))
    assert np.allclose(got[:-1], want, rtol=1e-6, atol=1e-30)
    assert np.isnan(got[-1])


def test_softmax(h):
    rng = np.random.default_rng(12)
    for n in (1, 7, 300):
        s = (rng.standard_normal(n) * 8 + 50).astype(F32)
        got = h.run("softmax", n, h.file(s))
        e = np.exp(s.astype(np.float64) - s.max())
        assert np.allclose(got, e / e.sum(), rtol=1e-6, atol=1e-9)
        assert abs(got.astype(np.float64).sum() - 1) < 1e-5


def test_attention(h):
    """F16 q, K and V (the F16 KV cache), F16-rounded probabilities, F32
    products and sums: against float64 products of the same halves."""
    rng = np.random.default_rng(13)
    n_pos, hd, stride = 37, 64, 256   # rows of a KV cache with 4 heads
    q = rng.standard_normal(hd).astype(np.float16)
    k = rng.standard_normal(n_pos * stride).astype(np.float16)
    v = rng.standard_normal(n_pos * stride).astype(np.float16)
    kk = k.reshape(n_pos, stride)[:, :hd].astype(np.float64)
    vv = v.reshape(n_pos, stride)[:, :hd].astype(np.float64)
    q64 = q.astype(np.float64)
    got = h.run("scores", n_pos, hd, stride, 0.125, h.file(q), h.file(k))
    want = 0.125 * (kk @ q64)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(kk @ np.abs(q64)).max())
    p = rng.random(n_pos).astype(F32)
    got = h.run("wsum", n_pos, hd, stride, h.file(p), h.file(v))
    p16 = p.astype(np.float16).astype(np.float64)     # rounded as llama.cpp does
    assert np.allclose(got, p16 @ vv, rtol=1e-5, atol=1e-6 * (p16 @ np.abs(vv)).max())
    assert not np.allclose(got, p @ vv, rtol=1e-7, atol=0)   # the rounding is there


def test_quantize_q8_K_special_values_scalar_simd_agree(tmp_path):
    """The SIMD Q8_K quantiser gives the scalar one's bytes: ties of |max|
    (the first one sets the sign of d), NaN (skipped by the amax), inf,
    a zero block, denormals, and the largest value in every lane."""
    rng = np.random.default_rng(22)
    blocks = []
    for k in range(20):
        b = (rng.standard_normal(256) * 10.0 ** rng.uniform(-3, 3)).astype(F32)
        big = F32(np.abs(b).max() * 2)
        if k % 5 == 0:
            i, j = sorted(rng.choice(256, 2, replace=False))
            b[i], b[j] = (big, -big) if k % 2 else (-big, big)
        if k % 5 == 1:
            b[rng.integers(256)] = np.nan
        if k % 5 == 2:
            b[rng.integers(256)] = np.inf * rng.choice([-1, 1])
        if k % 5 == 3:
            b[:] = 0 if k < 10 else rng.standard_normal(256).astype(F32) * F32(1e-41)
        if k % 5 == 4:
            b[(7 * k) % 256] = big
        blocks.append(b)
    x = np.concatenate(blocks).astype(F32)
    s, v = H("scalar", tmp_path), H("native", tmp_path)
    assert v.quant("q8_K", x) == s.quant("q8_K", x)


@pytest.mark.parametrize("hd", [64, 128, 80, 36])
def test_attention_scalar_simd_identical(tmp_path, hd):
    """The SIMD scores (8 positions at a time, transposed lane sums) and
    weighted sum (64 outputs in registers) give the scalar build's bits, for
    position counts around the 8-block and head sizes on and off the
    blocked paths (36: not a multiple of 8; 80: not of 64)."""
    rng = np.random.default_rng(31 + hd)
    s_, v_ = H("scalar", tmp_path), H("native", tmp_path)
    stride = 2 * hd + 8
    for n_pos in (1, 7, 8, 9, 37, 129):
        q = rng.standard_normal(hd).astype(np.float16)
        k = rng.standard_normal(n_pos * stride).astype(np.float16)
        v = rng.standard_normal(n_pos * stride).astype(np.float16)
        p = rng.random(n_pos).astype(F32)
        for h in (s_, v_):
            h.sc = h.run("scores", n_pos, hd, stride, 0.125, h.file(q), h.file(k))
            h.ws = h.run("wsum", n_pos, hd, stride, h.file(p), h.file(v))
        assert np.array_equal(s_.sc.view(np.uint32), v_.sc.view(np.uint32)), n_pos
        assert np.array_equal(s_.ws.view(np.uint32), v_.ws.view(np.uint32)), n_pos


def test_quantize_q8_0_non_finite(tmp_path):
    """Blocks holding NaN or inf (what garbage weights make of the
    activations) quantize without an undefined float-to-int conversion: the
    scalar build runs under UBSan, which stops at one.  Values as ggml's
    quantize_row_q8_0_ref computes them on x86: amax = MAX(amax, |x|) skips
    the elements before a NaN; (int8_t)roundf(v) of NaN or |v| >= 2^31 is 0
    (cvttss2si's 0x80000000)."""
    exe = build("ops_harness_ubsan", SOURCES, ["-march=x86-64", "-fsanitize=undefined", "-fno-sanitize-recover=all"])
    x = np.zeros((3, 32), F32)
    x[0, :4] = [np.nan, 1.0, 0.5, -1.0]     # amax 1: NaN -> 0, the rest as usual
    x[1, :2] = [np.inf, 1.0]                # amax inf, d inf, id 0: inf*0 = NaN -> 0, 1*0 -> 0
    x[2, :3] = [1.0, np.nan, 1e-30]         # amax 1e-30 (the NaN hid 1.0): 1.0*id = 1.27e32 -> 0
    src, out = tmp_path / "x.bin", tmp_path / "y.bin"
    src.write_bytes(x.tobytes())
    p = subprocess.run([str(exe), "quant", "q8_0", str(x.size), str(src), str(out)], capture_output=True, text=True)
    assert p.returncode == 0 and "runtime error" not in p.stderr, p.stderr
    b = qr.blocks("q8_0", out.read_bytes())
    assert b["qs"][0, :4].tolist() == [0, 127, 64, -127] and not b["qs"][0, 4:].any()
    assert not b["qs"][1].any() and b["d"][1].view(np.uint16) == 0x7c00   # f16 +inf
    assert b["qs"][2, :3].tolist() == [0, 0, 127] and not b["qs"][2, 3:].any()
