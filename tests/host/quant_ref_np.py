"""Independent numpy reference for ggml block formats (tests only).

Written from the block layouts in shared/REFERENCE.md (and, for Q4_1, Q5_0,
Q5_1, Q8_1, Q2_K and Q3_K, modules/ops.h's comments on ggml-common.h): numpy
structured dtypes for the blocks, row dequantisers returning float64, and the
activation quantisers (llama.cpp quantize_row_q8_0_ref / q8_K_ref rounding
and the x86 SIMD q8_0 / q8_1 ones, in float32 arithmetic step by step).
"""
import numpy as np

F32, F16 = np.float32, np.float16

BLOCK = {  # type -> (weights per block, numpy dtype of one block)
    "f32": (1, np.dtype("<f4")),
    "f16": (1, np.dtype("<f2")),
    "q8_0": (32, np.dtype([("d", "<f2"), ("qs", "i1", 32)])),
    "q8_1": (32, np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)])),
    "q4_0": (32, np.dtype([("d", "<f2"), ("qs", "u1", 16)])),
    "q4_1": (32, np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)])),
    "q5_0": (32, np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)], align=False)),
    "q5_1": (32, np.dtype([("d", "<f2"), ("m", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)])),
    "q2_K": (256, np.dtype([("scales", "u1", 16), ("qs", "u1", 64), ("d", "<f2"), ("dmin", "<f2")])),
    "q3_K": (256, np.dtype([("hmask", "u1", 32), ("qs", "u1", 64), ("scales", "u1", 12),
                            ("d", "<f2")])),
    "q4_K": (256, np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12),
                            ("qs", "u1", 128)])),
    "q5_K": (256, np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12),
                            ("qh", "u1", 32), ("qs", "u1", 128)])),
    "q6_K": (256, np.dtype([("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16),
                            ("d", "<f2")])),
    "q8_K": (256, np.dtype([("d", "<f4"), ("qs", "i1", 256), ("bsums", "<i2", 16)])),
    # Fluid's activation block for Q4_0/Q8_0 weights (modules/ops.h)
    "q8_0s": (32, np.dtype([("d", "<f4"), ("msum8", "<i4"), ("qs", "i1", 32)])),
}
ACT = {"f32": "f32", "f16": "f16", "q8_0": "q8_0s", "q4_0": "q8_0s", "q5_0": "q8_0",
       "q4_1": "q8_1", "q5_1": "q8_1", "q2_K": "q8_K", "q3_K": "q8_K",
       "q4_K": "q8_K", "q5_K": "q8_K", "q6_K": "q8_K"}


def row_bytes(t, n):
    qk, dt = BLOCK[t]
    return n // qk * dt.itemsize


def blocks(t, raw):
    """View raw bytes (or a uint8 array) as an array of blocks of type t."""
    if not isinstance(raw, (bytes, bytearray)):
        raw = np.ascontiguousarray(raw, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=BLOCK[t][1])


def k4_scales(sc):
    """Q4_K/Q5_K 12 packed bytes (..., 12) -> scales, mins (..., 8) ints."""
    s = sc.astype(np.int64)
    scale = np.empty(s.shape[:-1] + (8,), np.int64)
    mn = np.empty_like(scale)
    for j in range(8):
        if j < 4:
            scale[..., j] = s[..., j] & 63
            mn[..., j] = s[..., j + 4] & 63
        else:
            scale[..., j] = (s[..., j + 4] & 15) | ((s[..., j - 4] >> 6) << 4)
            mn[..., j] = (s[..., j + 4] >> 4) | ((s[..., j] >> 6) << 4)
    return scale, mn


def k4_nibbles(qs):
    """(nb, 128) bytes -> (nb, 256) nibbles in weight order."""
    q = qs.astype(np.int64).reshape(-1, 4, 32)
    return np.stack([q & 15, q >> 4], axis=2).reshape(-1, 256)


def q5_high(qh):
    """(nb, 32) qh bytes -> (nb, 256) fifth bits: group g low/high use bit 2g/2g+1."""
    h = qh.astype(np.int64)
    return np.concatenate([(h >> b) & 1 for b in range(8)], axis=1)


def nibbles32(qs):
    """(nb, 16) bytes -> (nb, 32): byte j holds weight j (low) and j + 16 (high)."""
    q = qs.astype(np.int64)
    return np.concatenate([q & 15, q >> 4], axis=1)


def fifth_bits(qh):
    """(nb,) u32 -> (nb, 32): bit j is weight j's fifth bit."""
    return (qh.astype(np.int64)[:, None] >> np.arange(32)) & 1


