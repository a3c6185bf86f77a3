#!/usr/bin/python3
"""llama.cpp's own C functions, called through ctypes from the prebuilt libraries
that node-llama-cpp ships (tools/peer, installed by tools/peer-deps.sh): an
implementation of the ggml block formats, quantisers and dot products that owes
nothing to Fluid, for tests (tests/host/test_llamacpp_kernels.py) and for writing
models quantised by llama.cpp itself (make_model.py --quantizer llamacpp).

    lib = load()                        # None-safe: problem() says why it cannot load
    lib.quantize(x, t)                  # ggml_quantize_chunk (what llama-quantize calls)
    lib.dequantize(raw, t, n)           # dequantize_row_<t>
    lib.cpu("x64" | "haswell")          # one CPU backend build (ggml-cpu variant):
        .quantize_act(x, vt)            #   quantize_row_<vt>: the activation quantiser
        .vec_dot(t, raw_w, raw_x, n)    #   ggml_vec_dot_<t>_<vt> (generic=True: the _generic one)
    lib.model_quantize(src, dst, ftype) # llama_model_quantize (llama.h), no imatrix

Types are ggml type ids (tools/gguf.py); `vt` is the weight type's vec_dot_type
(VEC_DOT_TYPE below, ggml-cpu.c type_traits_cpu).  "x64" is the baseline x86-64 build
(SSE2, no FMA: its vec_dot functions are the generic C code); "haswell" the AVX2 +
FMA + F16C build, which node-llama-cpp runs on this project's CPUs.
"""
import ctypes
import os
from pathlib import Path

import numpy as np

from gguf import (GGML_F16, GGML_F32, GGML_Q2_K, GGML_Q3_K, GGML_Q4_0, GGML_Q4_1, GGML_Q4_K,
                  GGML_Q5_0, GGML_Q5_1, GGML_Q5_K, GGML_Q6_K, GGML_Q8_0, GGML_Q8_1, GGML_Q8_K,
                  GGML_TYPES)

ROOT = Path(__file__).resolve().parent.parent
BINS = ROOT / "tools" / "peer" / "node_modules" / "@node-llama-cpp" / "linux-x64" / "bins" / "linux-x64"

VEC_DOT_TYPE = {
    GGML_Q4_0: GGML_Q8_0, GGML_Q4_1: GGML_Q8_1, GGML_Q5_0: GGML_Q8_0, GGML_Q5_1: GGML_Q8_1,
    GGML_Q8_0: GGML_Q8_0, GGML_Q2_K: GGML_Q8_K, GGML_Q3_K: GGML_Q8_K, GGML_Q4_K: GGML_Q8_K,
    GGML_Q5_K: GGML_Q8_K, GGML_Q6_K: GGML_Q8_K,
}
# CPU flags (/proc/cpuinfo) each backend build needs (ggml's cpu-feats for the variant)
CPU_VARIANTS = {"x64": set(), "haswell": {"avx2", "fma", "f16c", "bmi2", "sse4_2"}}


def _lname(t):
    """ggml's C spelling of a type in function names: q4_0, q2_K, ..."""
    name = GGML_TYPES[t][0]
    return name[:-2].lower() + "_K" if name.endswith("_K") else name.lower()


def cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def problem():
    """None when the libraries are present, else why not (a str)."""
    if not (BINS / "libggml-base.so").exists():
        return f"node-llama-cpp's prebuilt libraries are not in {BINS} (run tools/peer-deps.sh)"
    return None


class _Params(ctypes.Structure):
    """llama.h struct llama_model_quantize_params (node-llama-cpp 3.22.1's llama.cpp)."""
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int), ("output_tensor_type", ctypes.c_int),
                ("token_embedding_type", ctypes.c_int), ("allow_requantize", ctypes.c_bool),
                ("quantize_output_tensor", ctypes.c_bool), ("only_copy", ctypes.c_bool),
                ("pure", ctypes.c_bool), ("keep_split", ctypes.c_bool), ("dry_run", ctypes.c_bool),
                ("imatrix", ctypes.c_void_p), ("kv_overrides", ctypes.c_void_p),
                ("tt_overrides", ctypes.c_void_p), ("prune_layers", ctypes.c_void_p),
                ("max_buf_size", ctypes.c_size_t)]


def _f32(x):
    return np.ascontiguousarray(x, dtype=np.float32)


def _buf(raw):
    return ctypes.c_char_p(bytes(raw)) if not isinstance(raw, np.ndarray) else \
        np.ascontiguousarray(raw, dtype=np.uint8).ctypes.data_as(ctypes.c_char_p)


def _row_bytes(t, n):
    _, bs, ts = GGML_TYPES[t]
    if n % bs:
        raise ValueError(f"{n} is not a multiple of {GGML_TYPES[t][0]}'s block {bs}")
    return n // bs * ts


