#!/usr/bin/python3
"""GGUF version 3 reader and streaming writer (little-endian), numpy-based.

Reader:
    r = GGUFReader("model.gguf")
    r.kv["llama.block_count"]          -> python value (arrays of numbers are numpy arrays,
                                          arrays of strings are lists of str)
    r.kv_types["llama.block_count"]    -> (value type, element type or None)
    r.tensors                          -> list of TensorInfo (name, ne, type, offset, ...)
    r.tensor("token_embd.weight")      -> TensorInfo
    r.raw("token_embd.weight")         -> np.uint8 memmap view of the tensor's bytes
    r.array("token_embd.weight")       -> float32 array of shape ne[::-1] (dequantized)

Writer (streams: the tensor data is written one tensor at a time):
    w = GGUFWriter("out.gguf")
    w.add("general.architecture", "llama")              # type inferred (str, bool, int->u32,
    w.add("llama.rope.freq_base", 10000.0)              #  float->f32, list of str/float/int)
    w.add("tokenizer.ggml.token_type", types, GGUF_I32) # or an explicit value type
    w.add_tensor_info("token_embd.weight", [2048, 32000], GGML_Q4_0)
    w.write_header()                                    # header, kv, tensor infos, padding
    w.write_tensor_data("token_embd.weight", bytes_or_ndarray)  # in declared order
    w.close()

Also usable as a CLI to dump a file's header: gguf.py FILE [--all]
"""
import os
import struct
import sys
from dataclasses import dataclass

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32

# value types
GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, \
    GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64 = range(13)

VALUE_TYPE_NAMES = {
    GGUF_U8: "u8", GGUF_I8: "i8", GGUF_U16: "u16", GGUF_I16: "i16", GGUF_U32: "u32",
    GGUF_I32: "i32", GGUF_F32: "f32", GGUF_BOOL: "bool", GGUF_STRING: "string",
    GGUF_ARRAY: "array", GGUF_U64: "u64", GGUF_I64: "i64", GGUF_F64: "f64",
}

_SCALAR_DTYPES = {
    GGUF_U8: np.dtype("<u1"), GGUF_I8: np.dtype("<i1"), GGUF_U16: np.dtype("<u2"),
    GGUF_I16: np.dtype("<i2"), GGUF_U32: np.dtype("<u4"), GGUF_I32: np.dtype("<i4"),
    GGUF_F32: np.dtype("<f4"), GGUF_BOOL: np.dtype("u1"), GGUF_U64: np.dtype("<u8"),
    GGUF_I64: np.dtype("<i8"), GGUF_F64: np.dtype("<f8"),
}

# ggml tensor types: id -> (name, block size in weights, bytes per block)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1 = 0, 1, 2, 3
GGML_Q5_0, GGML_Q5_1, GGML_Q8_0, GGML_Q8_1 = 6, 7, 8, 9
GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, GGML_Q8_K = 10, 11, 12, 13, 14, 15
GGML_BF16 = 30

GGML_TYPES = {
    GGML_F32: ("F32", 1, 4),
    GGML_F16: ("F16", 1, 2),
    GGML_Q4_0: ("Q4_0", 32, 18),
    GGML_Q4_1: ("Q4_1", 32, 20),
    GGML_Q5_0: ("Q5_0", 32, 22),
    GGML_Q5_1: ("Q5_1", 32, 24),
    GGML_Q8_0: ("Q8_0", 32, 34),
    GGML_Q8_1: ("Q8_1", 32, 36),
    GGML_Q2_K: ("Q2_K", 256, 84),
    GGML_Q3_K: ("Q3_K", 256, 110),
    GGML_Q4_K: ("Q4_K", 256, 144),
    GGML_Q5_K: ("Q5_K", 256, 176),
    GGML_Q6_K: ("Q6_K", 256, 210),
    GGML_Q8_K: ("Q8_K", 256, 292),
    GGML_BF16: ("BF16", 1, 2),
}
GGML_TYPE_BY_NAME = {v[0]: k for k, v in GGML_TYPES.items()}


def type_name(t):
    return GGML_TYPES[t][0] if t in GGML_TYPES else f"type{t}"