def crumbs(qs):
    """Q2_K/Q3_K (nb, 64) qs -> (nb, 256) 2-bit values: weight 128h + 32k + l is
    bits 2k, 2k+1 of qs[32h + l]."""
    q = qs.astype(np.int64)
    out = np.empty((len(q), 256), np.int64)
    for h in range(2):
        for k in range(4):
            out[:, 128 * h + 32 * k:128 * h + 32 * k + 32] = (q[:, 32 * h:32 * h + 32] >> (2 * k)) & 3
    return out


def q3_scales(sc):
    """Q3_K (nb, 12) -> (nb, 16) scales: low 4 bits from bytes 0-7 (low nibbles
    for 0-7, high for 8-15), top 2 bits from byte 8 + j % 4 at bit 2 * (j // 4);
    minus 32."""
    s = sc.astype(np.int64)
    out = np.empty((len(s), 16), np.int64)
    for j in range(16):
        lo = s[:, j] & 15 if j < 8 else s[:, j - 8] >> 4
        out[:, j] = (lo | (((s[:, 8 + j % 4] >> (2 * (j // 4))) & 3) << 4)) - 32
    return out


def q3_values(b):
    """Q3_K blocks -> (nb, 256) ints in [-4, 3]: 2-bit part minus 4 unless the
    high bit (bit j // 32 of hmask[j % 32]) is set."""
    h = b["hmask"].astype(np.int64)
    high = np.concatenate([(h >> bit) & 1 for bit in range(8)], axis=1)
    return crumbs(b["qs"]) - 4 * (1 - high)


def q6_values(b):
    """Q6_K blocks -> (nb, 256) ints q - 32 in weight order."""
    out = np.empty((len(b), 256), np.int64)
    for half in range(2):
        ql = b["ql"][:, 64 * half:64 * half + 64].astype(np.int64)
        qh = b["qh"][:, 32 * half:32 * half + 32].astype(np.int64)
        lows = [ql[:, :32] & 15, ql[:, 32:] & 15, ql[:, :32] >> 4, ql[:, 32:] >> 4]
        for k in range(4):
            out[:, 128 * half + 32 * k:128 * half + 32 * k + 32] = \
                (lows[k] | (((qh >> (2 * k)) & 3) << 4)) - 32
    return out


def int_form(t, raw):
    """Blocks -> (q, scale, offset) with w = scale*q - offset, float64 arrays
    of shape (n,) each (scale/offset per weight)."""
    b = blocks(t, raw)
    if t == "f32":
        v = b.astype(np.float64)
        return v, np.ones_like(v), np.zeros_like(v)
    if t == "f16":
        v = b.astype(np.float64)
        return v, np.ones_like(v), np.zeros_like(v)
    d = b["d"].astype(np.float64)[:, None]
    if t in ("q8_0", "q8_K", "q8_0s"):
        q = b["qs"].astype(np.float64)
        return q.ravel(), np.repeat(d, q.shape[1], 1).ravel(), np.zeros(q.size)
    if t == "q4_0":
        qs = b["qs"].astype(np.int64)
        q = np.concatenate([(qs & 15) - 8, (qs >> 4) - 8], axis=1).astype(np.float64)
        return q.ravel(), np.repeat(d, 32, 1).ravel(), np.zeros(q.size)
    if t == "q8_1":
        q = b["qs"].astype(np.float64)
        return q.ravel(), np.repeat(d, 32, 1).ravel(), np.zeros(q.size)
    if t in ("q4_1", "q5_0", "q5_1"):
        q = nibbles32(b["qs"])
        if t != "q4_1":
            q = q | (fifth_bits(b["qh"]) << 4)
        if t == "q5_0":
            return (q - 16).astype(np.float64).ravel(), np.repeat(d, 32, 1).ravel(), np.zeros(q.size)
        m = b["m"].astype(np.float64)[:, None]
        return q.astype(np.float64).ravel(), np.repeat(d, 32, 1).ravel(), np.repeat(-m, 32, 1).ravel()
    if t == "q2_K":
        sc = b["scales"].astype(np.int64)
        dmin = b["dmin"].astype(np.float64)[:, None]
        q = crumbs(b["qs"]).astype(np.float64)
        return q.ravel(), np.repeat(d * (sc & 15), 16, 1).ravel(), np.repeat(dmin * (sc >> 4), 16, 1).ravel()
    if t == "q3_K":
        q = q3_values(b).astype(np.float64)
        return q.ravel(), np.repeat(d * q3_scales(b["scales"]), 16, 1).ravel(), np.zeros(q.size)
    if t in ("q4_K", "q5_K"):
        sc, mn = k4_scales(b["scales"])
        q = k4_nibbles(b["qs"])
        if t == "q5_K":
            q = q + 16 * q5_high(b["qh"])
        dmin = b["dmin"].astype(np.float64)[:, None]
        scale = np.repeat(d * sc, 32, 1)
        off = np.repeat(dmin * mn, 32, 1)
        return q.astype(np.float64).ravel(), scale.ravel(), off.ravel()
    if t == "q6_K":
        q = q6_values(b).astype(np.float64)
        scale = np.repeat(d * b["scales"].astype(np.float64), 16, 1)
        return q.ravel(), scale.ravel(), np.zeros(q.size)
    raise ValueError(t)


def dequant(t, raw):
    """Row(s) of type t -> float64 weights (products of float32 scales in
    float64, so exact for the values ggml rounds to float32)."""
    q, scale, off = int_form(t, raw)
    return scale * q - off


# ---- activation quantisers (bit-exact llama.cpp reference rounding) ----

def fp16_bits(x):
    return np.asarray(x, F32).astype(F16).view(np.uint16)


def quantize_q8_0(x):
    x = np.asarray(x, F32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / F32(127)).astype(F32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    v = (x * idv[:, None]).astype(F32).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)           # roundf
    out = np.zeros(len(x), BLOCK["q8_0"][1])
    out["d"] = d.astype(F16)
    out["qs"] = q.astype(np.int8)
    return out.tobytes()


def quantize_q8_0s(x):
    """Q8_0 blocks with d widened to float32 and msum8 = -8 * the sum of q."""
    b = np.frombuffer(quantize_q8_0(x), BLOCK["q8_0"][1])
    out = np.zeros(len(b), BLOCK["q8_0s"][1])
    out["d"] = b["d"].astype(F32)
    out["qs"] = b["qs"]
    out["msum8"] = -8 * b["qs"].astype(np.int32).sum(axis=1)
    return out.tobytes()


def q8_0s_to_q8_0(raw):
    """Q8_0S blocks -> the ggml block_q8_0 bytes they widen (d back to f16:
    exact, it was f16-rounded), for llama.cpp's own Q8_0 functions."""
    b = blocks("q8_0s", raw)
    out = np.zeros(len(b), BLOCK["q8_0"][1])
    out["d"] = b["d"].astype(F16)
    out["qs"] = b["qs"]
    return out.tobytes()


def quantize_q8_0_x86(x):
    """ggml's x86 SIMD quantize_row_q8_0: id = 127/amax, round half to even."""
    x = np.asarray(x, F32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    with np.errstate(divide="ignore"):
        idv = np.where(amax != 0, F32(127) / amax, F32(0)).astype(F32)
    q = np.rint((x * idv[:, None]).astype(F32))
    out = np.zeros(len(x), BLOCK["q8_0"][1])
    out["d"] = (amax / F32(127)).astype(F32).astype(F16)
    out["qs"] = q.astype(np.int8)
    return out.tobytes()


def quantize_q8_1(x):
    """ggml's x86 SIMD quantize_row_q8_1: as quantize_q8_0_x86, plus s = d * sum(q)
    (float32 d, f16 s)."""
    x = np.asarray(x, F32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    with np.errstate(divide="ignore"):
        idv = np.where(amax != 0, F32(127) / amax, F32(0)).astype(F32)
    q = np.rint((x * idv[:, None]).astype(F32))
    d = (amax / F32(127)).astype(F32)
    out = np.zeros(len(x), BLOCK["q8_1"][1])
    out["d"] = d.astype(F16)
    out["s"] = (d * q.sum(axis=1).astype(F32)).astype(F32).astype(F16)
    out["qs"] = q.astype(np.int8)
    return out.tobytes()


def quantize_q8_K(x):
    x = np.asarray(x, F32).reshape(-1, 256)
    out = np.zeros(len(x), BLOCK["q8_K"][1])
    for i, row in enumerate(x):
        ax = np.abs(row)
        if ax.max() == 0:
            continue
        mx = row[int(np.argmax(ax))]                     # first largest |x|
        iscale = F32(-127) / mx
        v = np.rint((iscale * row).astype(F32)).astype(np.int64)   # nearest_int
        q = np.minimum(127, v)
        out[i]["qs"] = q
        out[i]["bsums"] = q.reshape(16, 16).sum(axis=1)
        out[i]["d"] = F32(1) / iscale
    return out.tobytes()


def quantize_act(t, x):
    """Activation row(s) for weight type t, in its vec_dot type."""
    a = ACT[t]
    if a == "f32":
        return np.asarray(x, F32).tobytes()
    if a == "f16":
        return np.asarray(x, F32).astype(F16).tobytes()
    return {"q8_0": quantize_q8_0, "q8_0s": quantize_q8_0s, "q8_1": quantize_q8_1,
            "q8_K": quantize_q8_K}[a](x)