class Cpu:
    """One ggml-cpu backend build, loaded privately (RTLD_LOCAL)."""

    def __init__(self, variant):
        self.variant = variant
        self.lib = ctypes.CDLL(str(BINS / f"libggml-cpu-{variant}.so"), mode=os.RTLD_LOCAL)
        self.lib.ggml_cpu_init()   # fills the fp16 tables the x64 build reads

    def quantize_act(self, x, vt):
        """Row(s) x (float32, length a multiple of the block) -> bytes of type vt, as
        quantize_row_<vt> (the backend's activation quantiser)."""
        x = _f32(x).reshape(-1)
        out = ctypes.create_string_buffer(_row_bytes(vt, x.size))
        fn = getattr(self.lib, f"quantize_row_{_lname(vt)}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn(x.ctypes.data, out, x.size)
        return out.raw

    def vec_dot(self, t, w, xq, n, generic=False):
        """dot(one row of n weights of type t, one activation row of VEC_DOT_TYPE[t])
        -> float, as ggml_vec_dot_<t>_<vt>[_generic]."""
        vt = VEC_DOT_TYPE[t]
        name = f"ggml_vec_dot_{_lname(t)}_{_lname(vt)}" + ("_generic" if generic else "")
        fn = getattr(self.lib, name)
        fn.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.c_char_p,
                       ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
        assert len(w) >= _row_bytes(t, n) and len(xq) >= _row_bytes(vt, n)
        s = ctypes.c_float()
        fn(n, ctypes.byref(s), 0, _buf(w), 0, _buf(xq), 0, 1)
        return s.value


class Lib:
    def __init__(self):
        self.base = ctypes.CDLL(str(BINS / "libggml-base.so"), mode=os.RTLD_GLOBAL)
        self.base.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.base.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                                  ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                                  ctypes.c_void_p]
        self._cpus = {}
        self._llama = None

    def quantize(self, x, t):
        """Rows of x (last axis = row) -> bytes of type t, as llama-quantize writes
        them without an importance matrix (ggml_quantize_chunk -> quantize_<t> ->
        quantize_row_<t>_ref)."""
        x = _f32(x)
        n_per_row = x.shape[-1]
        nrows = x.size // n_per_row
        out = ctypes.create_string_buffer(_row_bytes(t, n_per_row) * nrows)
        got = self.base.ggml_quantize_chunk(t, x.ctypes.data, out, 0, nrows, n_per_row, None)
        assert got == len(out.raw)
        return out.raw

    def dequantize(self, raw, t, n):
        """n weights of type t -> float32[n] (dequantize_row_<t>)."""
        if t in (GGML_F32, GGML_F16):
            raise ValueError("not a quantised type")
        y = np.empty(n, np.float32)
        fn = getattr(self.base, f"dequantize_row_{_lname(t)}")
        fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int64]
        assert len(raw) >= _row_bytes(t, n)
        fn(_buf(raw), y.ctypes.data, n)
        return y

    def cpu(self, variant):
        """The ggml-cpu build `variant` (CPU_VARIANTS); ValueError if this CPU lacks
        what it needs."""
        need = CPU_VARIANTS[variant] - cpu_flags()
        if need:
            raise ValueError(f"CPU lacks {sorted(need)} for ggml-cpu-{variant}")
        if variant not in self._cpus:
            self._cpus[variant] = Cpu(variant)
        return self._cpus[variant]

    def model_quantize(self, src, dst, ftype, nthread=2):
        """llama_model_quantize(src, dst) to llama_ftype `ftype` (the general.file_type
        number, e.g. 12 = Q3_K_M), default parameters otherwise (no imatrix).
        RuntimeError if llama.cpp refuses."""
        if self._llama is None:
            # libllama.v<release>.so (node-llama-cpp names it by its llama.cpp release)
            name = min(p.name for p in BINS.glob("libllama*.so") if p.name != "libllama-common.so")
            self._llama = ctypes.CDLL(str(BINS / name), mode=os.RTLD_GLOBAL)
            self._llama.llama_model_quantize_default_params.restype = _Params
            self._llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                                         ctypes.POINTER(_Params)]
            self._llama.llama_model_quantize.restype = ctypes.c_uint32
            self._llama.llama_log_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            self._quiet = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(
                lambda level, text, data: None)
            self._llama.llama_log_set(ctypes.cast(self._quiet, ctypes.c_void_p), None)
            self._llama.llama_backend_init()
        p = self._llama.llama_model_quantize_default_params()
        p.ftype = ftype
        p.nthread = nthread
        rc = self._llama.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
        if rc != 0:
            raise RuntimeError(f"llama_model_quantize({src}, ftype {ftype}) failed ({rc})")
        return dst


_LIB = None


def load():
    """The loaded libraries (once per process); RuntimeError(problem()) if absent."""
    global _LIB
    why = problem()
    if why:
        raise RuntimeError(why)
    if _LIB is None:
        _LIB = Lib()
    return _LIB
