#!/usr/bin/python3
"""make_bad_gguf.py - write a small valid Llama GGUF file, or one of many
malformed variants of it, each paired with the error text Fluid must print.

    make_bad_gguf.py --list                 names and descriptions of the cases
    make_bad_gguf.py CASE OUT.gguf          write the file for CASE
    make_bad_gguf.py --expect CASE          print the expected message fragment
    make_bad_gguf.py --preset tiny valid OUT.gguf   (presets: small, tiny)

The expected fragment is a substring of the one-line error message of
kernel/core/llm/gguf.c or llama_model.c ("OK" for cases that must load).

The writer is self-contained (no gguf package): a Model holds key/value
records and tensors as plain Python data; cases mutate the model and/or the
serialized bytes. Tensor contents are deterministic pseudo-random data with
sane f16 scales, so the valid files are runnable (their output is noise).
"""
import struct
import sys
import zlib

import numpy as np

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
               F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
_VALUE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
                "array", "u64", "i64", "f64"]

# ggml types: id -> (name, elements per block, bytes per block)
GGML = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
        6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34),
        10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
        13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 16: ("IQ2_XXS", 256, 66),
        30: ("BF16", 1, 2)}
T = {v[0]: k for k, v in GGML.items()}   # name -> id

# Byte offsets of f16 scale fields inside one block, set to a small sane
# value so quantised weights decode to finite numbers.
_SCALE_FIELDS = {"Q4_0": (0,), "Q8_0": (0,), "Q4_K": (0, 2), "Q5_K": (0, 2),
                 "Q6_K": (208,), "Q2_K": (80, 82), "Q4_1": (0, 2), "Q5_0": (0,),
                 "Q5_1": (0, 2), "Q3_K": (108,), "IQ2_XXS": (0,)}


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return u64(len(b)) + b


def encode_value(vtype, value, elem_type=None):
    """Bytes of one value. Arrays: value is a list; elem_type its type
    (nested arrays: elements are (elem_type, list) pairs)."""
    if vtype == STRING:
        return gstr(value)
    if vtype == ARRAY:
        out = bytearray(u32(elem_type) + u64(len(value)))
        if elem_type in (STRING, ARRAY):
            for v in value:
                out += gstr(v) if elem_type == STRING else encode_value(ARRAY, v[1], v[0])
        elif len(value):
            out += b"".join(struct.pack(_SCALAR_FMT[elem_type], v) for v in value)
        return bytes(out)
    if vtype in _SCALAR_FMT:
        return struct.pack(_SCALAR_FMT[vtype], value)
    return u64(0)   # unknown type (a case): write some filler


class KV:
    def __init__(self, key, vtype, value, elem_type=None):
        self.key, self.vtype, self.value, self.elem_type = key, vtype, value, elem_type


class Tensor:
    """dims = ne list (ne[0] = row length). offset None = placed by the
    writer; data None = generated from dims/type; n_dims overrides the count
    written in the record (the dims list is written in full)."""

    def __init__(self, name, dims, gtype):
        self.name, self.dims, self.type = name, list(dims), gtype
        self.offset = None
        self.data = None
        self.n_dims = None

    def nbytes(self):
        _, blck, size = GGML[self.type]
        n = 1
        for d in self.dims:
            n *= d
        return n // blck * size

    def payload(self):
        if self.data is not None:
            return bytes(self.data)
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        name = GGML[self.type][0]
        n = 1
        for d in self.dims:
            n *= d
        if name == "F32":
            vals = (1.0 + 0.1 * rng.standard_normal(n)) if len(self.dims) == 1 \
                else 0.02 * rng.standard_normal(n)
            return vals.astype("<f4").tobytes()
        if name == "F16":
            return (0.02 * rng.standard_normal(n)).astype("<f2").tobytes()
        raw = rng.integers(0, 256, self.nbytes(), dtype=np.uint8)
        _, _, bsize = GGML[self.type]
        blocks = raw.reshape(-1, bsize)
        scale = np.frombuffer(np.float16(0.001).tobytes(), dtype=np.uint8)
        for off in _SCALE_FIELDS.get(name, ()):
            blocks[:, off:off + 2] = scale
        return blocks.tobytes()


PRESETS = {
    # n_embd 256 so that K-quants (block 256) fit every matrix
    "small": dict(vocab=300, n_embd=256, n_layer=2, n_head=8, n_head_kv=2, n_ff=512, n_ctx=256,
                  types=dict(token_embd="Q8_0", output="Q6_K",
                             layers=[dict(attn_q="Q4_K", attn_k="Q5_K", attn_v="Q6_K",
                                          attn_output="Q4_0", ffn_gate="Q4_K", ffn_up="Q5_K",
                                          ffn_down="Q6_K"),
                                     dict(attn_q="Q8_0", attn_k="F16", attn_v="F32",
                                          attn_output="Q8_0", ffn_gate="Q4_0", ffn_up="Q8_0",
                                          ffn_down="Q4_K")])),
    # about 17 KB: a fuzzing seed that reaches every part of the format
    "tiny": dict(vocab=16, n_embd=32, n_layer=1, n_head=4, n_head_kv=2, n_ff=64, n_ctx=64,
                 types=dict(token_embd="F16", output="Q8_0",
                            layers=[dict(attn_q="Q8_0", attn_k="Q4_0", attn_v="F16",
                                         attn_output="F32", ffn_gate="Q8_0", ffn_up="Q4_0",
                                         ffn_down="F16")])),
}


