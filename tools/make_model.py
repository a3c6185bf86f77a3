#!/usr/bin/python3
"""Deterministic random-weight Llama models in GGUF v3 with the real Llama 2 vocabulary.

    make_model.py --preset tinyllama --type Q4_0 -o models/tinyllama-shaped-Q4_0.gguf
    make_model.py --preset mini --type Q4_K_M --seed 3 -o /tmp/mini.gguf
    make_model.py --preset tinyllama --type Q4_K_M --dry-run      # header summary only

Presets (n_vocab 32000 unless said, RMSNorm eps 1e-5, RoPE base 10000):
    tinyllama  embd 2048, 22 blocks, 32 heads, 4 KV heads, ff 5632, ctx 2048 (1.10 B params)
    mini       embd 256, 4 blocks, 8 heads, 2 KV heads, ff 768, ctx 512 (as shared/testdata's mini)
    tiny       embd 64, 2 blocks, 4 heads, 2 KV heads, ff 192, ctx 128
    micro      embd 32, 2 blocks, 4 heads, 2 KV heads, ff 256, ctx 64, n_vocab 320 (the first 320
               tokens: <unk> <s> </s>, the 256 byte tokens, 61 pieces): 30-120 KB files, the
               load-path fuzzer's seeds; ff 256 gives ffn_down rows a K-quant can hold

Types (the general.file_type names of llama-quantize, with its per-tensor mixes;
norms are always F32):
    F32, F16        everything F32 / matrices F16
    Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
                    matrices of that type, output.weight Q6_K (Q8_0 for Q8_0)
    Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K
                    K-quant mixes: the base type (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) with
                    attn_v, attn_output and ffn_down raised as llama.cpp's
                    llama_tensor_get_type raises them for a Llama model without an
                    importance matrix (see tensor_type(); e.g. Q2_K: attn_v Q4_K (Q3_K
                    when fewer than 4 query heads share a KV head), attn_output and
                    ffn_down Q3_K, token_embd Q2_K; Q3_K_M: attn_v Q5_K in
                    blocks 0-1 and Q4_K after, attn_output Q4_K, ffn_down Q5_K in the
                    first n/16 blocks and Q4_K after; Q4_K_M: attn_v and ffn_down Q6_K
                    in the blocks use_more_bits(i, n) picks, i < n/8, i >= 7n/8,
                    (i - n/8) % 3 == 2), output.weight Q6_K
A row that is not a whole number of the chosen type's blocks (the tiny preset's
64-wide rows with a K-quant) falls back as llama.cpp's tensor_type_fallback does:
Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0 (output.weight: Q8_0).
tests/host/test_llamacpp_kernels.py checks every choice against llama.cpp's own
llama_model_quantize on the mini and tiny presets and a 22-block shape.

--quantizer llamacpp writes the model in F32 and converts it with llama.cpp's
llama_model_quantize (node-llama-cpp's prebuilt library, tools/llamacpp_lib.py), as
`llama-quantize` would: a file made entirely by llama.cpp's code.

Weights: matrices ~ N(0, 0.02), token embeddings ~ N(0, 1), norm weights ~ 1 + N(0, 0.1).
By default (--gen auto) the tinyllama preset generates quantized blocks directly (random
quants plus f16 scales chosen to give those magnitudes; signs of Q4_0/Q6_K scales are
random, as a real quantizer's are) so that the 1.1 B model is written in seconds; the
small presets draw float weights and quantize them with tools/quants.py (llama.cpp's
reference quantizers). --gen float / --gen direct force either way.

Tokenizer and metadata options (for tests of what a GGUF file asks of Fluid):
    --add-token TEXT   append TEXT to the vocabulary as a CONTROL token (repeatable; ids
                       32000, 32001, ... as ChatML models add <|im_end|>, <|im_start|>)
    --vocab-size N     pad the vocabulary to N tokens with NORMAL pieces "<extra_K>" that
                       no merge can reach (score -1e9); token_embd and output grow with it
    --set KEY=VALUE    add or replace a metadata key: true/false (bool), an integer (u32),
                       a number with a dot (f32), @FILE (a string read from FILE, e.g. a
                       tokenizer.chat_template), else a string (repeatable)
    make_model.py --preset tiny --set tokenizer.ggml.add_bos_token=false -o /tmp/nobos.gguf

Deterministic: the same arguments give the same bytes (every tensor has its own
numpy PCG64 stream seeded by (seed, tensor index)). --no-output omits output.weight
(the output projection then reuses token_embd, as in some real models).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf import (GGUFWriter, GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q5_0,  # noqa: E402
                  GGML_Q5_1, GGML_Q8_0, GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K,
                  GGML_TYPES, GGUF_F32, GGUF_U32, type_name)
import quants  # noqa: E402

PRESETS = {
    "tinyllama": dict(n_embd=2048, n_layer=22, n_head=32, n_head_kv=4, n_ff=5632, n_ctx=2048,
                      name="tinyllama-shaped-random"),
    "mini": dict(n_embd=256, n_layer=4, n_head=8, n_head_kv=2, n_ff=768, n_ctx=512,
                 name="mini-random"),
    "tiny": dict(n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=192, n_ctx=128,
                 name="tiny-random"),
    "micro": dict(n_embd=32, n_layer=2, n_head=4, n_head_kv=2, n_ff=256, n_ctx=64, n_vocab=320,
                  name="micro-random"),
}
N_VOCAB = 32000
# general.file_type (llama.h enum llama_ftype) and the base tensor type of each
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
              "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
              "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18}
BASE_TYPE = {"F32": GGML_F32, "F16": GGML_F16, "Q4_0": GGML_Q4_0, "Q4_1": GGML_Q4_1,
             "Q8_0": GGML_Q8_0, "Q5_0": GGML_Q5_0, "Q5_1": GGML_Q5_1, "Q2_K": GGML_Q2_K,
             "Q3_K_S": GGML_Q3_K, "Q3_K_M": GGML_Q3_K, "Q3_K_L": GGML_Q3_K, "Q4_K_S": GGML_Q4_K,
             "Q4_K_M": GGML_Q4_K, "Q5_K_S": GGML_Q5_K, "Q5_K_M": GGML_Q5_K, "Q6_K": GGML_Q6_K}
# llama.cpp tensor_type_fallback: a type for rows that are not whole blocks of the first
FALLBACK = {GGML_Q2_K: GGML_Q4_0, GGML_Q3_K: GGML_Q4_0, GGML_Q4_K: GGML_Q5_0,
            GGML_Q5_K: GGML_Q5_1, GGML_Q6_K: GGML_Q8_0}
W_STD, EMB_STD, NORM_STD = 0.02, 1.0, 0.1


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _blck(t):
    return GGML_TYPES[t][1]


def tensor_type(hp, ftype, role, i, ne0, tied=False):
    """The type llama.cpp's llama_tensor_get_type (src/llama-quant.cpp) gives a Llama
    tensor in file type `ftype` without an importance matrix: role is 'output',
    'token_embd', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up' or
    'ffn_down'; i the block; ne0 the row length; tied: no output.weight (token_embd
    then takes the output's rule)."""
    t = BASE_TYPE[ftype]
    if t in (GGML_F32, GGML_F16):
        return t
    n = hp["n_layer"]
    gqa = hp["n_head"] // hp["n_head_kv"]
    if role == "output" or (role == "token_embd" and tied):
        return GGML_Q8_0 if ne0 % _blck(t) or t == GGML_Q8_0 else (
            GGML_Q6_K if ne0 % _blck(GGML_Q6_K) == 0 else GGML_Q8_0)
    if role == "attn_v":
        t = {"Q2_K": GGML_Q4_K if gqa >= 4 else GGML_Q3_K,
             "Q3_K_M": GGML_Q5_K if i < 2 else GGML_Q4_K,
             "Q3_K_L": GGML_Q5_K,
             "Q4_K_M": GGML_Q6_K if use_more_bits(i, n) else t,
             "Q5_K_M": GGML_Q6_K if use_more_bits(i, n) else t,
             "Q4_K_S": GGML_Q5_K if i < 4 else t}.get(ftype, t)
    elif role == "ffn_down":
        t = {"Q2_K": GGML_Q3_K,
             "Q3_K_M": GGML_Q5_K if i < n // 16 else GGML_Q4_K,
             "Q3_K_L": GGML_Q5_K,
             "Q4_K_M": GGML_Q6_K if use_more_bits(i, n) else t,
             "Q5_K_M": GGML_Q6_K if use_more_bits(i, n) else t,
             "Q4_K_S": GGML_Q5_K if i < n // 8 else t}.get(ftype, t)
    elif role == "attn_output":
        t = {"Q2_K": GGML_Q3_K, "Q3_K_M": GGML_Q4_K, "Q3_K_L": GGML_Q5_K}.get(ftype, t)
    if ne0 % _blck(t):
        t = FALLBACK.get(t, GGML_F16)
        if ne0 % _blck(t):
            t = GGML_F16
    return t


def tensor_list(hp, ftype, with_output=True):
    """[(name, ne, ggml type, kind)] in file order; kind is 'emb', 'mat' or 'norm'."""
    E, F, L = hp["n_embd"], hp["n_ff"], hp["n_layer"]
    kv_dim = E // hp["n_head"] * hp["n_head_kv"]

    def ty(role, i, ne0):
        return tensor_type(hp, ftype, role, i, ne0, tied=not with_output)

    V = hp.get("n_vocab", N_VOCAB)
    out = [("token_embd.weight", [E, V], ty("token_embd", 0, E), "emb")]
    for i in range(L):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", [E], GGML_F32, "norm"),
            (b + "attn_q.weight", [E, E], ty("attn_q", i, E), "mat"),
            (b + "attn_k.weight", [E, kv_dim], ty("attn_k", i, E), "mat"),
            (b + "attn_v.weight", [E, kv_dim], ty("attn_v", i, E), "mat"),
            (b + "attn_output.weight", [E, E], ty("attn_output", i, E), "mat"),
            (b + "ffn_norm.weight", [E], GGML_F32, "norm"),
            (b + "ffn_gate.weight", [E, F], ty("ffn_gate", i, E), "mat"),
            (b + "ffn_up.weight", [E, F], ty("ffn_up", i, E), "mat"),
            (b + "ffn_down.weight", [F, E], ty("ffn_down", i, F), "mat"),
        ]
    out.append(("output_norm.weight", [E], GGML_F32, "norm"))
    if with_output:
        out.append(("output.weight", [E, V], ty("output", 0, E), "mat"))
    return out


def metadata(hp, ftype, vocab):
    head_dim = hp["n_embd"] // hp["n_head"]
    return [
        ("general.architecture", "llama"),
        ("general.name", hp["name"]),
        ("llama.context_length", hp["n_ctx"], GGUF_U32),
        ("llama.embedding_length", hp["n_embd"], GGUF_U32),
        ("llama.block_count", hp["n_layer"], GGUF_U32),
        ("llama.feed_forward_length", hp["n_ff"], GGUF_U32),
        ("llama.rope.dimension_count", head_dim, GGUF_U32),
        ("llama.attention.head_count", hp["n_head"], GGUF_U32),
        ("llama.attention.head_count_kv", hp["n_head_kv"], GGUF_U32),
        ("llama.attention.layer_norm_rms_epsilon", 1e-5, GGUF_F32),
        ("llama.rope.freq_base", 10000.0, GGUF_F32),
        ("tokenizer.ggml.model", "llama"),
        ("tokenizer.ggml.tokens", vocab["tokens"]),
        ("tokenizer.ggml.scores", np.asarray(vocab["scores"], dtype=np.float32)),
        ("tokenizer.ggml.token_type", np.asarray(vocab["token_types"], dtype=np.int32)),
        ("tokenizer.ggml.bos_token_id", 1, GGUF_U32),
        ("tokenizer.ggml.eos_token_id", 2, GGUF_U32),
        ("tokenizer.ggml.unknown_token_id", 0, GGUF_U32),
        ("tokenizer.ggml.add_bos_token", True),
        ("tokenizer.ggml.add_eos_token", False),
        ("general.quantization_version", 2, GGUF_U32),
        ("general.file_type", FILE_TYPES[ftype], GGUF_U32),
        ("general.alignment", 32, GGUF_U32),
    ]


# ------------------------------------------------------------------ weight generation

CHUNK_WEIGHTS = 1 << 22      # weights per generated chunk (fixed: part of the determinism)


def _rows_per_chunk(ne):
    return max(1, CHUNK_WEIGHTS // int(ne[0]))


def _f16b(v):
    return np.asarray(v, np.float32).astype("<f2").view(np.uint8).reshape(-1, 2)


def float_chunks(rng, ne, kind):
    """Float weights for a tensor, generated row-chunk by row-chunk (float32 arrays)."""
    rows = 1
    for d in ne[1:]:
        rows *= int(d)
    step = _rows_per_chunk(ne)
    for r in range(0, rows, step):
        n = min(step, rows - r)
        x = rng.standard_normal((n, int(ne[0])), dtype=np.float32)
        if kind == "norm":
            yield (F32_ONE + x * np.float32(NORM_STD)).astype(np.float32)
        else:
            yield (x * np.float32(EMB_STD if kind == "emb" else W_STD)).astype(np.float32)


F32_ONE = np.float32(1.0)


def direct_blocks(rng, nb, t, std):
    """nb random blocks of type t whose dequantized weights have about this std."""
    _, bs, ts = GGML_TYPES[t]
    b = np.frombuffer(rng.bytes(nb * ts), dtype=np.uint8).reshape(nb, ts).copy()
    u = rng.uniform(0.75, 1.25, size=nb).astype(np.float32)       # per-block scale spread
    if t == GGML_Q4_0:
        sign = np.where(rng.integers(0, 2, size=nb) == 1, np.float32(-1), np.float32(1))
        b[:, 0:2] = _f16b(sign * u * np.float32(std / 4.637))     # rms of (nibble - 8) = 4.637
    elif t == GGML_Q8_0:
        q = b[:, 2:34].view(np.int8)
        q[q == -128] = 0          # a quantizer writes -127..127; 0 keeps the mean at zero
        b[:, 0:2] = _f16b(u * np.float32(std / 73.61))            # rms of U{-127..127}
    elif t in (GGML_Q4_K, GGML_Q5_K):
        sc = rng.integers(32, 64, size=(nb, 8)).astype(np.uint8)
        if t == GGML_Q4_K:
            q_rms, q_mid, dmin_ratio = 4.610, 7.5, 8.0
        else:
            q_rms, q_mid, dmin_ratio = 9.233, 15.5, 16.0
        mn = np.minimum(63, np.rint(sc * (q_mid / dmin_ratio))).astype(np.uint8)  # centres the weights
        d = u * np.float32(std / (48.4 * q_rms))                   # rms of U{32..63} = 48.4
        b[:, 0:2] = _f16b(d)
        b[:, 2:4] = _f16b(d * np.float32(dmin_ratio))
        b[:, 4:16] = quants.pack_scales_k4(sc, mn)
    elif t == GGML_Q6_K:
        sc = rng.integers(64, 128, size=(nb, 16)).astype(np.int16)
        sc = np.where(rng.integers(0, 2, size=(nb, 16)) == 1, -sc, sc).astype(np.int8)
        sign = np.where(rng.integers(0, 2, size=nb) == 1, np.float32(-1), np.float32(1))
        b[:, 192:208] = sc.view(np.uint8)
        b[:, 208:210] = _f16b(sign * u * np.float32(std / (97.3 * 18.48)))  # rms sc 97.3, q 18.48
    elif t in (GGML_Q4_1, GGML_Q5_1):
        # w = d*q + m with q uniform 0..15 (0..31): m = -d * mean(q) centres the weights
        q_rms, q_mid = (4.610, 7.5) if t == GGML_Q4_1 else (9.233, 15.5)
        d = u * np.float32(std / q_rms)
        b[:, 0:2] = _f16b(d)
        b[:, 2:4] = _f16b(-d * np.float32(q_mid))
    elif t == GGML_Q5_0:
        sign = np.where(rng.integers(0, 2, size=nb) == 1, np.float32(-1), np.float32(1))
        b[:, 0:2] = _f16b(sign * u * np.float32(std / 9.247))     # rms of (q5 - 16) = 9.247
    elif t == GGML_Q2_K:
        sc = rng.integers(8, 16, size=(nb, 16)).astype(np.uint8)
        mn = np.rint(sc * np.float32(0.75)).astype(np.uint8)        # dmin*mn = 1.5*d*sc: mean q2
        d = u * np.float32(std / (11.73 * 1.118))                   # rms sc 11.73, std of q2 1.118
        b[:, 0:16] = sc | (mn << 4)
        b[:, 80:82] = _f16b(d)
        b[:, 82:84] = _f16b(d * np.float32(2))
    elif t == GGML_Q3_K:
        mag = rng.integers(16, 32, size=(nb, 16))
        sc = np.where(rng.integers(0, 2, size=(nb, 16)) == 1, -mag, mag)   # random signs
        b[:, 96:108] = quants.pack_scales_q3_k(sc + 32)
        b[:, 108:110] = _f16b(u * np.float32(std / (23.95 * 2.345)))   # rms |sc| 23.95, q3 2.345
    else:
        raise ValueError(f"no direct generator for {type_name(t)}")
    return b


def data_chunks(rng, ne, t, kind, gen):
    """Byte chunks of one tensor."""
    if kind == "norm" or t in (GGML_F32, GGML_F16) or gen == "float":
        for x in float_chunks(rng, ne, kind):
            yield quants.quantize(x, t)
        return
    _, bs, ts = GGML_TYPES[t]
    rows = 1
    for d in ne[1:]:
        rows *= int(d)
    step = _rows_per_chunk(ne)
    std = EMB_STD if kind == "emb" else W_STD
    for r in range(0, rows, step):
        n = min(step, rows - r)
        yield direct_blocks(rng, n * int(ne[0]) // bs, t, std)


# ------------------------------------------------------------------ main

class Progress:
    """Percent and MB written, on one updating line (a terminal) or every 10% (a log)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.time()
        self.last_t = 0.0
        self.last_bucket = -1

    def __call__(self, done, total, name):
        pct = 100.0 * done / total if total else 100.0
        now = time.time()
        line = f"  {pct:5.1f}%  {done / 1e6:7.1f} / {total / 1e6:.1f} MB  {now - self.t0:5.1f}s  {name}"
        if self.tty:
            if now - self.last_t < 0.1 and done < total:
                return
            self.last_t = now
            self.stream.write("\r" + line.ljust(78)[:78])
        else:
            bucket = int(pct // 10)
            if bucket == self.last_bucket:
                return
            self.last_bucket = bucket
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def extend_vocab(vocab, add_tokens=(), vocab_size=None):
    """The vocabulary with CONTROL tokens appended, then padded with
    unreachable NORMAL pieces up to vocab_size (a new dict)."""
    from vocab import TOKEN_CONTROL, TOKEN_NORMAL
    v = {k: list(vocab[k]) for k in ("tokens", "scores", "token_types")}
    for t in add_tokens:
        if t in v["tokens"]:
            raise ValueError(f"--add-token {t!r}: already in the vocabulary")
        v["tokens"].append(t); v["scores"].append(0.0); v["token_types"].append(TOKEN_CONTROL)
    n = len(v["tokens"])
    if vocab_size is not None and vocab_size < n:
        raise ValueError(f"--vocab-size {vocab_size}: the vocabulary already has {n} tokens")
    for k in range(n, vocab_size or n):
        v["tokens"].append(f"<extra_{k}>"); v["scores"].append(-1e9); v["token_types"].append(TOKEN_NORMAL)
    return v


def parse_set(item):
    """--set KEY=VALUE -> (key, value[, gguf type])."""
    key, sep, val = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE")
    if val in ("true", "false"):
        return (key, val == "true")
    if val.startswith("@"):
        return (key, Path(val[1:]).read_text(encoding="utf-8"))
    try:
        return (key, int(val), GGUF_U32)
    except ValueError:
        pass
    if "." in val:
        try:
            return (key, float(val), GGUF_F32)
        except ValueError:
            pass
    return (key, val)


def build_writer(path, preset, ftype, with_output=True, vocab=None, progress=None, add_tokens=(),
                 vocab_size=None, overrides=()):
    from vocab import load_vocab
    vocab = vocab or load_vocab()
    n = PRESETS[preset].get("n_vocab")
    if n and n < len(vocab["tokens"]):   # the first n tokens: ids keep their meaning
        vocab = {k: vocab[k][:n] for k in ("tokens", "scores", "token_types")}
    vocab = extend_vocab(vocab, add_tokens, vocab_size)
    hp = dict(PRESETS[preset], n_vocab=len(vocab["tokens"]))
    w = GGUFWriter(path, progress=progress)
    items = {item[0]: item for item in metadata(hp, ftype, vocab)}
    for o in overrides:
        items[o[0]] = o
    for item in items.values():
        w.add(*item)
    tensors = tensor_list(hp, ftype, with_output)
    for name, ne, t, _ in tensors:
        w.add_tensor_info(name, ne, t)
    return w, tensors


def make_model(path, preset="tiny", ftype="Q8_0", seed=0, gen="auto", with_output=True,
               progress=None, add_tokens=(), vocab_size=None, overrides=()):
    if gen == "auto":
        gen = "direct" if preset == "tinyllama" else "float"
    w, tensors = build_writer(path, preset, ftype, with_output, progress=progress, add_tokens=add_tokens,
                              vocab_size=vocab_size, overrides=overrides)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        w.write_header()
        for idx, (name, ne, t, kind) in enumerate(tensors):
            rng = np.random.default_rng([seed, idx])
            w.write_tensor_data(name, data_chunks(rng, ne, t, kind, gen))
        w.close()
    except BaseException:
        w.abort()
        raise
    return path


def make_model_llamacpp(path, preset="tiny", ftype="Q8_0", seed=0, with_output=True, progress=None):
    """The same random model in F32 (float weights), converted to `ftype` by llama.cpp's
    llama_model_quantize (tools/llamacpp_lib.py; RuntimeError when node-llama-cpp's
    libraries are missing or llama.cpp refuses)."""
    import llamacpp_lib
    lib = llamacpp_lib.load()
    tmp = f"{path}.f32.tmp"
    try:
        make_model(tmp, preset, "F32", seed, "float", with_output, progress)
        lib.model_quantize(tmp, path, FILE_TYPES[ftype])
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def summary(preset, ftype, with_output=True):
    """Header facts without writing anything (for --dry-run)."""
    w, tensors = build_writer(os.devnull, preset, ftype, with_output)
    header = len(w.header_bytes())
    return {
        "preset": preset, "type": ftype, "hparams": PRESETS[preset],
        "n_params": sum(int(np.prod(ne)) for _, ne, _, _ in tensors),
        "file_size": header + w.data_size,
        "tensors": [[name, type_name(t), ne] for name, ne, t, _ in tensors],
        "kv": {k: (v if not isinstance(v, (list, np.ndarray)) else f"[{len(v)} items]")
               for k, _vt, _et, v in w.kvs},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--type", dest="ftype", choices=list(FILE_TYPES), default="Q8_0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen", choices=["auto", "direct", "float"], default="auto",
                    help="direct: random quantized blocks; float: quantize random floats")
    ap.add_argument("--quantizer", choices=["fluid", "llamacpp"], default="fluid",
                    help="llamacpp: write F32, convert with llama.cpp's llama_model_quantize")
    ap.add_argument("--no-output", action="store_true", help="omit output.weight (tied embeddings)")
    ap.add_argument("-o", "--output", help="output .gguf path")
    ap.add_argument("--dry-run", action="store_true", help="print the header summary as JSON, write nothing")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    ap.add_argument("--add-token", action="append", default=[], metavar="TEXT",
                    help="append a CONTROL token (repeatable)")
    ap.add_argument("--vocab-size", type=int, metavar="N", help="pad the vocabulary to N tokens")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="add or replace a metadata key (repeatable)")
    a = ap.parse_args(argv)
    try:
        overrides = [parse_set(x) for x in a.set]
    except (ValueError, OSError) as e:
        ap.error(str(e))
    if a.dry_run:
        print(json.dumps(summary(a.preset, a.ftype, not a.no_output)))
        return 0
    if not a.output:
        ap.error("-o/--output is required (or --dry-run)")
    prog = None if a.quiet else Progress()
    t0 = time.time()
    if a.quantizer == "llamacpp":
        if a.add_token or a.vocab_size or overrides:
            print("make_model.py: --add-token, --vocab-size and --set need --quantizer fluid", file=sys.stderr)
            return 1
        try:
            make_model_llamacpp(a.output, a.preset, a.ftype, a.seed, not a.no_output, prog)
        except RuntimeError as e:
            print(f"make_model.py: {e}", file=sys.stderr)
            return 1
    else:
        make_model(a.output, a.preset, a.ftype, a.seed, a.gen, not a.no_output, prog, a.add_token,
                   a.vocab_size, overrides)
    if prog:
        prog.done()
        size = os.path.getsize(a.output)
        print(f"wrote {a.output}: {size / 1e6:.1f} MB in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