def tensor_nbytes(ne, ggml_type):
    """Bytes taken by a tensor of shape ne (ne[0] = row length) and the given type."""
    _, bs, ts = GGML_TYPES[ggml_type]
    if ne[0] % bs:
        raise ValueError(f"row length {ne[0]} is not a multiple of {type_name(ggml_type)}'s block {bs}")
    n = 1
    for d in ne:
        n *= int(d)
    return n // bs * ts


def align_up(x, a):
    return (x + a - 1) // a * a


@dataclass
class TensorInfo:
    name: str
    ne: list            # ne[0] is the contiguous row length
    type: int
    offset: int         # relative to the start of the data section
    nbytes: int = 0
    data_offset: int = 0  # absolute file offset (reader only)

    @property
    def type_name(self):
        return type_name(self.type)

    @property
    def n_elements(self):
        n = 1
        for d in self.ne:
            n *= int(d)
        return n

    @property
    def shape(self):
        """numpy shape (outermost first), i.e. ne reversed."""
        return tuple(int(d) for d in reversed(self.ne))


# ---------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------

class GGUFReader:
    def __init__(self, path):
        self.path = str(path)
        self.data = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._buf = memoryview(self.data)
        self._pos = 0
        self.kv = {}
        self.kv_types = {}
        self.tensors = []
        self._by_name = {}
        self._parse()

    # -- primitive readers --
    def _take(self, n):
        if self._pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated at offset {self._pos}")
        b = self._buf[self._pos:self._pos + n]
        self._pos += n
        return b

    def _u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def _u64(self):
        return struct.unpack("<Q", self._take(8))[0]

    def _str(self):
        n = self._u64()
        return bytes(self._take(n)).decode("utf-8", errors="surrogateescape")

    def _scalar(self, vt):
        if vt == GGUF_STRING:
            return self._str()
        dt = _SCALAR_DTYPES.get(vt)
        if dt is None:
            raise ValueError(f"{self.path}: unknown value type {vt} at offset {self._pos}")
        v = np.frombuffer(self._take(dt.itemsize), dtype=dt)[0]
        if vt == GGUF_BOOL:
            return bool(v)
        if vt in (GGUF_F32, GGUF_F64):
            return float(v)
        return int(v)

    def _value(self, vt):
        if vt != GGUF_ARRAY:
            return self._scalar(vt), None
        et = self._u32()
        n = self._u64()
        if et == GGUF_STRING:
            return [self._str() for _ in range(n)], et
        if et == GGUF_ARRAY:
            return [self._value(GGUF_ARRAY)[0] for _ in range(n)], et
        dt = _SCALAR_DTYPES.get(et)
        if dt is None:
            raise ValueError(f"{self.path}: unknown array element type {et}")
        arr = np.frombuffer(self._take(n * dt.itemsize), dtype=dt).copy()
        if et == GGUF_BOOL:
            arr = arr.astype(bool)
        return arr, et

    def _parse(self):
        if bytes(self._take(4)) != GGUF_MAGIC:
            raise ValueError(f"{self.path}: not a GGUF file")
        self.version = self._u32()
        if self.version not in (2, 3):
            raise ValueError(f"{self.path}: unsupported GGUF version {self.version}")
        n_tensors = self._u64()
        n_kv = self._u64()
        for _ in range(n_kv):
            key = self._str()
            vt = self._u32()
            val, et = self._value(vt)
            self.kv[key] = val
            self.kv_types[key] = (vt, et)
        self.alignment = int(self.kv.get("general.alignment", DEFAULT_ALIGNMENT))
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u32()
            ne = [self._u64() for _ in range(nd)]
            t = self._u32()
            off = self._u64()
            ti = TensorInfo(name, ne, t, off)
            ti.nbytes = tensor_nbytes(ne, t) if t in GGML_TYPES else 0
            self.tensors.append(ti)
            self._by_name[name] = ti
        self.header_end = self._pos
        self.data_start = align_up(self._pos, self.alignment)
        for ti in self.tensors:
            ti.data_offset = self.data_start + ti.offset
            if ti.data_offset + ti.nbytes > len(self.data):
                raise ValueError(f"{self.path}: tensor {ti.name} extends past end of file")

    # -- API --
    def __contains__(self, name):
        return name in self._by_name

    def tensor(self, name):
        return self._by_name[name]

    def raw(self, name):
        ti = self._by_name[name]
        return self.data[ti.data_offset:ti.data_offset + ti.nbytes]

    def array(self, name):
        """Dequantized float32 array of shape ne[::-1]."""
        from quants import dequantize  # local import: quants imports nothing from here at load
        ti = self._by_name[name]
        return dequantize(self.raw(name), ti.type, ti.n_elements).reshape(ti.shape)

    def get(self, key, default=None):
        return self.kv.get(key, default)