def make_vocab(n):
    """<unk>, <s>, </s>, then byte tokens (all 256 if room, else as many as
    fit, leaving 5 pieces), then '▁x' pieces. Returns (tokens, scores, types)."""
    n_bytes = min(256, n - 3 - 5) if n < 3 + 256 + 5 else 256
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(n_bytes)]
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = 0
    while len(tokens) < n:
        a, b = divmod(i, 26)
        tokens.append("\u2581" + (letters[a - 1] if a else "") + letters[b])
        i += 1
    first_piece = 3 + n_bytes
    scores = [0.0] * first_piece + [float(first_piece - k) for k in range(first_piece, n)]
    types = [2, 3, 3] + [6] * n_bytes + [1] * (n - first_piece)
    return tokens, scores, types


class Model:
    def __init__(self, preset="small"):
        p = PRESETS[preset]
        self.p = p
        self.magic = b"GGUF"
        self.version = 3
        self.n_tensors = None    # header count overrides
        self.n_kv = None
        self.layout_alignment = None   # data layout alignment; None: from general.alignment or 32
        toks, scores, types = make_vocab(p["vocab"])
        self.kvs = [
            KV("general.architecture", STRING, "llama"),
            KV("general.name", STRING, "fluid-test-" + preset),
            KV("llama.context_length", U32, p["n_ctx"]),
            KV("llama.embedding_length", U32, p["n_embd"]),
            KV("llama.block_count", U32, p["n_layer"]),
            KV("llama.feed_forward_length", U32, p["n_ff"]),
            KV("llama.rope.dimension_count", U32, p["n_embd"] // p["n_head"]),
            KV("llama.attention.head_count", U32, p["n_head"]),
            KV("llama.attention.head_count_kv", U32, p["n_head_kv"]),
            KV("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
            KV("llama.rope.freq_base", F32, 10000.0),
            KV("tokenizer.ggml.model", STRING, "llama"),
            KV("tokenizer.ggml.tokens", ARRAY, toks, STRING),
            KV("tokenizer.ggml.scores", ARRAY, scores, F32),
            KV("tokenizer.ggml.token_type", ARRAY, types, I32),
            KV("tokenizer.ggml.bos_token_id", U32, 1),
            KV("tokenizer.ggml.eos_token_id", U32, 2),
            KV("tokenizer.ggml.unknown_token_id", U32, 0),
        ]
        e, ff, v = p["n_embd"], p["n_ff"], p["vocab"]
        ekv = e // p["n_head"] * p["n_head_kv"]
        ty = p["types"]
        self.tensors = [Tensor("token_embd.weight", [e, v], T[ty["token_embd"]]),
                        Tensor("output_norm.weight", [e], T["F32"]),
                        Tensor("output.weight", [e, v], T[ty["output"]])]
        shapes = dict(attn_q=[e, e], attn_k=[e, ekv], attn_v=[e, ekv], attn_output=[e, e],
                      ffn_gate=[e, ff], ffn_up=[e, ff], ffn_down=[ff, e])
        for il in range(p["n_layer"]):
            lt = ty["layers"][il % len(ty["layers"])]
            for part in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                         "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"):
                name = "blk.%d.%s.weight" % (il, part)
                if part.endswith("norm"):
                    self.tensors.append(Tensor(name, [e], T["F32"]))
                else:
                    self.tensors.append(Tensor(name, shapes[part], T[lt[part]]))

    # -- editing helpers
    def kv(self, key):
        return next(k for k in self.kvs if k.key == key)

    def set_kv(self, key, vtype, value, elem_type=None):
        """Replace key's value (appending the key if absent)."""
        for k in self.kvs:
            if k.key == key:
                k.vtype, k.value, k.elem_type = vtype, value, elem_type
                return k
        k = KV(key, vtype, value, elem_type)
        self.kvs.append(k)
        return k

    def drop_kv(self, key):
        self.kvs = [k for k in self.kvs if k.key != key]

    def tensor(self, name):
        return next(t for t in self.tensors if t.name == name)

    def drop_tensor(self, name):
        self.tensors = [t for t in self.tensors if t.name != name]

    def _alignment(self):
        if self.layout_alignment:
            return self.layout_alignment
        for k in self.kvs:
            if k.key == "general.alignment" and isinstance(k.value, int) and k.value > 0 \
                    and k.value & (k.value - 1) == 0:
                return k.value
        return 32

    def serialize(self):
        """-> (bytearray, layout). layout records where things are so that
        cases can patch or cut the bytes: kv[key] = {start, value, end},
        tensor[name] = {start, n_dims, dims, type, offset, data_at, size},
        records_end, data_offset."""
        a = self._alignment()
        out = bytearray(self.magic + u32(self.version))
        out += u64(len(self.tensors) if self.n_tensors is None else self.n_tensors)
        out += u64(len(self.kvs) if self.n_kv is None else self.n_kv)
        layout = {"kv": {}, "kv_order": [], "tensor": {}}
        for k in self.kvs:
            start = len(out)
            out += gstr(k.key) + u32(k.vtype)
            vpos = len(out)
            out += encode_value(k.vtype, k.value, k.elem_type)
            layout["kv"][k.key] = dict(start=start, value=vpos, end=len(out))
            layout["kv_order"].append(k.key)
        # data placement: every tensor's bytes go at an aligned running position;
        # the record shows t.offset instead when a case overrides it
        payloads, pos, placed = [], 0, []
        for t in self.tensors:
            pos = (pos + a - 1) // a * a
            data = t.payload()
            payloads.append(data)
            placed.append(pos)
            pos += len(data)
        for t, at, data in zip(self.tensors, placed, payloads):
            start = len(out)
            out += gstr(t.name)
            nd = len(t.dims) if t.n_dims is None else t.n_dims
            ndpos = len(out)
            out += u32(nd)
            dpos = len(out)
            out += b"".join(u64(d) for d in t.dims)
            tpos = len(out)
            out += u32(t.type)
            opos = len(out)
            off = at if t.offset is None else t.offset
            out += u64(off)
            layout["tensor"][t.name] = dict(start=start, n_dims=ndpos, dims=dpos, type=tpos,
                                            offset=opos, record_offset=off, data_at=at,
                                            size=len(data))
        layout["records_end"] = len(out)
        out += bytes((a - len(out) % a) % a)
        layout["data_offset"] = len(out)
        data = bytearray(pos)
        for at, payload in zip(placed, payloads):
            data[at:at + len(payload)] = payload
        out += data
        layout["size"] = len(out)
        return out, layout


# ---------------------------------------------------------------------------
# Cases: each takes a fresh Model and returns (bytes, expected fragment).

CASES = {}


def case(name, doc):
    def deco(fn):
        CASES[name] = (doc, fn)
        return fn
    return deco


def patch_u64(buf, pos, v):
    buf[pos:pos + 8] = u64(v)


def patch_u32(buf, pos, v):
    buf[pos:pos + 4] = u32(v)


def _ok(m):
    return m.serialize()[0], "OK"


def _model_edit(fn, expect):
    """A case that edits the model, then serializes it."""
    def build(m):
        fn(m)
        return m.serialize()[0], expect
    return build


def simple(name, doc, expect, fn):
    CASES[name] = (doc, _model_edit(fn, expect))


# -- valid files
case("valid", "a small valid Llama model (300 tokens, 2 blocks, mixed types)")(_ok)
simple("valid_tied_output", "no output.weight: output reuses token_embd", "OK",
       lambda m: m.drop_tensor("output.weight"))
simple("valid_alignment_64", "general.alignment = 64 and data laid out on 64", "OK",
       lambda m: m.set_kv("general.alignment", U32, 64))
simple("valid_u64_and_i32_keys", "integer keys stored as u64 / i32 are accepted", "OK",
       lambda m: (m.set_kv("llama.block_count", U64, 2), m.set_kv("llama.context_length", I32, 256)))
simple("valid_no_optional_keys", "rope.freq_base, head_count_kv, rope.dimension_count, token ids absent",
       "OK", lambda m: [m.drop_kv(k) for k in ("llama.rope.freq_base", "llama.rope.dimension_count",
                                               "tokenizer.ggml.bos_token_id",
                                               "tokenizer.ggml.eos_token_id",
                                               "tokenizer.ggml.unknown_token_id")])


def _extra_unused_tensor(m):
    t = Tensor("rope_freqs.weight", [512], T["IQ2_XXS"])   # valid type Fluid cannot compute
    m.tensors.append(t)


simple("valid_extra_tensor", "an unused extra tensor of an unsupported type is ignored", "OK",
       _extra_unused_tensor)


# -- truncation
@case("trunc_magic", "file of 2 bytes")
def _(m):
    return m.serialize()[0][:2], "gguf: header: magic runs past the end of the file (at byte 4 of 2)"


@case("trunc_header", "cut inside the tensor count of the header")
def _(m):
    return m.serialize()[0][:12], "gguf: header: tensor count runs past the end of the file (at byte 16 of 12)"


@case("trunc_kv_name", "cut inside the name of a key")
def _(m):
    buf, L = m.serialize()
    key = "tokenizer.ggml.eos_token_id"
    i = L["kv_order"].index(key)
    cut = L["kv"][key]["start"] + 8 + 5
    return buf[:cut], "gguf: key #%d: name runs past the end of the file (at byte %d of %d)" % (
        i, L["kv"][key]["start"] + 8 + len(key), cut)


@case("trunc_kv_value", "cut inside a u32 value")
def _(m):
    buf, L = m.serialize()
    cut = L["kv"]["tokenizer.ggml.bos_token_id"]["value"] + 2
    return buf[:cut], "gguf: key 'tokenizer.ggml.bos_token_id': value runs past the end of the file"


@case("trunc_kv_array", "cut inside the token strings")
def _(m):
    buf, L = m.serialize()
    k = L["kv"]["tokenizer.ggml.tokens"]
    cut = (k["value"] + k["end"]) // 2
    return buf[:cut], ("gguf: key 'tokenizer.ggml.tokens': array of 300 strings runs past the end "
                       "of the file")


@case("trunc_kv_f32_array", "cut inside the scores array")
def _(m):
    buf, L = m.serialize()
    k = L["kv"]["tokenizer.ggml.scores"]
    cut = k["value"] + 12 + 40
    return buf[:cut], ("gguf: key 'tokenizer.ggml.scores': array of 300 f32s runs past the end of "
                       "the file (at byte %d of %d)" % (k["value"] + 12 + 1200, cut))


@case("trunc_before_tensors", "cut right after the key/value section")
def _(m):
    buf, L = m.serialize()
    cut = L["kv"][L["kv_order"][-1]]["end"]
    return buf[:cut], "gguf: tensor records: %d tensors need at least %d bytes: runs past the end of the file" % (
        len(m.tensors), 24 * len(m.tensors))


@case("trunc_tensor_dims", "cut inside the dimensions of a tensor record")
def _(m):
    buf, L = m.serialize()
    name = m.tensors[-2].name
    cut = L["tensor"][name]["dims"] + 10
    return buf[:cut], "gguf: tensor '%s': dimension list runs past the end of the file" % name


@case("trunc_tensor_offset", "cut inside the offset of the last tensor record")
def _(m):
    buf, L = m.serialize()
    name = m.tensors[-1].name
    cut = L["tensor"][name]["offset"] + 3
    return buf[:cut], "gguf: tensor '%s': offset runs past the end of the file" % name


@case("trunc_padding", "cut inside the padding before the data section")
def _(m):
    # adjust the model name until the records end off an alignment boundary
    for extra in range(64):
        m.kv("general.name").value = "fluid-test" + "x" * extra
        buf, L = m.serialize()
        if L["data_offset"] - L["records_end"] >= 2:
            break
    cut = L["records_end"] + 1
    return buf[:cut], "gguf: data section: alignment padding runs past the end of the file (at byte %d of %d)" % (
        L["data_offset"], cut)


@case("trunc_data", "cut in the middle of the tensor data")
def _(m):
    buf, L = m.serialize()
    cut = (L["data_offset"] + L["size"]) // 2
    dsize = cut - L["data_offset"]
    # the first tensor (in record order) whose data does not fit
    t = next(t for t in m.tensors
             if L["tensor"][t.name]["data_at"] + L["tensor"][t.name]["size"] > dsize)
    info = L["tensor"][t.name]
    return buf[:cut], ("gguf: tensor '%s': data (offset %d, %d bytes) runs past the end of the data "
                       "section (%d bytes)" % (t.name, info["data_at"], info["size"], dsize))


@case("trunc_last_byte", "the last byte of the data section is missing")
def _(m):
    buf, L = m.serialize()
    return buf[:-1], "runs past the end of the data section"


# -- header
@case("bad_magic", "file starts with GGUX")
def _(m):
    buf, _ = m.serialize()
    buf[0:4] = b"GGUX"
    return buf, "gguf: header: bad magic 47 47 55 58, expected 'GGUF'"


for _v in (1, 2, 4):
    simple("version_%d" % _v, "header version %d" % _v,
           "gguf: header: unsupported version %d (only version 3 is supported)" % _v,
           lambda m, v=_v: setattr(m, "version", v))
simple("version_big_endian", "version 3 byte-swapped (big-endian file)",
       "big-endian files are not supported", lambda m: setattr(m, "version", 0x03000000))
simple("huge_tensor_count", "tensor count 2^40", "gguf: header: tensor count 1099511627776 exceeds the limit of 65536",
       lambda m: setattr(m, "n_tensors", 1 << 40))
simple("huge_kv_count", "key/value count 2^32",
       "gguf: header: key/value count 4294967296 exceeds the limit of 1048576",
       lambda m: setattr(m, "n_kv", 1 << 32))


@case("kv_count_past_eof", "key/value count within limits but more than the file can hold")
def _(m):
    m.n_kv = 1 << 20
    buf, _ = m.serialize()
    return buf, "gguf: header: 1048576 keys need at least 13631488 bytes: runs past the end of the file"


@case("tensor_count_past_eof", "tensor count within limits but more than the file can hold")
def _(m):
    m.n_tensors = 60000
    buf, _ = m.serialize()
    return buf, "gguf: tensor records: 60000 tensors need at least 1440000 bytes: runs past the end of the file"


# -- key/value section
@case("huge_string_len", "general.name claims 2^40 bytes")
def _(m):
    buf, L = m.serialize()
    patch_u64(buf, L["kv"]["general.name"]["value"], 1 << 40)
    return buf, "gguf: key 'general.name': string length 1099511627776 exceeds the limit of 1048576 bytes"


@case("string_past_eof", "general.name claims 100000 bytes (under the limit) in a 4 KiB file")
def _(m):
    buf, L = m.serialize()
    buf = buf[:4096]
    pos = L["kv"]["general.name"]["value"]
    patch_u64(buf, pos, 100000)
    return buf, "gguf: key 'general.name': string runs past the end of the file (at byte %d of 4096)" % (
        pos + 8 + 100000)


@case("huge_key_name", "the first key name claims 2^21 bytes")
def _(m):
    buf, L = m.serialize()
    patch_u64(buf, L["kv"]["general.architecture"]["start"], 1 << 21)
    return buf, "gguf: key #0: name length 2097152 exceeds the limit of 1048576 bytes"


@case("huge_array_count", "tokenizer.ggml.tokens claims 2^32 elements")
def _(m):
    buf, L = m.serialize()
    patch_u64(buf, L["kv"]["tokenizer.ggml.tokens"]["value"] + 4, 1 << 32)
    return buf, "gguf: key 'tokenizer.ggml.tokens': array count 4294967296 exceeds the limit of 16777216"


@case("array_count_past_eof", "tokenizer.ggml.scores claims 2^24 f32 elements")
def _(m):
    buf, L = m.serialize()
    pos = L["kv"]["tokenizer.ggml.scores"]["value"]
    patch_u64(buf, pos + 4, 1 << 24)
    return buf, ("gguf: key 'tokenizer.ggml.scores': array of 16777216 f32s runs past the end of the "
                 "file (at byte %d of %d)" % (pos + 12 + 4 * (1 << 24), len(buf)))


@case("array_string_past_eof", "the last token's length runs past the end of the file")
def _(m):
    buf, L = m.serialize()
    k = L["kv"]["tokenizer.ggml.tokens"]
    last = m.kv("tokenizer.ggml.tokens").value[-1].encode()
    pos = k["end"] - len(last) - 8
    patch_u64(buf, pos, 1 << 40)
    return buf, ("gguf: key 'tokenizer.ggml.tokens': array of 300 strings runs past the end of the "
                 "file (at byte %d of %d)" % (pos + 8 + (1 << 40), len(buf)))


simple("unknown_value_type", "general.name has value type 13", "gguf: key 'general.name': unknown value type 13",
       lambda m: m.set_kv("general.name", 13, 0))
simple("nested_array", "an array of arrays", "gguf: key 'general.tags': arrays of arrays are not supported",
       lambda m: m.set_kv("general.tags", ARRAY, [(U32, [1, 2])], ARRAY))
simple("unknown_array_type", "an array with element type 99",
       "gguf: key 'general.tags': unknown array element type 99",
       lambda m: m.set_kv("general.tags", ARRAY, [], 99))
simple("bool_not_0_1", "a bool value of 7", "gguf: key 'general.flag': bool value 7 (element 0) is not 0 or 1",
       lambda m: m.set_kv("general.flag", BOOL, 7))
simple("duplicate_key", "general.name appears twice", "gguf: key 'general.name': duplicate key name",
       lambda m: m.kvs.append(KV("general.name", STRING, "again")))
simple("align_not_pow2", "general.alignment = 48",
       "gguf: key 'general.alignment': 48 is not a power of two",
       lambda m: (m.set_kv("general.alignment", U32, 48), setattr(m, "layout_alignment", 32)))
simple("align_zero", "general.alignment = 0", "gguf: key 'general.alignment': 0 is not a power of two",
       lambda m: m.set_kv("general.alignment", U32, 0))
simple("align_negative", "general.alignment = -32 (i32)",
       "gguf: key 'general.alignment': -32 is not a power of two",
       lambda m: m.set_kv("general.alignment", I32, -32))
simple("align_wrong_type", "general.alignment is a string",
       "gguf: key 'general.alignment': has type string, expected an unsigned integer",
       lambda m: m.set_kv("general.alignment", STRING, "32"))


@case("align_64_misaligned", "general.alignment = 64 but tensors laid out on 32")
def _(m):
    m.set_kv("general.alignment", U32, 64)
    m.layout_alignment = 32
    buf, L = m.serialize()
    t = next(t for t in m.tensors if L["tensor"][t.name]["record_offset"] % 64)
    return buf, "gguf: tensor '%s': offset %d is not aligned to 64" % (
        t.name, L["tensor"][t.name]["record_offset"])


# -- tensor records
def _set(t, **kw):
    for k, v in kw.items():
        setattr(t, k, v)


simple("n_dims_5", "a tensor with 5 dimensions", "gguf: tensor 'blk.0.attn_norm.weight': n_dims 5 is more than 4",
       lambda m: _set(m.tensor("blk.0.attn_norm.weight"), dims=[256, 1, 1, 1, 1]))
simple("dims_overflow", "dimensions 2^32 x 2^32 x 2: element count overflows 64 bits",
       "gguf: tensor 'blk.0.attn_q.weight': number of elements overflows 64 bits",
       lambda m: _set(m.tensor("blk.0.attn_q.weight"), dims=[1 << 32, 1 << 32, 2], type=T["F32"], data=b""))
simple("bytes_overflow", "2^62 F32 elements: byte size overflows 64 bits",
       "gguf: tensor 'blk.0.attn_q.weight': byte size overflows 64 bits",
       lambda m: _set(m.tensor("blk.0.attn_q.weight"), dims=[1 << 31, 1 << 31], type=T["F32"], data=b""))
simple("dim_zero", "a dimension of 0", "gguf: tensor 'blk.0.attn_k.weight': ne[1] is 0",
       lambda m: _set(m.tensor("blk.0.attn_k.weight"), dims=[256, 0], data=b""))
simple("dim_too_large", "a dimension of 2^63", "gguf: tensor 'blk.0.attn_k.weight': ne[0] = 9223372036854775808 is too large",
       lambda m: _set(m.tensor("blk.0.attn_k.weight"), dims=[1 << 63, 1], type=T["F32"], data=b""))
simple("unknown_tensor_type", "tensor type id 4 (removed from ggml)",
       "gguf: tensor 'blk.0.attn_v.weight': unknown ggml type 4",
       lambda m: _set(m.tensor("blk.0.attn_v.weight"), type=4, data=b"\0" * 64))
simple("unknown_tensor_type_big", "tensor type id 1000", "gguf: tensor 'blk.0.attn_v.weight': unknown ggml type 1000",
       lambda m: _set(m.tensor("blk.0.attn_v.weight"), type=1000, data=b"\0" * 64))
simple("row_not_whole_blocks", "Q4_K tensor with rows of 128 elements",
       "gguf: tensor 'blk.0.attn_q.weight': row length 128 is not a multiple of the block size 256 of type Q4_K",
       lambda m: _set(m.tensor("blk.0.attn_q.weight"), dims=[128, 512], data=b"\0" * 36864))
simple("misaligned_offset", "a tensor offset of 123", "gguf: tensor 'blk.1.attn_q.weight': offset 123 is not aligned to 32",
       lambda m: _set(m.tensor("blk.1.attn_q.weight"), offset=123))
simple("duplicate_tensor", "two tensors named blk.0.attn_q.weight",
       "gguf: tensor 'blk.0.attn_q.weight': duplicate tensor name",
       lambda m: _set(m.tensor("blk.1.attn_q.weight"), name="blk.0.attn_q.weight"))


@case("offset_outside", "a tensor offset beyond the data section")
def _(m):
    buf, L = m.serialize()
    dsize = L["size"] - L["data_offset"]
    t = m.tensors[1]
    off = (dsize + 1024) // 32 * 32
    patch_u64(buf, L["tensor"][t.name]["offset"], off)
    return buf, "gguf: tensor '%s': data (offset %d, %d bytes) runs past the end of the data section (%d bytes)" % (
        t.name, off, L["tensor"][t.name]["size"], dsize)


@case("offset_huge", "a tensor offset of 2^63 (offset + size would wrap if added carelessly)")
def _(m):
    buf, L = m.serialize()
    patch_u64(buf, L["tensor"]["output.weight"]["offset"], (1 << 64) - 64)
    return buf, "gguf: tensor 'output.weight': data (offset 18446744073709551552"


@case("size_outside", "the last tensor's size runs past the data section")
def _(m):
    buf, L = m.serialize()
    last = max(m.tensors, key=lambda t: L["tensor"][t.name]["data_at"])
    patch_u64(buf, L["tensor"][last.name]["dims"] + 8, last.dims[1] + 1)   # one more row
    return buf, "gguf: tensor '%s': data (offset %d" % (last.name, L["tensor"][last.name]["data_at"])


@case("overlap", "two tensors share the same data")
def _(m):
    buf, L = m.serialize()
    q, k = L["tensor"]["blk.0.attn_q.weight"], L["tensor"]["blk.0.attn_k.weight"]
    patch_u64(buf, k["offset"], q["data_at"])
    return buf, "gguf: tensor 'blk.0.attn_q.weight': data (offset %d, %d bytes) overlaps tensor 'blk.0.attn_k.weight'" % (
        q["data_at"], q["size"])


# -- model level (llama_model.c)
simple("arch_not_llama", "general.architecture = gpt2",
       "llama: general.architecture is 'gpt2', expected 'llama'",
       lambda m: m.set_kv("general.architecture", STRING, "gpt2"))
simple("arch_missing", "no general.architecture", "llama: key 'general.architecture' is missing",
       lambda m: m.drop_kv("general.architecture"))
simple("arch_wrong_type", "general.architecture is a u32",
       "llama: key 'general.architecture' has type u32, expected string",
       lambda m: m.set_kv("general.architecture", U32, 1))
simple("tokenizer_not_llama", "tokenizer.ggml.model = gpt2",
       "llama: tokenizer.ggml.model is 'gpt2', expected 'llama'",
       lambda m: m.set_kv("tokenizer.ggml.model", STRING, "gpt2"))
simple("missing_key", "no llama.block_count", "llama: key 'llama.block_count' is missing",
       lambda m: m.drop_kv("llama.block_count"))
simple("key_wrong_type", "llama.embedding_length is a string",
       "llama: key 'llama.embedding_length' has type string, expected an integer",
       lambda m: m.set_kv("llama.embedding_length", STRING, "256"))
simple("key_float_for_int", "llama.block_count is an f32",
       "llama: key 'llama.block_count' has type f32, expected an integer",
       lambda m: m.set_kv("llama.block_count", F32, 2.0))
simple("key_negative", "llama.context_length = -1 (i32)",
       "llama: key 'llama.context_length': value -1 is out of range",
       lambda m: m.set_kv("llama.context_length", I32, -1))
simple("key_huge", "llama.block_count = 2^63 + 1 (u64)", "llama: key 'llama.block_count': value is out of range",
       lambda m: m.set_kv("llama.block_count", U64, (1 << 63) + 1))
simple("embd_not_multiple_of_heads", "head_count 7",
       "llama: embedding length 256 is not a multiple of the head count 7",
       lambda m: m.set_kv("llama.attention.head_count", U32, 7))
simple("heads_not_multiple_of_kv", "head_count_kv 3",
       "llama: head count 8 is not a multiple of the KV head count 3",
       lambda m: m.set_kv("llama.attention.head_count_kv", U32, 3))
simple("rope_dim_mismatch", "rope.dimension_count 16 with head size 32",
       "llama: rope dimension count 16 must equal the head size 32",
       lambda m: m.set_kv("llama.rope.dimension_count", U32, 16))
simple("eps_missing", "no layer_norm_rms_epsilon",
       "llama: key 'llama.attention.layer_norm_rms_epsilon' is missing",
       lambda m: m.drop_kv("llama.attention.layer_norm_rms_epsilon"))
simple("eps_wrong_type", "layer_norm_rms_epsilon is a string",
       "llama: key 'llama.attention.layer_norm_rms_epsilon' has type string, expected f32",
       lambda m: m.set_kv("llama.attention.layer_norm_rms_epsilon", STRING, "1e-5"))
simple("eps_nan", "layer_norm_rms_epsilon is NaN",
       "llama: key 'llama.attention.layer_norm_rms_epsilon': value nan is not a positive finite number",
       lambda m: m.set_kv("llama.attention.layer_norm_rms_epsilon", F32, float("nan")))
simple("scores_wrong_array_type", "tokenizer.ggml.scores is an array of i32",
       "llama: key 'tokenizer.ggml.scores' is an array of i32, expected an array of f32",
       lambda m: m.set_kv("tokenizer.ggml.scores", ARRAY, [0] * 300, I32))
simple("tokens_wrong_array_type", "tokenizer.ggml.tokens is an array of u32",
       "llama: key 'tokenizer.ggml.tokens' is an array of u32, expected an array of string",
       lambda m: m.set_kv("tokenizer.ggml.tokens", ARRAY, list(range(300)), U32))
simple("token_type_not_array", "tokenizer.ggml.token_type is a u32",
       "llama: key 'tokenizer.ggml.token_type' has type u32, expected an array of i32",
       lambda m: m.set_kv("tokenizer.ggml.token_type", U32, 1))
simple("scores_count_mismatch", "299 scores for 300 tokens",
       "llama: key 'tokenizer.ggml.scores' has 299 elements, expected 300 (one per token)",
       lambda m: m.set_kv("tokenizer.ggml.scores", ARRAY, [0.0] * 299, F32))
simple("vocab_size_mismatch", "llama.vocab_size 301 with 300 tokens",
       "llama: llama.vocab_size 301 differs from the 300 tokens",
       lambda m: m.set_kv("llama.vocab_size", U32, 301))


def _bad_byte_token(m):
    m.kv("tokenizer.ggml.tokens").value[3 + 0x41] = "<0x4G>"


simple("bad_byte_token", "byte token 68 reads <0x4G>",
       "llama: token 68 is a byte token (type 6) but its text '<0x4G>' is not <0xHH>", _bad_byte_token)


def _byte_token_long(m):
    m.kv("tokenizer.ggml.tokens").value[3] = "<0x000>"


simple("byte_token_too_long", "byte token 3 reads <0x000>",
       "llama: token 3 is a byte token (type 6) but its text '<0x000>' is not <0xHH>", _byte_token_long)
simple("bos_out_of_range", "bos_token_id 300 with 300 tokens",
       "llama: key 'tokenizer.ggml.bos_token_id': token id 300 is out of range (vocab 300)",
       lambda m: m.set_kv("tokenizer.ggml.bos_token_id", U32, 300))
simple("missing_tensor", "no blk.1.ffn_up.weight", "llama: tensor 'blk.1.ffn_up.weight' is missing",
       lambda m: m.drop_tensor("blk.1.ffn_up.weight"))
simple("missing_token_embd", "no token_embd.weight", "llama: tensor 'token_embd.weight' is missing",
       lambda m: m.drop_tensor("token_embd.weight"))
simple("block_count_too_big", "block_count 3 with 2 blocks of tensors",
       "llama: tensor 'blk.2.attn_norm.weight' is missing",
       lambda m: m.set_kv("llama.block_count", U32, 3))
simple("wrong_shape", "attn_k is [256, 128] instead of [256, 64]",
       "llama: tensor 'blk.0.attn_k.weight': shape [256, 128] differs from the expected [256, 64]",
       lambda m: _set(m.tensor("blk.0.attn_k.weight"), dims=[256, 128]))
simple("wrong_shape_transposed", "ffn_down is [256, 512] instead of [512, 256]",
       "llama: tensor 'blk.1.ffn_down.weight': shape [256, 512] differs from the expected [512, 256]",
       lambda m: _set(m.tensor("blk.1.ffn_down.weight"), dims=[256, 512]))
simple("wrong_n_dims", "output_norm is [256, 1] instead of [256]",
       "llama: tensor 'output_norm.weight': shape [256, 1] differs from the expected [256]",
       lambda m: _set(m.tensor("output_norm.weight"), dims=[256, 1]))
simple("unsupported_type", "attn_q is IQ2_XXS", "llama: tensor 'blk.0.attn_q.weight': type IQ2_XXS is not supported",
       lambda m: _set(m.tensor("blk.0.attn_q.weight"), type=T["IQ2_XXS"]))
simple("unsupported_type_bf16", "token_embd is BF16", "llama: tensor 'token_embd.weight': type BF16 is not supported",
       lambda m: _set(m.tensor("token_embd.weight"), type=T["BF16"]))
simple("norm_not_f32", "attn_norm is F16",
       "llama: tensor 'blk.0.attn_norm.weight': type F16 is not supported for a norm (must be F32)",
       lambda m: _set(m.tensor("blk.0.attn_norm.weight"), type=T["F16"]))
simple("rope_scaling_linear", "llama.rope.scaling.type = linear",
       "llama: RoPE scaling 'linear' (llama.rope.scaling.type) is not supported",
       lambda m: m.set_kv("llama.rope.scaling.type", STRING, "linear"))
simple("rope_scaling_factor", "llama.rope.scaling.factor = 4",
       "llama: RoPE scaling factor 4 (llama.rope.scaling.factor) is not supported",
       lambda m: m.set_kv("llama.rope.scaling.factor", F32, 4.0))
@case("data_misaligned", "general.alignment = 2, the data section at 2 mod 4: tensor data not 4-aligned")
def _(m):
    m.set_kv("general.alignment", U32, 2)
    for extra in range(8):
        m.kv("general.name").value = "fluid-test" + "x" * extra
        buf, L = m.serialize()
        if L["data_offset"] % 4 == 2:
            break
    at = L["data_offset"] + L["tensor"]["token_embd.weight"]["data_at"]
    assert at % 4 == 2
    return buf, ("llama: tensor 'token_embd.weight': data at byte %d of the file is not aligned to 4 bytes "
                 "(general.alignment 2)" % at)


simple("valid_rope_scaling_none", "llama.rope.scaling.type = none (no scaling: loads)", "OK",
       lambda m: m.set_kv("llama.rope.scaling.type", STRING, "none"))

# Cases that gguf_parse accepts (the failure, if any, is at model level):
# the tests run these with --parse-only and expect success.
PARSE_OK = [n for n, (_, fn) in CASES.items()
            if n.startswith("valid")] + [
    "arch_not_llama", "arch_missing", "arch_wrong_type", "tokenizer_not_llama", "missing_key",
    "key_wrong_type", "key_float_for_int", "key_negative", "key_huge", "embd_not_multiple_of_heads",
    "heads_not_multiple_of_kv", "rope_dim_mismatch", "eps_missing", "eps_wrong_type", "eps_nan",
    "scores_wrong_array_type", "tokens_wrong_array_type", "token_type_not_array",
    "scores_count_mismatch", "vocab_size_mismatch", "bad_byte_token", "byte_token_too_long",
    "bos_out_of_range", "missing_tensor", "missing_token_embd", "block_count_too_big",
    "wrong_shape", "wrong_shape_transposed", "wrong_n_dims", "unsupported_type",
    "unsupported_type_bf16", "norm_not_f32", "rope_scaling_linear", "rope_scaling_factor",
    "data_misaligned"]


def build(name, preset="small"):
    """-> (bytes, expected fragment) for case name."""
    _, fn = CASES[name]
    data, expect = fn(Model(preset))
    return bytes(data), expect


def main(argv):
    preset = "small"
    if len(argv) >= 2 and argv[0] == "--preset":
        preset, argv = argv[1], argv[2:]
        if preset not in PRESETS:
            sys.exit("unknown preset %s (have: %s)" % (preset, ", ".join(PRESETS)))
    if argv == ["--list"]:
        for n, (doc, _) in CASES.items():
            print("%-28s %s" % (n, doc))
        return 0
    if len(argv) == 2 and argv[0] == "--expect":
        if argv[1] not in CASES:
            sys.exit("unknown case %s (see --list)" % argv[1])
        print(build(argv[1], preset)[1])
        return 0
    if len(argv) == 2 and not argv[0].startswith("-"):
        if argv[0] not in CASES:
            sys.exit("unknown case %s (see --list)" % argv[0])
        data, _ = build(argv[0], preset)
        with open(argv[1], "wb") as fp:
            fp.write(data)
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
