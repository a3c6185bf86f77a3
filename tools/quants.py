#!/usr/bin/python3
"""numpy quantize / dequantize for ggml block formats, byte-exact layouts.

Types: F32, F16, BF16 (dequantize), Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K,
Q5_K, Q6_K, Q8_K.

    dequantize(raw_bytes, ggml_type, n)      -> float32[n]
    quantize(float32 array, ggml_type)        -> uint8[nbytes] (row length must be a
                                                 multiple of the block size)

The weight quantizers follow ggml's quantize_row_*_ref (the functions llama-quantize
uses when it has no importance matrix): q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K,
q4_K, q5_K, q6_K, including make_qx_quants / make_q3_quants / make_qkx2_quants' scale
searches. They run vectorised in float32 (many blocks at once). q4_1, q5_0, q5_1,
q2_K and q3_K add their sums in the C loops' order (element by element) and give
llama.cpp's bytes exactly (tests/host/test_llamacpp_kernels.py checks them against
llama.cpp's own ggml_quantize_chunk); the older q4_K / q5_K / q6_K sum with numpy's
pairwise order, so a near-tie can go the other way in a few blocks, but the layout is
exact and llama.cpp reads the result.

Activation quantizers, as llama.cpp's CPU backend applies them to the input of a
matrix product (the weight's "vec_dot_type"):
    act_q8_0(x)   Q8_0 for Q8_0 (and Q5_0) weights, as quantize_row_q8_0_ref
                  (d = amax/127, id = 1/d, roundf)
    act_q8_1(x)   Q8_1 for Q4_1 / Q5_1 weights, as ggml's x86 SIMD quantize_row_q8_1
                  (id = 127/amax, round half to even; the block's f16 sum s is not
                  modelled: the dequantized values stand for it)
    act_q8_0_avx(x)  Q8_0 for Q4_0 weights, as the x86 SIMD code (id = 127/amax,
                  round half to even) used with llama.cpp's repacked Q4_0 kernels
                  (the choice per weight type was made by matching the logits of
                  llama.cpp c392e50 in shared/testdata: with it most positions agree
                  to 1e-5, the rest to a few 1e-3)
    act_q8_k(x)   Q8_K for K-quant weights: quantize_row_q8_K_ref (d = max/-127 as
                  float32, nearest_int, clamp at 127)
    act_f16(x)    F16 for F16 weights
each returning the dequantized float32 values that the integer dot product sees.
quantize_activation(x, weight_type) picks the right one.
"""
import numpy as np

from gguf import GGML_TYPES, GGML_F32, GGML_F16, GGML_BF16, GGML_Q4_0, GGML_Q4_1, \
    GGML_Q5_0, GGML_Q5_1, GGML_Q8_0, GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, \
    GGML_Q8_K, type_name

QK = 32
QK_K = 256
GROUP_MAX_EPS = np.float32(1e-15)
F32 = np.float32


def block_info(t):
    _, bs, ts = GGML_TYPES[t]
    return bs, ts


# ------------------------------------------------------------------ helpers

def _blocks(raw, t, n):
    bs, ts = block_info(t)
    if n % bs:
        raise ValueError(f"{n} elements is not a multiple of {type_name(t)}'s block {bs}")
    nb = n // bs
    b = np.frombuffer(raw, dtype=np.uint8, count=nb * ts) if not isinstance(raw, np.ndarray) \
        else np.asarray(raw, dtype=np.uint8).reshape(-1)[:nb * ts]
    return b.reshape(nb, ts)


def _f16(cols):
    """Read a little-endian f16 from a [nb, 2] uint8 slice -> float32[nb]."""
    return np.ascontiguousarray(cols).view("<f2")[:, 0].astype(np.float32)


def _f16_bytes(v):
    """float32[nb] -> [nb, 2] uint8 of the f16 value (round to nearest even)."""
    return np.asarray(v, dtype=np.float32).astype("<f2").view(np.uint8).reshape(-1, 2)


def _f32_bytes(v):
    return np.asarray(v, dtype="<f4").view(np.uint8).reshape(-1, 4)


def nearest_int(v):
    """ggml's nearest_int: round half to even (float32 magic-number trick)."""
    return np.rint(np.asarray(v, dtype=np.float32)).astype(np.int32)


def nearest_int_c(v):
    """ggml's nearest_int bit for bit, also where it is garbage (|v| > 2^22, inf,
    nan: its C code has only an assert there): float32 v + 1.5 * 2^23, low 23 bits."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = (np.asarray(v, dtype=np.float32) + F32(12582912.0)).astype(np.float32)
    return (f.view(np.int32) & 0x007FFFFF) - 0x00400000


def seqsum(a):
    """Sum along the last axis in float32, element by element from the first, as a C
    loop 'for (i...) s += a[i]' does (numpy's own sum pairs elements differently)."""
    a = np.asarray(a, dtype=np.float32)
    s = a[..., 0].copy()
    for i in range(1, a.shape[-1]):
        s += a[..., i]
    return s


def roundf(v):
    """C roundf: half away from zero (exact for float32 inputs)."""
    v = np.asarray(v, dtype=np.float64)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int32)


