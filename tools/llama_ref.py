#!/usr/bin/python3
"""numpy reference forward pass of a GGUF Llama model, computed the way llama.cpp's
CPU backend computes it (see shared/REFERENCE.md):

  - weights are dequantized with tools/quants.py;
  - the input row of every matrix product is first rounded the way llama.cpp
    quantizes it for that weight type (Q8_0 blocks for Q4_0/Q5_0/Q8_0 weights, with
    the rounding variant of each, see quants.quantize_activation; Q8_1 for Q4_1/Q5_1;
    Q8_K for K-quants; F16 for F16 weights), then dot products are taken in float64
    (llama.cpp does exact integer sums times scales; only summation order differs);
  - RMSNorm: sum of squares in double, scale 1/sqrtf(mean + eps) in float32;
  - RoPE on adjacent pairs (x[2i], x[2i+1]); theta_scale = base ** (-2/n_rot) in
    float32 and theta_i = pos * theta_scale**i built by repeated float32
    multiplication as ggml's rope cache does;
  - K and V are stored in an F16 KV cache (llama.cpp's default), Q is converted
    to F16 for the K·Q product, scale 1/sqrt(head_dim), causal mask, softmax in
    float32 with a double sum, probabilities rounded to F16 for the V product,
    grouped-query attention (query head h reads KV head h // (n_head / n_head_kv));
  - SwiGLU feed-forward (silu(gate) * up), residual adds in float32;
  - output.weight, or token_embd.weight when the file has no output tensor.

Agreement with llama.cpp (build c392e50, shared/testdata/llamacpp/mini-*.json, prompts
then teacher-forced greedy tokens, 48 positions per file): top-1 equal at 48/48 positions
for F16, Q8_0, Q4_0, Q4_K_M and Q5_K_M; largest |logit difference| on llama.cpp's top-8
0.0001 (F16) to 0.0034 (Q4_0). Most quantized positions agree to 1e-5; the rest differ
by a few 1e-3 because float32 summation order in llama.cpp's kernels now and then flips
the rounding of one 8-bit activation, and that propagates (switching this reference's
own sums from float64 to float32 moves its logits by the same amount).

API:  LlamaRef(path).logits(tokens) -> float32 [n_tokens, n_vocab], the whole token
      sequence processed from an empty context.
CLI:  llama_ref.py MODEL --tokens 1 15043 3186 --top 8 [--last]
      prints one JSON line per position: {"pos": P, "top": [[id, logit], ...]}
      (--last: only the last position).
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf import GGUFReader, GGML_TYPES  # noqa: E402
import quants  # noqa: E402
from quants import dequantize, act_f16  # noqa: E402

F32 = np.float32


class LlamaRef:
    def __init__(self, path, cache_bytes=1 << 30, f16_kv=True, f16_probs=True):
        """cache_bytes: keep dequantized weights in memory up to this many bytes of
        float32 (small models); bigger ones are dequantized on every call.
        f16_kv: round K and V to F16 like llama.cpp's default KV cache.
        f16_probs: round the attention probabilities to F16 before the V product, as
        llama.cpp's attention without flash attention does (this matched its
        logits better than float32 probabilities)."""
        self.path = str(path)
        self.r = r = GGUFReader(path)
        arch = r.kv.get("general.architecture", "llama")
        if arch != "llama":
            raise ValueError(f"{path}: architecture {arch!r} is not llama")
        kv = r.kv
        self.n_embd = int(kv["llama.embedding_length"])
        self.n_layer = int(kv["llama.block_count"])
        self.n_ff = int(kv["llama.feed_forward_length"])
        self.n_head = int(kv["llama.attention.head_count"])
        self.n_head_kv = int(kv.get("llama.attention.head_count_kv", self.n_head))
        self.eps = F32(kv.get("llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.freq_base = F32(kv.get("llama.rope.freq_base", 10000.0))
        self.head_dim = self.n_embd // self.n_head
        self.n_rot = int(kv.get("llama.rope.dimension_count", self.head_dim))
        self.n_ctx = int(kv.get("llama.context_length", 2048))
        emb = r.tensor("token_embd.weight")
        self.n_vocab = int(emb.ne[1])
        self.output_name = "output.weight" if "output.weight" in r else "token_embd.weight"
        self.f16_kv = f16_kv
        self.f16_probs = f16_probs
        total = sum(t.n_elements * 4 for t in r.tensors)
        self._cache = {} if total <= cache_bytes else None

    # ---------------------------------------------------------------- weights
    def weight(self, name):
        """Dequantized float32 weight, numpy shape ne[::-1] (a matrix is [n_out, n_in])."""
        if self._cache is not None and name in self._cache:
            return self._cache[name]
        w = self.r.array(name)
        if self._cache is not None:
            self._cache[name] = w
        return w

    def embed(self, tokens):
        ti = self.r.tensor("token_embd.weight")
        n_in = int(ti.ne[0])
        _, bs, ts = GGML_TYPES[ti.type]
        row_bytes = n_in // bs * ts
        raw = self.r.raw("token_embd.weight")
        out = np.empty((len(tokens), n_in), F32)
        for i, t in enumerate(tokens):
            if not 0 <= t < self.n_vocab:
                raise ValueError(f"token {t} out of range")
            out[i] = dequantize(raw[t * row_bytes:(t + 1) * row_bytes], ti.type, n_in)
        return out

    def matmul(self, x, name):
        """y = W x for every row of x [T, n_in] -> [T, n_out], as llama.cpp computes it."""
        ti = self.r.tensor(name)
        xq = quants.quantize_activation(x, ti.type).astype(np.float64)
        w = self.weight(name)
        n_out = w.shape[0]
        y = np.empty((x.shape[0], n_out), F32)
        step = max(1, (64 << 20) // (8 * w.shape[1]))   # bound the float64 temporaries
        for o in range(0, n_out, step):
            y[:, o:o + step] = xq @ w[o:o + step].astype(np.float64).T
        return y

    # ---------------------------------------------------------------- ops
    def rms_norm(self, x, name):
        ss = np.sum((x * x).astype(np.float64), axis=-1, keepdims=True)   # float products, double sum
        mean = (ss / x.shape[-1]).astype(F32)
        scale = (F32(1) / np.sqrt(mean + self.eps).astype(F32)).astype(F32)
        return (x * scale).astype(F32) * self.weight(name).astype(F32)

    def rope(self, x, pos):
        """x [T, H, head_dim] rotated in adjacent pairs; pos [T]."""
        n_rot = self.n_rot
        # powf(freq_base, -2.0f/n_dims): float32 exponent, correctly rounded float32 result
        expo = F32(-2.0) / F32(n_rot)
        theta_scale = F32(np.power(np.float64(self.freq_base), np.float64(expo)))
        T = x.shape[0]
        theta = np.empty((T, n_rot // 2), F32)
        th = pos.astype(F32)
        for i in range(n_rot // 2):
            theta[:, i] = th
            th = (th * theta_scale).astype(F32)
        c = np.cos(theta.astype(np.float64)).astype(F32)[:, None, :]
        s = np.sin(theta.astype(np.float64)).astype(F32)[:, None, :]
        out = x.copy()
        x0 = x[:, :, 0:n_rot:2]
        x1 = x[:, :, 1:n_rot:2]
        out[:, :, 0:n_rot:2] = x0 * c - x1 * s
        out[:, :, 1:n_rot:2] = x0 * s + x1 * c
        return out

    def attention(self, q, k, v):
        """q [T, H, D], k/v [T, Hkv, D] -> [T, H*D]."""
        T, H, D = q.shape
        gqa = H // self.n_head_kv
        scale = F32(1.0 / np.sqrt(D))
        if self.f16_kv:
            q = act_f16(q)
            k = act_f16(k)
            v = act_f16(v)
        mask = np.triu(np.ones((T, T), bool), k=1)
        out = np.empty((T, H, D), F32)
        for h in range(H):
            kh = k[:, h // gqa].astype(np.float64)
            vh = v[:, h // gqa].astype(np.float64)
            s = (q[:, h].astype(np.float64) @ kh.T).astype(F32) * scale
            s = np.where(mask, F32(-np.inf), s)
            m = s.max(axis=1, keepdims=True)
            e = np.exp((s - m).astype(np.float64)).astype(F32)
            p = (e * (F32(1) / e.astype(np.float64).sum(axis=1, keepdims=True).astype(F32))).astype(F32)
            if self.f16_probs:
                p = act_f16(p)
            out[:, h] = (p.astype(np.float64) @ vh).astype(F32)
        return out.reshape(T, H * D)

    # ---------------------------------------------------------------- forward
    def hidden(self, tokens):
        """Final hidden states (after output_norm), float32 [T, n_embd]."""
        tokens = [int(t) for t in tokens]
        T = len(tokens)
        pos = np.arange(T)
        H, Hkv, D = self.n_head, self.n_head_kv, self.head_dim
        x = self.embed(tokens)
        for il in range(self.n_layer):
            b = f"blk.{il}."
            n = self.rms_norm(x, b + "attn_norm.weight")
            q = self.matmul(n, b + "attn_q.weight").reshape(T, H, D)
            k = self.matmul(n, b + "attn_k.weight").reshape(T, Hkv, D)
            v = self.matmul(n, b + "attn_v.weight").reshape(T, Hkv, D)
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            a = self.attention(q, k, v)
            x = (x + self.matmul(a, b + "attn_output.weight")).astype(F32)
            n = self.rms_norm(x, b + "ffn_norm.weight")
            g = self.matmul(n, b + "ffn_gate.weight")
            u = self.matmul(n, b + "ffn_up.weight")
            silu = (g / (F32(1) + np.exp(-g.astype(np.float64)).astype(F32))).astype(F32)
            x = (x + self.matmul((silu * u).astype(F32), b + "ffn_down.weight")).astype(F32)
        return self.rms_norm(x, "output_norm.weight")

    def logits(self, tokens):
        return self.matmul(self.hidden(tokens), self.output_name)


def top_k(row, k):
    idx = np.argsort(-row, kind="stable")[:k]
    return [[int(i), round(float(row[i]), 6)] for i in idx]


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="numpy reference Llama forward pass (llama.cpp numerics)")
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, nargs="+", required=True)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--last", action="store_true", help="print only the last position")
    ap.add_argument("--no-f16-probs", action="store_true",
                    help="keep attention probabilities in float32 (llama.cpp rounds them to F16)")
    a = ap.parse_args(argv)
    m = LlamaRef(a.model, f16_probs=not a.no_f16_probs)
    lg = m.logits(a.tokens)
    positions = [len(a.tokens) - 1] if a.last else range(len(a.tokens))
    for p in positions:
        print(json.dumps({"pos": p, "top": top_k(lg[p], a.top)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
