#!/usr/bin/python3
"""The real Llama 2 vocabulary (32000 SentencePiece pieces), taken from the npm
package llama-tokenizer-js 1.2.2 (MIT), which ships it base64-encoded inside
llama-tokenizer.js as the '\\n'-joined list of pieces in id order.

    from vocab import load_vocab
    v = load_vocab()          # {"tokens": [...], "scores": [...], "token_types": [...]}

The package is installed by tools/npm-deps.sh into tools/node_modules; the
extracted vocabulary is cached as build/vocab/llama2-vocab.json.

Scores and types are rebuilt the way the Llama 2 tokenizer.model has them (and
as llama.cpp's GGUF files carry them):
  - ids 0..258 score 0; id i >= 259 scores -(i - 259), except that every piece
    made only of U+2581 "▁" (there are 16, lengths 1..16: ids 259, 268, 308,
    418, 462, 539, 632, 795, 965, 1669, 1678, 3986, 4706, 9651, 18884, 29871)
    scores -1e9;
  - types: id 0 unknown (2), 1-2 control (3), 3-258 byte (6), the rest normal (1).

CLI: vocab.py [--check GGUF] [--print-ids]
"""
import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
PKG_JS = TOOLS / "node_modules" / "llama-tokenizer-js" / "llama-tokenizer.js"
CACHE = ROOT / "build" / "vocab" / "llama2-vocab.json"
N_VOCAB = 32000
SPACE = "\u2581"

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6


def ensure_npm_package():
    if not PKG_JS.exists():
        subprocess.run([str(TOOLS / "npm-deps.sh")], check=True)
    return PKG_JS


def extract_pieces(js_path=None):
    """The 32000 pieces, in id order, decoded from the npm package's source."""
    js_path = Path(js_path) if js_path else ensure_npm_package()
    src = js_path.read_text(encoding="utf-8")
    m = re.search(r'const\s+llama_vocab_base64\s*=\s*"([A-Za-z0-9+/=]+)"', src)
    if not m:
        raise ValueError(f"{js_path}: llama_vocab_base64 not found")
    pieces = base64.b64decode(m.group(1)).decode("utf-8").split("\n")
    if len(pieces) != N_VOCAB:
        raise ValueError(f"{js_path}: {len(pieces)} pieces, expected {N_VOCAB}")
    return pieces


def is_space_run(piece):
    return len(piece) > 0 and set(piece) == {SPACE}


def make_scores(pieces):
    scores = []
    for i, p in enumerate(pieces):
        if i < 259:
            scores.append(0.0)
        elif is_space_run(p):
            scores.append(-1e9)
        else:
            scores.append(float(-(i - 259)))
    return scores


def make_types(pieces):
    types = []
    for i in range(len(pieces)):
        if i == 0:
            types.append(TOKEN_UNKNOWN)
        elif i <= 2:
            types.append(TOKEN_CONTROL)
        elif i <= 258:
            types.append(TOKEN_BYTE)
        else:
            types.append(TOKEN_NORMAL)
    return types


def build_vocab(js_path=None):
    pieces = extract_pieces(js_path)
    # sanity checks on the fixed part of the vocabulary
    assert pieces[:3] == ["<unk>", "<s>", "</s>"], pieces[:3]
    assert all(pieces[3 + b] == f"<0x{b:02X}>" for b in range(256))
    return {"source": "npm llama-tokenizer-js 1.2.2",
            "tokens": pieces, "scores": make_scores(pieces), "token_types": make_types(pieces)}


def load_vocab(refresh=False):
    """Load (and cache in build/vocab/llama2-vocab.json) the Llama 2 vocabulary."""
    if not refresh and CACHE.exists():
        try:
            with open(CACHE, encoding="utf-8") as f:
                v = json.load(f)
            if len(v.get("tokens", ())) == N_VOCAB:
                return v
        except (OSError, ValueError):
            pass
    v = build_vocab()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(v, f, ensure_ascii=False)
    os.replace(tmp, CACHE)
    return v


def compare_with_gguf(path, v=None):
    """List of mismatch descriptions between our vocabulary and a GGUF file's."""
    import numpy as np
    sys.path.insert(0, str(TOOLS))
    from gguf import GGUFReader
    v = v or load_vocab()
    r = GGUFReader(path)
    bad = []
    toks = r.kv["tokenizer.ggml.tokens"]
    scores = np.asarray(r.kv["tokenizer.ggml.scores"], dtype=np.float32)
    types = np.asarray(r.kv["tokenizer.ggml.token_type"])
    if list(toks) != v["tokens"]:
        d = [i for i, (a, b) in enumerate(zip(toks, v["tokens"])) if a != b]
        bad.append(f"pieces differ at {len(d)} ids, first {d[:10]}")
    ds = np.nonzero(scores != np.asarray(v["scores"], dtype=np.float32))[0]
    if len(ds):
        bad.append(f"scores differ at {len(ds)} ids, first {ds[:10].tolist()}")
    dt = np.nonzero(types != np.asarray(v["token_types"]))[0]
    if len(dt):
        bad.append(f"types differ at {len(dt)} ids, first {dt[:10].tolist()}")
    return bad


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="GGUF", help="compare with a GGUF file's vocabulary")
    ap.add_argument("--refresh", action="store_true", help="rebuild the cached JSON")
    ap.add_argument("--print-ids", action="store_true", help="print the -1e9 (space-run) ids")
    a = ap.parse_args(argv)
    v = load_vocab(refresh=a.refresh)
    print(f"{len(v['tokens'])} pieces, cached in {CACHE}")
    if a.print_ids:
        print([i for i, s in enumerate(v["scores"]) if s <= -1e8])
    if a.check:
        bad = compare_with_gguf(a.check, v)
        print("\n".join(bad) if bad else f"identical to {a.check}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