def unpack_scales_k4(s):
    """12 packed bytes [nb, 12] -> (scales [nb, 8], mins [nb, 8]) as uint8 (get_scale_min_k4)."""
    s = s.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def pack_scales_k4(sc, mn):
    """(scales [nb, 8], mins [nb, 8]) of 6 bits each -> 12 packed bytes [nb, 12]."""
    sc = np.asarray(sc, dtype=np.uint8)
    mn = np.asarray(mn, dtype=np.uint8)
    s = np.empty((sc.shape[0], 12), np.uint8)
    s[:, 0:4] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    s[:, 4:8] = (mn[:, :4] & 63) | ((mn[:, 4:] >> 4) << 6)
    s[:, 8:12] = (sc[:, 4:] & 15) | ((mn[:, 4:] & 15) << 4)
    return s


# ------------------------------------------------------------------ dequantize

def dequantize(raw, t, n=None):
    """Dequantize n elements of type t from raw bytes -> float32[n]."""
    if n is None:
        bs, ts = block_info(t)
        n = len(raw) // ts * bs
    if t == GGML_F32:
        return np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32) \
            if not isinstance(raw, np.ndarray) else np.asarray(raw).reshape(-1)[:4 * n].view("<f4").astype(np.float32)
    if t == GGML_F16:
        a = raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, dtype=np.uint8)
        return np.asarray(a, dtype=np.uint8).reshape(-1)[:2 * n].view("<f2").astype(np.float32)
    if t == GGML_BF16:
        a = np.asarray(raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, dtype=np.uint8),
                       dtype=np.uint8).reshape(-1)[:2 * n]
        return (a.view("<u2").astype(np.uint32) << 16).view(np.float32)
    fn = _DEQUANT.get(t)
    if fn is None:
        raise NotImplementedError(f"dequantize {type_name(t)}")
    return fn(_blocks(raw, t, n)).reshape(-1)


def _deq_q4_0(b):
    d = _f16(b[:, 0:2])
    qs = b[:, 2:18]
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int8) - np.int8(8)
    return d[:, None] * q.astype(np.float32)


def _deq_q4_1(b):
    d = _f16(b[:, 0:2])
    m = _f16(b[:, 2:4])
    qs = b[:, 4:20]
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)
    return d[:, None] * q + m[:, None]