# ---------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------

def _infer_type(value):
    if isinstance(value, bool):
        return GGUF_BOOL, None
    if isinstance(value, str):
        return GGUF_STRING, None
    if isinstance(value, (int, np.integer)):
        return (GGUF_U32 if 0 <= value < 2**32 else GGUF_I64), None
    if isinstance(value, (float, np.floating)):
        return GGUF_F32, None
    if isinstance(value, np.ndarray):
        rev = {v: k for k, v in _SCALAR_DTYPES.items() if k != GGUF_BOOL}
        if value.dtype == bool:
            return GGUF_ARRAY, GGUF_BOOL
        return GGUF_ARRAY, rev[value.dtype.newbyteorder("<")]
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return GGUF_ARRAY, GGUF_STRING
        if all(isinstance(v, bool) for v in value):
            return GGUF_ARRAY, GGUF_BOOL
        if all(isinstance(v, (int, np.integer)) for v in value):
            return GGUF_ARRAY, GGUF_I32
        return GGUF_ARRAY, GGUF_F32
    raise TypeError(f"cannot infer a GGUF type for {type(value)}")


def _enc_str(s):
    b = s.encode("utf-8", errors="surrogateescape") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _enc_scalar(vt, v):
    if vt == GGUF_STRING:
        return _enc_str(v)
    return np.array(v, dtype=_SCALAR_DTYPES[vt]).tobytes()


def encode_value(vt, value, et=None):
    """Bytes of a value of type vt (without the type tag)."""
    if vt != GGUF_ARRAY:
        return _enc_scalar(vt, value)
    if et is None:
        et = _infer_type(value)[1]
    out = [struct.pack("<IQ", et, len(value))]
    if et == GGUF_STRING:
        out.extend(_enc_str(s) for s in value)
    elif et == GGUF_ARRAY:
        for v in value:   # nested arrays: each element is (u32 type, u64 count, items)
            out.append(encode_value(GGUF_ARRAY, v, _infer_type(v)[1]))
    else:
        out.append(np.asarray(value, dtype=_SCALAR_DTYPES[et]).tobytes())
    return b"".join(out)


