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

Types (tensor types as llama-quantize's mixes; norms are always F32):
    F32     everything F32
    F16     matrices F16
    Q8_0    matrices Q8_0
    Q4_0    matrices Q4_0, output.weight Q6_K
    Q4_K_M  Q4_K; output.weight Q6_K; attn_v and ffn_down Q6_K in the blocks that
            llama.cpp's use_more_bits(i, n) picks (i < n/8, i >= 7n/8, (i - n/8) % 3 == 2:
            10 of TinyLlama's 22 blocks, blocks 2 and 3 of mini) -- the same rule as
            llama.cpp's Q4_K_M, checked against shared/testdata/llamacpp/mini-Q4_K_M.gguf
    Q5_K_M  the same with Q5_K in place of Q4_K
A K-quant needs rows that are a multiple of 256: where a row is shorter (the tiny preset),
that tensor falls back to Q8_0 (llama.cpp would pick Q5_0/Q5_1/Q8_0; Fluid's kernel
only promises Q8_0 among those).

Weights: matrices ~ N(0, 0.02), token embeddings ~ N(0, 1), norm weights ~ 1 + N(0, 0.1).
By default (--gen auto) the tinyllama preset generates quantized blocks directly (random
quants plus f16 scales chosen to give those magnitudes; signs of Q4_0/Q6_K scales are
random, as a real quantizer's are) so that the 1.1 B model is written in seconds; the
small presets draw float weights and quantize them with tools/quants.py (llama.cpp's
reference quantizers). --gen float / --gen direct force either way.

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
from gguf import (GGUFWriter, GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K,  # noqa: E402
                  GGML_Q5_K, GGML_Q6_K, GGML_TYPES, GGUF_F32, GGUF_U32,
                  type_name)
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
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17}
W_STD, EMB_STD, NORM_STD = 0.02, 1.0, 0.1


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_list(hp, ftype, with_output=True):
    """[(name, ne, ggml type, kind)] in file order; kind is 'emb', 'mat' or 'norm'."""
    E, F, L = hp["n_embd"], hp["n_ff"], hp["n_layer"]
    kv_dim = E // hp["n_head"] * hp["n_head_kv"]
    base = {"F32": GGML_F32, "F16": GGML_F16, "Q8_0": GGML_Q8_0, "Q4_0": GGML_Q4_0,
            "Q4_K_M": GGML_Q4_K, "Q5_K_M": GGML_Q5_K}[ftype]

    def pick(t, ne):
        _, bs, _ = GGML_TYPES[t]
        return t if ne[0] % bs == 0 else GGML_Q8_0

    V = hp.get("n_vocab", N_VOCAB)
    out = [("token_embd.weight", [E, V], pick(base, [E]), "emb")]
    for i in range(L):
        b = f"blk.{i}."
        more = ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, L)
        v_t = GGML_Q6_K if more else base
        down_t = GGML_Q6_K if more else base
        out += [
            (b + "attn_norm.weight", [E], GGML_F32, "norm"),
            (b + "attn_q.weight", [E, E], pick(base, [E]), "mat"),
            (b + "attn_k.weight", [E, kv_dim], pick(base, [E]), "mat"),
            (b + "attn_v.weight", [E, kv_dim], pick(v_t, [E]), "mat"),
            (b + "attn_output.weight", [E, E], pick(base, [E]), "mat"),
            (b + "ffn_norm.weight", [E], GGML_F32, "norm"),
            (b + "ffn_gate.weight", [E, F], pick(base, [E]), "mat"),
            (b + "ffn_up.weight", [E, F], pick(base, [E]), "mat"),
            (b + "ffn_down.weight", [F, E], pick(down_t, [F]), "mat"),
        ]
    out.append(("output_norm.weight", [E], GGML_F32, "norm"))
    if with_output:
        out_t = base if ftype in ("F32", "F16", "Q8_0") else GGML_Q6_K
        out.append(("output.weight", [E, V], pick(out_t, [E]), "mat"))
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


def build_writer(path, preset, ftype, with_output=True, vocab=None, progress=None):
    from vocab import load_vocab
    hp = PRESETS[preset]
    vocab = vocab or load_vocab()
    n = hp.get("n_vocab", N_VOCAB)
    if n < len(vocab["tokens"]):   # the first n tokens: ids keep their meaning
        vocab = {k: vocab[k][:n] for k in ("tokens", "scores", "token_types")}
    w = GGUFWriter(path, progress=progress)
    for item in metadata(hp, ftype, vocab):
        w.add(*item)
    tensors = tensor_list(hp, ftype, with_output)
    for name, ne, t, _ in tensors:
        w.add_tensor_info(name, ne, t)
    return w, tensors


def make_model(path, preset="tiny", ftype="Q8_0", seed=0, gen="auto", with_output=True,
               progress=None):
    if gen == "auto":
        gen = "direct" if preset == "tinyllama" else "float"
    w, tensors = build_writer(path, preset, ftype, with_output, progress=progress)
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
    ap.add_argument("--no-output", action="store_true", help="omit output.weight (tied embeddings)")
    ap.add_argument("-o", "--output", help="output .gguf path")
    ap.add_argument("--dry-run", action="store_true", help="print the header summary as JSON, write nothing")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    a = ap.parse_args(argv)
    if a.dry_run:
        print(json.dumps(summary(a.preset, a.ftype, not a.no_output)))
        return 0
    if not a.output:
        ap.error("-o/--output is required (or --dry-run)")
    prog = None if a.quiet else Progress()
    t0 = time.time()
    make_model(a.output, a.preset, a.ftype, a.seed, a.gen, not a.no_output, prog)
    if prog:
        prog.done()
        size = os.path.getsize(a.output)
        print(f"wrote {a.output}: {size / 1e6:.1f} MB in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