def _q5_high(qh_bytes):
    qh = np.ascontiguousarray(qh_bytes).view("<u4")[:, 0]
    bits = (qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    return bits.astype(np.uint8) << 4          # [nb, 32]: bit j -> weight j


def _deq_q5_0(b):
    d = _f16(b[:, 0:2])
    h = _q5_high(b[:, 2:6])
    qs = b[:, 6:22]
    q = np.concatenate([qs & 15, qs >> 4], axis=1) | h
    return d[:, None] * (q.astype(np.float32) - 16)


def _deq_q5_1(b):
    d = _f16(b[:, 0:2])
    m = _f16(b[:, 2:4])
    h = _q5_high(b[:, 4:8])
    qs = b[:, 8:24]
    q = np.concatenate([qs & 15, qs >> 4], axis=1) | h
    return d[:, None] * q.astype(np.float32) + m[:, None]


def _q2_values(qs):
    """[nb, 64] Q2_K/Q3_K qs bytes -> [nb, 256] 2-bit values in weight order (half h,
    shift k: weight 128h + 32k + l is bits 2k..2k+1 of qs[32h + l])."""
    q = qs.reshape(-1, 2, 1, 32)
    return ((q >> (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]) & 3).reshape(-1, QK_K)


def _deq_q2_k(b):
    sc = b[:, 0:16]
    d = _f16(b[:, 80:82])
    dmin = _f16(b[:, 82:84])
    q = _q2_values(b[:, 16:80]).reshape(-1, 16, 16).astype(np.float32)
    dl = d[:, None] * (sc & 15).astype(np.float32)
    ml = dmin[:, None] * (sc >> 4).astype(np.float32)
    return (dl[:, :, None] * q - ml[:, :, None]).reshape(-1, QK_K)


def unpack_scales_q3_k(s):
    """[nb, 12] Q3_K scale bytes -> [nb, 16] scales in -32..31 (int32)."""
    s = s.astype(np.int32)
    j = np.arange(16)
    lo = np.where(j < 8, s[:, j % 8] & 15, s[:, j % 8] >> 4)
    hi = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    return (lo | (hi << 4)) - 32


def pack_scales_q3_k(l):
    """[nb, 16] 6-bit values 0..63 (scale + 32) -> [nb, 12] bytes."""
    l = np.asarray(l, dtype=np.uint8)
    out = np.zeros((l.shape[0], 12), np.uint8)
    out[:, 0:8] = (l[:, 0:8] & 15) | ((l[:, 8:16] & 15) << 4)
    for j in range(16):
        out[:, 8 + j % 4] |= (l[:, j] >> 4) << (2 * (j // 4))
    return out


def _q3_high(hmask):
    """[nb, 32] hmask -> [nb, 256] high bits: weight j is bit j // 32 of hmask[j % 32]."""
    return ((hmask[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1).reshape(-1, QK_K)


def _deq_q3_k(b):
    d = _f16(b[:, 108:110])
    sc = unpack_scales_q3_k(b[:, 96:108]).astype(np.float32)
    q = _q2_values(b[:, 32:96]).astype(np.int16) - 4 * (1 - _q3_high(b[:, 0:32]).astype(np.int16))
    dl = d[:, None] * sc
    return (dl[:, :, None] * q.reshape(-1, 16, 16).astype(np.float32)).reshape(-1, QK_K)


def _deq_q8_0(b):
    d = _f16(b[:, 0:2])
    q = b[:, 2:34].view(np.int8).astype(np.float32)
    return d[:, None] * q


def _k4_scales(b, d, dmin):
    sc, mn = unpack_scales_k4(b[:, 4:16])
    d1 = d[:, None] * sc.astype(np.float32)      # [nb, 8]
    m1 = dmin[:, None] * mn.astype(np.float32)
    return d1, m1


def _deq_q4_k(b):
    d = _f16(b[:, 0:2])
    dmin = _f16(b[:, 2:4])
    d1, m1 = _k4_scales(b, d, dmin)
    qs = b[:, 16:144].reshape(-1, 4, 32)
    q = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.float32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(-1, QK_K)


def _deq_q5_k(b):
    d = _f16(b[:, 0:2])
    dmin = _f16(b[:, 2:4])
    d1, m1 = _k4_scales(b, d, dmin)
    qh = b[:, 16:48]                               # [nb, 32]
    qs = b[:, 48:176].reshape(-1, 4, 32)
    shifts = np.arange(8, dtype=np.uint8)
    hb = ((qh[:, None, :] >> shifts[None, :, None]) & 1) << 4   # [nb, 8, 32]: bit j of qh[l]
    lo_hi = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32)
    q = (lo_hi | hb).astype(np.float32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(-1, QK_K)


def _deq_q6_k(b):
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 64)
    qh = b[:, 128:192].reshape(nb, 2, 32)
    sc = b[:, 192:208].view(np.int8).astype(np.float32)     # [nb, 16]
    d = _f16(b[:, 208:210])
    q = np.empty((nb, 2, 4, 32), np.int16)
    q[:, :, 0] = (ql[:, :, 0:32] & 15) | (((qh >> 0) & 3) << 4)
    q[:, :, 1] = (ql[:, :, 32:64] & 15) | (((qh >> 2) & 3) << 4)
    q[:, :, 2] = (ql[:, :, 0:32] >> 4) | (((qh >> 4) & 3) << 4)
    q[:, :, 3] = (ql[:, :, 32:64] >> 4) | (((qh >> 6) & 3) << 4)
    q = (q - 32).reshape(nb, 16, 16).astype(np.float32)      # weight i uses scale i // 16
    return ((d[:, None] * sc)[:, :, None] * q).reshape(nb, QK_K)


def _deq_q8_k(b):
    d = np.ascontiguousarray(b[:, 0:4]).view("<f4")[:, 0]
    q = b[:, 4:260].view(np.int8).astype(np.float32)
    return d[:, None] * q


_DEQUANT = {
    GGML_Q4_0: _deq_q4_0, GGML_Q4_1: _deq_q4_1, GGML_Q5_0: _deq_q5_0, GGML_Q5_1: _deq_q5_1,
    GGML_Q8_0: _deq_q8_0, GGML_Q2_K: _deq_q2_k, GGML_Q3_K: _deq_q3_k, GGML_Q4_K: _deq_q4_k,
    GGML_Q5_K: _deq_q5_k, GGML_Q6_K: _deq_q6_k, GGML_Q8_K: _deq_q8_k,
}


# ------------------------------------------------------------------ quantize (weights)

def quantize(x, t):
    """Quantize a float array (row length a multiple of the block size) -> uint8 bytes."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if t == GGML_F32:
        return x.reshape(-1).astype("<f4").view(np.uint8)
    if t == GGML_F16:
        return x.reshape(-1).astype("<f2").view(np.uint8)
    if t == GGML_BF16:
        u = x.reshape(-1).view(np.uint32).astype(np.uint64)
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")   # round to nearest even
        return r.view(np.uint8)
    bs, ts = block_info(t)
    if x.shape and x.shape[-1] % bs:
        raise ValueError(f"row length {x.shape[-1]} is not a multiple of {type_name(t)}'s block {bs}")
    fn = _QUANT.get(t)
    if fn is None:
        raise NotImplementedError(f"quantize {type_name(t)}")
    xb = x.reshape(-1, bs)
    out = np.empty((xb.shape[0], ts), np.uint8)
    step = 65536   # blocks per chunk, bounds temporary memory
    for i in range(0, xb.shape[0], step):
        out[i:i + step] = fn(xb[i:i + step])
    return out.reshape(-1)


def _first_absmax(x):
    """Value with the largest |x| per row, first one on ties (C loops with '<' / '>')."""
    idx = np.argmax(np.abs(x), axis=1)
    return x[np.arange(x.shape[0]), idx]


def quantize_q4_0(x):
    x = x.astype(np.float32)
    mx = _first_absmax(x)
    d = (mx / F32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)
    v = x * idv[:, None] + F32(8.5)
    q = np.minimum(15, np.trunc(v).astype(np.int32)).astype(np.uint8)
    out = np.empty((x.shape[0], 18), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:18] = q[:, :16] | (q[:, 16:] << 4)
    return out


def _pack_nibbles(q):
    """[nb, 32] values -> [nb, 16] bytes: byte j = weight j low nibble, j + 16 high."""
    q = np.asarray(q, dtype=np.uint8)
    return (q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)


def _pack_high_bits(q):
    """[nb, 32] 5-bit values -> [nb, 4] bytes of the u32 qh (bit j = bit 4 of weight j)."""
    bits = (np.asarray(q, dtype=np.uint32) >> 4) & 1
    qh = (bits << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    return qh.astype("<u4").view(np.uint8).reshape(-1, 4)


def _min_max(x):
    """quantize_row_q4_1/q5_1_ref's min and max of each block."""
    return x.min(axis=1), x.max(axis=1)


def quantize_q4_1(x):
    """quantize_row_q4_1_ref: d = (max - min)/15, q = min(15, trunc((x - min)/d + 0.5))."""
    x = x.astype(np.float32)
    mn, mx = _min_max(x)
    d = ((mx - mn) / F32(15)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)
    v = (x - mn[:, None]) * idv[:, None] + F32(0.5)
    q = np.minimum(15, np.trunc(v).astype(np.int32))
    out = np.empty((x.shape[0], 20), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:4] = _f16_bytes(mn)
    out[:, 4:20] = _pack_nibbles(q)
    return out


def quantize_q5_0(x):
    """quantize_row_q5_0_ref: d = max/-16 (max: the value of largest |x|),
    q = min(31, trunc(x/d + 16.5))."""
    x = x.astype(np.float32)
    mx = _first_absmax(x)
    d = (mx / F32(-16)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)
    v = x * idv[:, None] + F32(16.5)
    q = np.minimum(31, np.trunc(v).astype(np.int32))
    out = np.empty((x.shape[0], 22), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:6] = _pack_high_bits(q)
    out[:, 6:22] = _pack_nibbles(q)
    return out


def quantize_q5_1(x):
    """quantize_row_q5_1_ref: d = (max - min)/31, q = trunc((x - min)/d + 0.5) (no clamp:
    5 bits kept)."""
    x = x.astype(np.float32)
    mn, mx = _min_max(x)
    d = ((mx - mn) / F32(31)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)
    v = (x - mn[:, None]) * idv[:, None] + F32(0.5)
    q = np.trunc(v).astype(np.int32) & 31
    out = np.empty((x.shape[0], 24), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:4] = _f16_bytes(mn)
    out[:, 4:8] = _pack_high_bits(q)
    out[:, 8:24] = _pack_nibbles(q)
    return out


def quantize_q8_0(x):
    x = x.astype(np.float32)
    amax = np.abs(x).max(axis=1)
    d = (amax / F32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)
    q = roundf(x * idv[:, None])
    out = np.empty((x.shape[0], 34), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:34] = q.astype(np.int8).view(np.uint8)
    return out


def make_qx_quants(x, nmax):
    """ggml make_qx_quants(n, nmax, x, L, rmse_type=1, NULL), rows of x in parallel.
    Returns (scale float32[N], L int32[N, n] in 0..2*nmax-1)."""
    x = x.astype(np.float32)
    mx = _first_absmax(x)
    amax = np.abs(mx)
    zero = amax < GROUP_MAX_EPS
    safe = np.where(zero, F32(1), mx).astype(np.float32)
    w = x * x

    def attempt(iscale):
        l = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1)
        lf = l.astype(np.float32)
        sumlx = (w * x * lf).sum(axis=1, dtype=np.float32)
        suml2 = (w * lf * lf).sum(axis=1, dtype=np.float32)
        return l, sumlx, suml2

    l, sumlx, suml2 = attempt((F32(-nmax) / safe).astype(np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(suml2 != 0, sumlx / suml2, F32(0)).astype(np.float32)
    best = scale * sumlx
    L = l + nmax
    for i in range(-9, 10):
        if i == 0:
            continue
        iscale = (-(F32(nmax) + F32(0.1) * F32(i)) / safe).astype(np.float32)
        l, sumlx, suml2 = attempt(iscale)
        upd = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        if upd.any():
            L[upd] = l[upd] + nmax
            scale = np.where(upd, sumlx / np.where(upd, suml2, F32(1)), scale).astype(np.float32)
            best = np.where(upd, scale * sumlx, best).astype(np.float32)
    L[zero] = 0
    scale[zero] = 0
    return scale, L


def make_qkx2_quants(x, weights, nmax, rmin, rdelta, nstep):
    """ggml make_qkx2_quants(..., use_mad=false), rows in parallel.
    Returns (scale float32[N], the_min float32[N] (>= 0, subtracted), L int32[N, n])."""
    x = x.astype(np.float32)
    wts = weights.astype(np.float32)
    mn = np.minimum(x.min(axis=1), F32(0))
    mx = x.max(axis=1)
    sum_w = wts.sum(axis=1, dtype=np.float32)
    sum_x = (wts * x).sum(axis=1, dtype=np.float32)
    flat = mx == mn
    rng = np.where(flat, F32(1), mx - mn).astype(np.float32)
    iscale = (F32(nmax) / rng).astype(np.float32)
    scale = (F32(1) / iscale).astype(np.float32)
    L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
    diff = scale[:, None] * L.astype(np.float32) + mn[:, None] - x
    best_err = (wts * diff * diff).sum(axis=1, dtype=np.float32)
    mnv = mn.copy()
    for i in range(nstep + 1):
        # as in the C code, 'min' (mnv) is updated when a better fit is found and the
        # following steps use the updated value
        rng_i = np.where(flat, F32(1), mx - mnv).astype(np.float32)
        isc = ((F32(rmin) + F32(rdelta) * F32(i) + F32(nmax)) / rng_i).astype(np.float32)
        la = np.clip(nearest_int(isc[:, None] * (x - mnv[:, None])), 0, nmax)
        lf = la.astype(np.float32)
        sum_l = (wts * lf).sum(axis=1, dtype=np.float32)
        sum_l2 = (wts * lf * lf).sum(axis=1, dtype=np.float32)
        sum_xl = (wts * lf * x).sum(axis=1, dtype=np.float32)
        D = sum_w * sum_l2 - sum_l * sum_l
        ok = D > 0
        Ds = np.where(ok, D, F32(1))
        this_scale = ((sum_w * sum_xl - sum_x * sum_l) / Ds).astype(np.float32)
        this_min = ((sum_l2 * sum_x - sum_l * sum_xl) / Ds).astype(np.float32)
        pos = this_min > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            this_scale = np.where(pos, sum_xl / np.where(sum_l2 != 0, sum_l2, F32(1)), this_scale).astype(np.float32)
        this_min = np.where(pos, F32(0), this_min).astype(np.float32)
        d2 = this_scale[:, None] * lf + this_min[:, None] - x
        cur = (wts * d2 * d2).sum(axis=1, dtype=np.float32)
        upd = ok & (cur < best_err) & ~flat
        if upd.any():
            L[upd] = la[upd]
            best_err = np.where(upd, cur, best_err)
            scale = np.where(upd, this_scale, scale)
            mnv = np.where(upd, this_min, mnv)
    L[flat] = 0
    scale = np.where(flat, F32(0), scale).astype(np.float32)
    return scale, (-mnv).astype(np.float32), L


def make_qkx2_quants_seq(x, weights, nmax, rmin, rdelta, nstep, use_mad):
    """ggml make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep,
    use_mad) with every sum in the C loop's order: rows of x in parallel, bit-exact.
    Returns (scale float32[N], the_min float32[N] (>= 0, subtracted), L int32[N, n])."""
    x = x.astype(np.float32)
    w = weights.astype(np.float32)
    mn = np.minimum(x.min(axis=1), F32(0))
    mx = x.max(axis=1)
    sum_w = seqsum(w)
    sum_x = seqsum(w * x)
    flat = mx == mn
    rng = np.where(flat, F32(1), mx - mn).astype(np.float32)

    def err(scale, lv, m):
        diff = (scale[:, None] * lv.astype(np.float32) + m[:, None]) - x
        return seqsum(w * (np.abs(diff) if use_mad else diff * diff))

    iscale = (F32(nmax) / rng).astype(np.float32)
    scale = (F32(1) / iscale).astype(np.float32)
    L = np.clip(nearest_int_c(iscale[:, None] * (x - mn[:, None])), 0, nmax)
    best = err(scale, L, mn)
    for step in range(nstep + 1):
        # the C loop divides by max - min with min updated by earlier better fits
        rng_i = np.where(flat, F32(1), mx - mn).astype(np.float32)
        isc = ((F32(rmin) + F32(rdelta) * F32(step) + F32(nmax)) / rng_i).astype(np.float32)
        la = np.clip(nearest_int_c(isc[:, None] * (x - mn[:, None])), 0, nmax)
        lf = la.astype(np.float32)
        wl = w * lf
        sum_l, sum_l2, sum_xl = seqsum(wl), seqsum(wl * lf), seqsum(wl * x)
        D = sum_w * sum_l2 - sum_l * sum_l
        ok = (D > 0) & ~flat
        Ds = np.where(ok, D, F32(1))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t_scale = ((sum_w * sum_xl - sum_x * sum_l) / Ds).astype(np.float32)
            t_min = ((sum_l2 * sum_x - sum_l * sum_xl) / Ds).astype(np.float32)
            pos = t_min > 0
            t_scale = np.where(pos, sum_xl / np.where(pos, sum_l2, F32(1)), t_scale).astype(np.float32)
            t_min = np.where(pos, F32(0), t_min).astype(np.float32)
            cur = err(t_scale, la, t_min)
        upd = ok & (cur < best)
        L = np.where(upd[:, None], la, L)
        best = np.where(upd, cur, best)
        scale = np.where(upd, t_scale, scale)
        mn = np.where(upd, t_min, mn)
    L[flat] = 0
    scale = np.where(flat, F32(0), scale).astype(np.float32)
    return scale, (-mn).astype(np.float32), L


def make_q3_quants(x, nmax):
    """ggml make_q3_quants(n, nmax, x, L, do_rmse=true), rows in parallel, bit-exact
    (sums and the five rounds of one-at-a-time refinement in the C order).
    Returns (scale float32[N], L int32[N, n] in 0..2*nmax-1; all 0 for a zero row)."""
    x = x.astype(np.float32)
    n = x.shape[1]
    mx = _first_absmax(x)
    zero = np.abs(mx) < GROUP_MAX_EPS
    iscale = (F32(-nmax) / np.where(zero, F32(1), mx)).astype(np.float32)
    L = np.clip(nearest_int_c(iscale[:, None] * x), -nmax, nmax - 1)
    w = x * x
    wx = w * x
    sumlx = seqsum(wx * L.astype(np.float32))
    suml2 = seqsum((w * L.astype(np.float32)) * L.astype(np.float32))
    active = ~zero
    for _ in range(5):
        changed = np.zeros(len(x), bool)
        for i in range(n):
            li = L[:, i].astype(np.float32)
            slx = sumlx - wx[:, i] * li
            go = active & (slx > 0)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                sl2 = suml2 - (w[:, i] * li) * li
                new_l = np.clip(nearest_int_c((x[:, i] * sl2) / np.where(go, slx, F32(1))), -nmax, nmax - 1)
                nf = new_l.astype(np.float32)
                go &= new_l != L[:, i]
                slx2 = slx + wx[:, i] * nf
                sl22 = sl2 + (w[:, i] * nf) * nf
                go &= (sl22 > 0) & ((slx2 * slx2) * suml2 > (sumlx * sumlx) * sl22)
            L[:, i] = np.where(go, new_l, L[:, i])
            sumlx = np.where(go, slx2, sumlx).astype(np.float32)
            suml2 = np.where(go, sl22, suml2).astype(np.float32)
            changed |= go
        active &= changed
        if not active.any():
            break
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(suml2 > 0, sumlx / np.where(suml2 > 0, suml2, F32(1)), F32(0)).astype(np.float32)
    L = L + nmax
    L[zero] = 0
    scale[zero] = 0
    return scale, L


def _pack_q2(L):
    """[nb, 256] values 0..3 -> [nb, 64] bytes: qs[32h + l] holds weights 128h + 32k + l
    in bits 2k..2k+1."""
    L = np.asarray(L, dtype=np.uint8).reshape(-1, 2, 4, 32)
    return (L[:, :, 0] | (L[:, :, 1] << 2) | (L[:, :, 2] << 4) | (L[:, :, 3] << 6)).reshape(-1, 64)


def quantize_q2_k(x):
    """quantize_row_q2_K_ref: per sub-block of 16, make_qkx2_quants(nmax 3, weights |x|,
    rmin -0.5, rdelta 0.1, 15 steps, absolute error); 4-bit scales and mins against
    the block's largest (d = max_scale/15, dmin = max_min/15); weights requantized
    with the stored scales."""
    x = x.astype(np.float32)
    nb = x.shape[0]
    xs = x.reshape(nb * 16, 16)
    scales, mins, L = make_qkx2_quants_seq(xs, np.abs(xs), 3, -0.5, 0.1, 15, True)
    scales, mins, L = scales.reshape(nb, 16), mins.reshape(nb, 16), L.reshape(nb, 16, 16)
    max_scale = np.maximum(scales.max(axis=1), F32(0))
    max_min = np.maximum(mins.max(axis=1), F32(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        isc = np.where(max_scale > 0, F32(15) / max_scale, F32(0)).astype(np.float32)
        imn = np.where(max_min > 0, F32(15) / max_min, F32(0)).astype(np.float32)
    ls = np.where((max_scale > 0)[:, None], nearest_int_c(isc[:, None] * scales), 0) & 0xFF
    lm = np.where((max_min > 0)[:, None], nearest_int_c(imn[:, None] * mins), 0)
    sc = (ls | ((lm << 4) & 0xFF)).astype(np.uint8)
    d = np.where(max_scale > 0, max_scale / F32(15), F32(0)).astype(np.float32)
    dmin = np.where(max_min > 0, max_min / F32(15), F32(0)).astype(np.float32)
    d16 = d.astype(np.float16).astype(np.float32)
    m16 = dmin.astype(np.float16).astype(np.float32)
    dd = d16[:, None] * (sc & 15).astype(np.float32)
    dm = m16[:, None] * (sc >> 4).astype(np.float32)
    nz = dd != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.clip(nearest_int_c((x.reshape(nb, 16, 16) + dm[:, :, None]) /
                                   np.where(nz, dd, F32(1))[:, :, None]), 0, 3)
    L = np.where(nz[:, :, None], lq, L).reshape(nb, 256)
    out = np.empty((nb, 84), np.uint8)
    out[:, 0:16] = sc
    out[:, 16:80] = _pack_q2(L)
    out[:, 80:82] = _f16_bytes(d)
    out[:, 82:84] = _f16_bytes(dmin)
    return out


def quantize_q3_k(x):
    """quantize_row_q3_K_ref: per sub-block of 16, make_q3_quants(nmax 4, rmse); 6-bit
    signed scales against the one of largest magnitude (iscale = -32/max_scale, d =
    1/iscale); weights requantized with the stored scales to -4..3 and split into a
    2-bit part and a high bit (hmask, set for values >= 0)."""
    x = x.astype(np.float32)
    nb = x.shape[0]
    scales, L = make_q3_quants(x.reshape(nb * 16, 16), 4)
    scales, L = scales.reshape(nb, 16), L.reshape(nb, 16, 16)
    max_scale = _first_absmax(scales)
    have = max_scale != 0
    iscale = (F32(-32) / np.where(have, max_scale, F32(1))).astype(np.float32)
    l6 = np.clip(nearest_int_c(iscale[:, None] * scales), -32, 31) + 32
    packed = np.where(have[:, None], pack_scales_q3_k(l6), 0).astype(np.uint8)
    d = np.where(have, F32(1) / iscale, F32(0)).astype(np.float32)
    d16 = d.astype(np.float16).astype(np.float32)
    dd = d16[:, None] * unpack_scales_q3_k(packed).astype(np.float32)
    nz = dd != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.clip(nearest_int_c(x.reshape(nb, 16, 16) / np.where(nz, dd, F32(1))[:, :, None]), -4, 3) + 4
    L = np.where(nz[:, :, None], lq, L).reshape(nb, 256)
    high = L > 3
    L = np.where(high, L - 4, L)
    hmask = (high.reshape(nb, 8, 32).astype(np.uint8) << np.arange(8, dtype=np.uint8)[None, :, None]).sum(
        axis=1, dtype=np.uint8)
    out = np.empty((nb, 110), np.uint8)
    out[:, 0:32] = hmask
    out[:, 32:96] = _pack_q2(L)
    out[:, 96:108] = packed
    out[:, 108:110] = _f16_bytes(d)
    return out


def _quantize_kx(x, nmax, rmin, rdelta, nstep):
    """Shared part of Q4_K / Q5_K: returns (d f32[nb], dmin f32[nb], packed scales [nb,12], L [nb,256])."""
    nb = x.shape[0]
    xs = x.reshape(nb * 8, 32)
    av_x = np.sqrt((xs * xs).sum(axis=1, dtype=np.float32) / F32(32)).astype(np.float32)
    weights = av_x[:, None] + np.abs(xs)
    scales, mins, L = make_qkx2_quants(xs, weights, nmax, rmin, rdelta, nstep)
    scales = scales.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    L = L.reshape(nb, 8, 32)
    max_scale = np.maximum(scales.max(axis=1), F32(0))
    max_min = np.maximum(mins.max(axis=1), F32(0))
    with np.errstate(divide="ignore"):
        inv_scale = np.where(max_scale > 0, F32(63) / max_scale, F32(0)).astype(np.float32)
        inv_min = np.where(max_min > 0, F32(63) / max_min, F32(0)).astype(np.float32)
    ls = np.minimum(63, nearest_int(inv_scale[:, None] * scales).astype(np.uint8))
    lm = np.minimum(63, nearest_int(inv_min[:, None] * mins).astype(np.uint8))
    packed = pack_scales_k4(ls, lm)
    d = (max_scale / F32(63)).astype(np.float32)
    dmin = (max_min / F32(63)).astype(np.float32)
    d16 = d.astype(np.float16).astype(np.float32)
    m16 = dmin.astype(np.float16).astype(np.float32)
    dd = d16[:, None] * ls.astype(np.float32)       # [nb, 8]
    dm = m16[:, None] * lm.astype(np.float32)
    nz = dd != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = nearest_int((x.reshape(nb, 8, 32) + dm[:, :, None]) / np.where(nz, dd, F32(1))[:, :, None])
    lq = np.clip(lq, 0, nmax)
    L = np.where(nz[:, :, None], lq, L)
    return d, dmin, packed, L.reshape(nb, 256)


def quantize_q4_k(x):
    x = x.astype(np.float32)
    d, dmin, packed, L = _quantize_kx(x, 15, -1.0, 0.1, 20)
    L = L.astype(np.uint8).reshape(-1, 4, 2, 32)
    out = np.empty((x.shape[0], 144), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:4] = _f16_bytes(dmin)
    out[:, 4:16] = packed
    out[:, 16:144] = (L[:, :, 0] | (L[:, :, 1] << 4)).reshape(-1, 128)
    return out


def quantize_q5_k(x):
    x = x.astype(np.float32)
    d, dmin, packed, L = _quantize_kx(x, 31, -0.5, 0.1, 15)
    L = L.astype(np.uint8).reshape(-1, 4, 2, 32)        # group g: sub-blocks 2g (lo), 2g+1 (hi)
    lo = L & 15
    hi = L >> 4                                           # fifth bit
    qh = np.zeros((x.shape[0], 32), np.uint8)
    for g in range(4):
        qh |= hi[:, g, 0] << (2 * g)
        qh |= hi[:, g, 1] << (2 * g + 1)
    out = np.empty((x.shape[0], 176), np.uint8)
    out[:, 0:2] = _f16_bytes(d)
    out[:, 2:4] = _f16_bytes(dmin)
    out[:, 4:16] = packed
    out[:, 16:48] = qh
    out[:, 48:176] = (lo[:, :, 0] | (lo[:, :, 1] << 4)).reshape(-1, 128)
    return out


def quantize_q6_k(x):
    x = x.astype(np.float32)
    nb = x.shape[0]
    xs = x.reshape(nb * 16, 16)
    scales, L = make_qx_quants(xs, 32)
    scales = scales.reshape(nb, 16)
    L = L.reshape(nb, 16, 16)
    max_scale = _first_absmax(scales)
    zero = np.abs(max_scale) < GROUP_MAX_EPS
    safe = np.where(zero, F32(1), max_scale).astype(np.float32)
    iscale = (F32(-128) / safe).astype(np.float32)
    d = (F32(1) / iscale).astype(np.float32)
    sc = np.minimum(127, nearest_int(iscale[:, None] * scales)).astype(np.int8)
    d16 = d.astype(np.float16).astype(np.float32)
    dd = d16[:, None] * sc.astype(np.float32)
    nz = dd != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = nearest_int(x.reshape(nb, 16, 16) / np.where(nz, dd, F32(1))[:, :, None])
    lq = np.clip(lq, -32, 31) + 32
    L = np.where(nz[:, :, None], lq, L).astype(np.uint8).reshape(nb, 2, 4, 32)
    out = np.empty((nb, 210), np.uint8)
    ql = np.empty((nb, 2, 64), np.uint8)
    ql[:, :, 0:32] = (L[:, :, 0] & 15) | ((L[:, :, 2] & 15) << 4)
    ql[:, :, 32:64] = (L[:, :, 1] & 15) | ((L[:, :, 3] & 15) << 4)
    qh = (L[:, :, 0] >> 4) | ((L[:, :, 1] >> 4) << 2) | ((L[:, :, 2] >> 4) << 4) | ((L[:, :, 3] >> 4) << 6)
    out[:, 0:128] = ql.reshape(nb, 128)
    out[:, 128:192] = qh.reshape(nb, 64)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = _f16_bytes(d)
    out[zero] = 0
    return out


def quantize_q8_k(x):
    """quantize_row_q8_K_ref: d float32, 256 int8, 16 int16 block sums."""
    x = x.astype(np.float32)
    mx = _first_absmax(x)
    zero = mx == 0
    safe = np.where(zero, F32(1), mx).astype(np.float32)
    iscale = (F32(-127) / safe).astype(np.float32)
    q = np.minimum(127, nearest_int(iscale[:, None] * x))
    q[zero] = 0
    d = np.where(zero, F32(0), F32(1) / iscale).astype(np.float32)
    out = np.empty((x.shape[0], 292), np.uint8)
    out[:, 0:4] = _f32_bytes(d)
    out[:, 4:260] = q.astype(np.int8).view(np.uint8)
    out[:, 260:292] = q.reshape(-1, 16, 16).sum(axis=2).astype("<i2").view(np.uint8)
    return out


_QUANT = {
    GGML_Q4_0: quantize_q4_0, GGML_Q4_1: quantize_q4_1, GGML_Q5_0: quantize_q5_0,
    GGML_Q5_1: quantize_q5_1, GGML_Q8_0: quantize_q8_0, GGML_Q2_K: quantize_q2_k,
    GGML_Q3_K: quantize_q3_k, GGML_Q4_K: quantize_q4_k, GGML_Q5_K: quantize_q5_k,
    GGML_Q6_K: quantize_q6_k, GGML_Q8_K: quantize_q8_k,
}
QUANTIZABLE = (GGML_F32, GGML_F16, GGML_BF16) + tuple(_QUANT)


# ------------------------------------------------------------------ activations

def act_q8_0(x):
    """Rows of x (length multiple of 32) quantized to Q8_0 the way llama.cpp's CPU
    backend does it for a matrix product (as quantize_row_q8_0_ref: d = amax/127,
    id = 1/d, roundf), returned dequantized (float32, same shape)."""
    x = np.asarray(x, dtype=np.float32)
    shp = x.shape
    xb = x.reshape(-1, QK)
    amax = np.abs(xb).max(axis=1)
    d = (amax / F32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)
    q = roundf(xb * idv[:, None]).astype(np.float32)
    d16 = d.astype(np.float16).astype(np.float32)
    return (d16[:, None] * q).astype(np.float32).reshape(shp)


def act_q8_0_avx(x):
    """Q8_0 activation quantization as ggml's x86 SIMD code does it (quantize_row_q8_0's
    AVX path and quantize_mat_q8_0 of the repacked Q4_0 kernels): id = 127/amax,
    round half to even. Returned dequantized."""
    x = np.asarray(x, dtype=np.float32)
    shp = x.shape
    xb = x.reshape(-1, QK)
    amax = np.abs(xb).max(axis=1)
    d = (amax / F32(127)).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(amax != 0, F32(127) / amax, F32(0)).astype(np.float32)
    q = np.rint(xb * idv[:, None])
    return (d[:, None] * q).astype(np.float32).reshape(shp)


def act_q8_1(x):
    """Q8_1 activation quantization as ggml's x86 SIMD quantize_row_q8_1 (the input of
    llama.cpp's Q4_1 / Q5_1 kernels on AVX/AVX2 CPUs): as act_q8_0_avx. Returned
    dequantized; the f16 block sum s that the Q4_1/Q5_1 dot products use for the
    weights' offset m is d * sum(q) rounded to f16, which these values give to within
    f16 rounding."""
    return act_q8_0_avx(x)


def act_q8_k(x):
    """Rows of x (length multiple of 256) as quantize_row_q8_K_ref quantizes them, dequantized."""
    x = np.asarray(x, dtype=np.float32)
    shp = x.shape
    xb = x.reshape(-1, QK_K)
    mx = _first_absmax(xb)
    zero = mx == 0
    safe = np.where(zero, F32(1), mx).astype(np.float32)
    iscale = (F32(-127) / safe).astype(np.float32)
    q = np.minimum(127, nearest_int(iscale[:, None] * xb)).astype(np.float32)
    d = np.where(zero, F32(0), F32(1) / iscale).astype(np.float32)
    return (d[:, None] * q).astype(np.float32).reshape(shp)


def act_f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def quantize_activation(x, weight_type):
    """The activation values llama.cpp's CPU dot product sees for a weight of this type."""
    if weight_type == GGML_Q4_0:
        # llama.cpp repacks Q4_0 weights on AVX2/AVX-512 machines (Q4_0x8) and quantizes
        # activations with the SIMD rounding (ggml_quantize_mat_q8_0_4x8 / quantize_row_q8_0)
        return act_q8_0_avx(x)
    if weight_type in (GGML_Q4_1, GGML_Q5_1):
        return act_q8_1(x)
    if weight_type in (GGML_Q5_0, GGML_Q8_0):
        return act_q8_0(x)
    if weight_type in (GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K):
        return act_q8_k(x)
    if weight_type == GGML_F16:
        return act_f16(x)
    if weight_type == GGML_BF16:
        v = np.asarray(x, dtype=np.float32)
        return dequantize(quantize(v, GGML_BF16), GGML_BF16, v.size).reshape(v.shape)
    return np.asarray(x, dtype=np.float32)