class GGUFWriter:
    def __init__(self, path, alignment=DEFAULT_ALIGNMENT, progress=None):
        self.path = str(path)
        self.alignment = alignment
        self.kvs = []            # (key, vt, et, value)
        self.tensors = []        # TensorInfo
        self._next_offset = 0
        self._f = None
        self._written = 0        # index of the next tensor to write
        self.progress = progress  # callable(data bytes written, data bytes total, tensor name)
        self._data_written = 0

    def add(self, key, value, vtype=None, etype=None):
        if vtype is None:
            vtype, et = _infer_type(value)
            etype = etype if etype is not None else et
        elif vtype == GGUF_ARRAY and etype is None:
            etype = _infer_type(value)[1]
        if vtype not in VALUE_TYPE_NAMES:
            raise ValueError(f"bad value type {vtype}")
        if any(k == key for k, *_ in self.kvs):
            raise KeyError(f"duplicate key {key}")
        self.kvs.append((key, vtype, etype, value))
        if key == "general.alignment":
            self.alignment = int(value)

    def add_tensor_info(self, name, ne, ggml_type):
        ne = [int(d) for d in ne]
        nbytes = tensor_nbytes(ne, ggml_type)
        ti = TensorInfo(name, ne, ggml_type, self._next_offset, nbytes)
        self.tensors.append(ti)
        self._next_offset = align_up(self._next_offset + nbytes, self.alignment)
        return ti

    @property
    def data_size(self):
        return self._next_offset

    def header_bytes(self):
        out = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kvs))]
        for key, vt, et, value in self.kvs:
            out.append(_enc_str(key))
            out.append(struct.pack("<I", vt))
            out.append(encode_value(vt, value, et))
        for ti in self.tensors:
            out.append(_enc_str(ti.name))
            out.append(struct.pack("<I", len(ti.ne)))
            out.append(struct.pack(f"<{len(ti.ne)}Q", *ti.ne))
            out.append(struct.pack("<IQ", ti.type, ti.offset))
        b = b"".join(out)
        return b + b"\0" * (align_up(len(b), self.alignment) - len(b))

    def write_header(self):
        # written under a temporary name and renamed by close(): an interrupted run
        # never leaves a truncated file under the final name
        self._tmp = f"{self.path}.partial"
        self._f = open(self._tmp, "wb")
        self._f.write(self.header_bytes())

    def write_tensor_data(self, name, data):
        """Write the next tensor's bytes, exactly nbytes long: a bytes-like object or
        ndarray, or an iterable of them (chunks, so a big tensor never has to be in
        memory at once)."""
        ti = self.tensors[self._written]
        if ti.name != name:
            raise ValueError(f"expected tensor {ti.name}, got {name}")
        chunks = [data] if isinstance(data, (bytes, bytearray, memoryview, np.ndarray)) else data
        n = 0
        for c in chunks:
            if isinstance(c, np.ndarray):
                c = np.ascontiguousarray(c)
            mv = memoryview(c).cast("B")
            n += len(mv)
            if n > ti.nbytes:
                raise ValueError(f"{name}: more than {ti.nbytes} bytes given")
            self._f.write(mv)
            self._data_written += len(mv)
            if self.progress:
                self.progress(self._data_written, self.data_size, name)
        if n != ti.nbytes:
            raise ValueError(f"{name}: {n} bytes given, {ti.nbytes} expected "
                             f"({type_name(ti.type)} {ti.ne})")
        pad = align_up(ti.nbytes, self.alignment) - ti.nbytes
        if pad:
            self._f.write(b"\0" * pad)
        self._written += 1
        self._data_written += pad
        if self.progress:
            self.progress(self._data_written, self.data_size, name)

    def close(self):
        if self._f is None:
            return
        if self._written != len(self.tensors):
            self.abort()
            raise ValueError(f"only {self._written} of {len(self.tensors)} tensors written")
        self._f.close()
        self._f = None
        os.replace(self._tmp, self.path)

    def abort(self):
        if self._f is not None:
            self._f.close()
            self._f = None
            try:
                os.unlink(self._tmp)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self.abort()


def write_gguf(path, kv, tensors, alignment=DEFAULT_ALIGNMENT):
    """Convenience: kv is a list of (key, value[, vtype[, etype]]); tensors a list of
    (name, ne, ggml_type, data)."""
    w = GGUFWriter(path, alignment)
    for item in kv:
        w.add(*item)
    for name, ne, t, _ in tensors:
        w.add_tensor_info(name, ne, t)
    w.write_header()
    for name, _, _, data in tensors:
        w.write_tensor_data(name, data)
    w.close()


def _fmt_value(v, vt, et, full=False):
    if vt == GGUF_ARRAY:
        n = len(v)
        items = list(v[:8]) if not full else list(v)
        items = [x.item() if hasattr(x, "item") else x for x in items]
        more = "" if full or n <= 8 else ", ..."
        return f"[{VALUE_TYPE_NAMES.get(et, et)} x {n}] {items}{more}"
    return f"({VALUE_TYPE_NAMES[vt]}) {v!r}"


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Dump a GGUF file's header")
    ap.add_argument("file")
    ap.add_argument("--all", action="store_true", help="print arrays in full")
    a = ap.parse_args(argv)
    r = GGUFReader(a.file)
    print(f"GGUF v{r.version}: {len(r.kv)} keys, {len(r.tensors)} tensors, "
          f"alignment {r.alignment}, data at {r.data_start}")
    for k, v in r.kv.items():
        vt, et = r.kv_types[k]
        print(f"  {k} = {_fmt_value(v, vt, et, a.all)}")
    for ti in r.tensors:
        print(f"  {ti.name:32s} {ti.type_name:5s} {str(ti.ne):20s} off {ti.offset} ({ti.nbytes} B)")


if __name__ == "__main__":
    sys.exit(main())
