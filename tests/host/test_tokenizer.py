"""Tests of kernel/core/llm/tokenizer.c (SentencePiece BPE, llama.cpp semantics)
through tests/host/tok_harness.c.

Oracles, each independent of Fluid's C code:
  - llama-tokenizer-js 1.2.2 (npm, tools/node_modules, run by tok_js.mjs):
    every valid-UTF-8 case must encode identically;
  - llama.cpp's own prompt_tokens in shared/testdata/llamacpp/mini-*.json;
  - Python's sentencepiece (Debian python3-sentencepiece), fed a model built
    from the GGUF vocabulary, when it is installed;
  - a naive O(n^2) Python re-implementation of the merge rule (no heap), the
    only oracle for invalid UTF-8 input.

Vocabulary: shared/testdata/llamacpp/mini-Q8_0.gguf (the real Llama 2
vocabulary written by llama.cpp), else a vocabulary-only GGUF built here from
tools/vocab.py (the same vocabulary, from the npm package) with tools/gguf.py.

Known, documented differences from llama-tokenizer-js:
  - the empty string: llama.cpp (and Fluid) give [BOS], the JS package [];
  - the JS package cannot take invalid UTF-8 (JS strings are UTF-16);
  - the JS package never parses special tokens ("</s>" stays text), like
    Fluid without TOK_ENC_SPECIAL.
Run: /usr/bin/python3 -m pytest tests/host/test_tokenizer.py
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from hostbuild import build  # noqa: E402

SHARED = ROOT.parent / "shared" / "testdata" / "llamacpp"
BOS, EOS = 1, 2
SPACE = "\u2581".encode()

# ---------------------------------------------------------------- fixtures


def _node_modules():
    nm = ROOT / "tools" / "node_modules"
    if (nm / "llama-tokenizer-js" / "package.json").exists():
        return nm
    script = ROOT / "tools" / "npm-deps.sh"
    if script.exists() and shutil.which("npm"):
        subprocess.run(["bash", str(script)], check=False)
        if (nm / "llama-tokenizer-js" / "package.json").exists():
            return nm
    return None


@pytest.fixture(scope="session")
def node_modules():
    nm = _node_modules()
    if nm is None or not shutil.which("node"):
        pytest.skip("llama-tokenizer-js is not installed (tools/npm-deps.sh)")
    return nm


def _make_vocab_gguf():
    """A GGUF with only the tokenizer keys, from tools/vocab.py (npm data)."""
    out = ROOT / "build" / "host" / "tok-vocab.gguf"
    if out.exists():
        return out
    if _node_modules() is None:
        return None
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gguf
        from vocab import load_vocab
    except ImportError:
        return None
    v = load_vocab()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    gguf.write_gguf(str(tmp), [
        ("general.architecture", "llama"),
        ("tokenizer.ggml.model", "llama"),
        ("tokenizer.ggml.tokens", v["tokens"]),
        ("tokenizer.ggml.scores", [float(s) for s in v["scores"]],
         gguf.GGUF_ARRAY, gguf.GGUF_F32),
        ("tokenizer.ggml.token_type", v["token_types"], gguf.GGUF_ARRAY, gguf.GGUF_I32),
        ("tokenizer.ggml.bos_token_id", 1, gguf.GGUF_U32),
        ("tokenizer.ggml.eos_token_id", 2, gguf.GGUF_U32),
        ("tokenizer.ggml.unknown_token_id", 0, gguf.GGUF_U32),
    ], [])
    os.replace(tmp, out)
    return out


@pytest.fixture(scope="session")
def gguf_path():
    p = SHARED / "mini-Q8_0.gguf"
    if p.exists():
        return p
    p = _make_vocab_gguf()
    if p is None:
        pytest.skip("no vocabulary: neither shared/testdata nor the npm package")
    return p


@pytest.fixture(scope="session")
def harness():
    return build("tok_harness", ["tests/host/tok_harness.c", "kernel/core/llm/tokenizer.c"])


def read_vocab(path):
    """(pieces as bytes, scores, types, bos) from a GGUF file's metadata."""
    d = Path(path).read_bytes()[: 16 << 20]
    off = 24
    fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
           10: "Q", 11: "q", 12: "d"}

    def val(t):
        nonlocal off
        if t == 8:
            n = struct.unpack_from("<Q", d, off)[0]
            off += 8 + n
            return d[off - n:off]
        if t == 9:
            et, n = struct.unpack_from("<IQ", d, off)
            off += 12
            return [val(et) for _ in range(n)]
        v = struct.unpack_from("<" + fmt[t], d, off)[0]
        off += struct.calcsize(fmt[t])
        return v

    assert d[:4] == b"GGUF"
    nkv = struct.unpack_from("<Q", d, 16)[0]
    kv = {}
    for _ in range(nkv):
        k = val(8).decode()
        t = struct.unpack_from("<I", d, off)[0]
        off += 4
        kv[k] = val(t)
    return (kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.scores"],
            kv["tokenizer.ggml.token_type"], kv.get("tokenizer.ggml.bos_token_id", 1))


@pytest.fixture(scope="session")
def vocab(gguf_path):
    pieces, scores, types, bos = read_vocab(gguf_path)
    ids = {}
    for i, p in enumerate(pieces):
        ids[p] = i  # last one wins, as llama.cpp
    return {"pieces": pieces, "scores": scores, "types": types, "ids": ids, "bos": bos}


# ------------------------------------------------------------------- cases


def unescape(line):
    out = bytearray()
    i = 0
    while i < len(line):
        c = line[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = line[i + 1]
        if e in "nrt\\":
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}[e]
            i += 2
        elif e == "x":
            out.append(int(line[i + 2:i + 4], 16))
            i += 4
        elif e == "u":
            out += chr(int(line[i + 2:i + 6], 16)).encode()
            i += 6
        elif e == "U":
            out += chr(int(line[i + 2:i + 10], 16)).encode()
            i += 10
        else:
            raise ValueError(f"bad escape in {line!r}")
    return bytes(out)


def escape(b):
    """The harness's input format: \\xHH for anything but printable ASCII."""
    return "".join(chr(c) if 0x20 <= c < 0x7F and c != 0x5C else f"\\x{c:02x}"
                   for c in b)


def generated_cases():
    rnd = random.Random(1234)
    cases = [b""]
    cases += [b" " * k for k in range(1, 34)]
    cases += [b"a" + b" " * k + b"b" for k in range(1, 21)]
    cases += [b"\n" * k for k in range(1, 7)]
    cases += [b" \n" * k for k in range(1, 7)]
    cases += [b"\t" * k + b"x" for k in range(1, 7)]
    pool = ["the", "quick", "fox", "Fluid", "kernel", "token", "ization", " ", "  ",
            "   ", "\n", "\n\n", "\t", ",", ".", "!", "?", "'", '"', "(", ")", "-",
            "0", "7", "42", "2024", "3.14", "café", "naïve", "Straße", "Привет",
            "мир", "Γειά", "日本語", "中文", "한국어", "こんにちは", "😀", "👍🏽",
            "🇫🇷", "e\u0301", "𠜎", "龘", "\u2581", "\u00a0", "\u200b", "—", "…",
            "<s>", "</s>", "<0x0A>", "#", "$", "€", "x²", "→", "\x00", "\x7f"]
    for _ in range(80):
        n = rnd.randint(1, 30)
        cases.append("".join(rnd.choice(pool) for _ in range(n)).encode())
    cases += LONG
    # invalid UTF-8 (the Python reference is the only oracle for these)
    frags = [b"\x80", b"\xbf", b"\xc3", b"\xe6\x97", b"\xf0\x9f\x98", b"\xff", b"\xfe",
             b"\xc0\xaf", b"\xed\xa0\x80", "é".encode(), "日".encode(), b"a", b" ",
             b"ab", b"\n", "😀".encode()]
    for _ in range(30):
        cases.append(b"".join(rnd.choice(frags) for _ in range(rnd.randint(1, 12))))
    return cases


def long_cases():
    rnd = random.Random(99)
    words = ("the of and to in is that it was for on are as with his they at be this "
             "from have or by one had not but what all were when we there can an your "
             "which their said if do will each about how up out them then she many some "
             "so these would other into has more her two like him see time could no make "
             "than first been its who now people my made over did down only way find use "
             "may water long little very after words called just where most know").split()
    prose = []
    while sum(len(w) + 1 for w in prose) < 4500:
        w = rnd.choice(words)
        prose.append(w.capitalize() if rnd.random() < 0.1 else w)
        if rnd.random() < 0.08:
            prose[-1] += rnd.choice([".", ",", "!", "?", ".\n"])
    english = " ".join(prose).encode()
    multi = ("Fluid démarre directement dans l'inférence. Привет, мир! 日本語のテキスト。"
             " Γειά σου. 😀👍 ¿Qué tal? 한국어 ").encode()
    mixed = (multi * 60)[:4096]
    while True:  # cut at a character boundary, then pad to 4096 bytes
        try:
            mixed.decode()
            break
        except UnicodeDecodeError:
            mixed = mixed[:-1]
    mixed += b"x" * (4096 - len(mixed))
    cjk = "".join(rnd.choice("的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生𠜎龘😀") for _ in range(1700)).encode()
    spaces = b"".join(rnd.choice([b" ", b"  ", b"\n", b" \n", b"x", b"    "]) for _ in range(2000))
    code = (b"for (int i = 0; i < n; i++) {\n    sum += a[i] * b[i];  // dot\n}\n" * 70)
    return [english, mixed, cjk, spaces, code, b"a" * 4096]


LONG = long_cases()  # english, mixed (4096 bytes), cjk, spaces, code, a*4096


def all_cases():
    lines = (HERE / "tokenizer_cases.txt").read_text(encoding="utf-8").split("\n")
    cases = [unescape(l) for l in lines if l and not l.startswith("#")]
    return cases + generated_cases()


CASES = all_cases()


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


VALID = [c for c in CASES if is_utf8(c)]

# ----------------------------------------------------------------- helpers


def run(harness, gguf_path, args, lines, check=True):
    p = subprocess.run([str(harness), str(gguf_path), *args], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    if check:
        assert p.returncode == 0, p.stderr
    return p.stdout.split("\n")[:-1] if p.stdout else []


def encode(harness, gguf_path, cases, args=("--bos",)):
    out = run(harness, gguf_path, [*args, "encode"], [escape(c) for c in cases])
    assert len(out) == len(cases)
    return [[int(x) for x in l.split()] if not l.startswith("ERR") else l for l in out]


def js_encode(node_modules, items):
    p = subprocess.run(["node", str(HERE / "tok_js.mjs"), str(node_modules), "encode"],
                       input=json.dumps(items), capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def utf8_symbols(b):
    """Split bytes into UTF-8 characters; a byte that does not start a valid
    sequence (per Python's decoder) is a symbol of its own."""
    out, i = [], 0
    while i < len(b):
        for n in (4, 3, 2, 1):
            try:
                if len(b[i:i + n]) == n and len(b[i:i + n].decode("utf-8")) == 1:
                    break
            except UnicodeDecodeError:
                pass
        else:
            n = 1
        out.append(b[i:i + n])
        i += n
    return out


def reference_encode(vocab, text, bos=True):
    """Naive SentencePiece BPE: repeatedly merge the leftmost best pair."""
    ids, scores = vocab["ids"], vocab["scores"]
    out = [vocab["bos"]] if bos else []
    if not text:
        return out
    syms = utf8_symbols((b" " + text).replace(b" ", SPACE))
    while True:
        best, best_score = -1, None
        for i in range(len(syms) - 1):
            t = ids.get(syms[i] + syms[i + 1])
            if t is not None and (best < 0 or scores[t] > best_score):
                best, best_score = i, scores[t]
        if best < 0:
            break
        syms[best:best + 2] = [syms[best] + syms[best + 1]]
    for s in syms:
        if s in ids:
            out.append(ids[s])
        else:
            out += [ids[b"<0x%02X>" % c] for c in s]
    return out


# ------------------------------------------------------------------- tests


def test_case_count():
    assert len(CASES) >= 300
    assert sum(len(c) >= 4000 for c in CASES) >= 4
    assert b"" in CASES


def test_hello_world(harness, gguf_path):
    assert encode(harness, gguf_path, [b"Hello world!"]) == [[1, 15043, 3186, 29991]]


def test_matches_llama_tokenizer_js(harness, gguf_path, node_modules):
    ours = encode(harness, gguf_path, VALID)
    theirs = js_encode(node_modules, [c.decode() for c in VALID])
    bad = []
    for c, a, b in zip(VALID, ours, theirs):
        if c == b"":
            # documented corner: llama.cpp gives [BOS] for "", the JS package []
            assert a == [BOS] and b == []
        elif a != b:
            bad.append((c[:60], a[:20], b[:20]))
    assert not bad, f"{len(bad)} of {len(VALID)} differ, first: {bad[:3]}"
    assert len(VALID) >= 300


def test_matches_js_without_bos_and_prefix(harness, gguf_path, node_modules):
    sample = [c for c in VALID if c][:120]
    theirs = js_encode(node_modules, [[c.decode(), False, False] for c in sample])
    assert encode(harness, gguf_path, sample, ("--no-prefix",)) == theirs
    theirs = js_encode(node_modules, [[c.decode(), False, True] for c in sample])
    assert encode(harness, gguf_path, sample, ()) == theirs


def test_matches_python_reference(harness, gguf_path, vocab):
    small = [c for c in CASES if len(c) <= 600]
    assert any(not is_utf8(c) for c in small)
    ours = encode(harness, gguf_path, small)
    for c, a in zip(small, ours):
        assert a == reference_encode(vocab, c), c


def test_matches_sentencepiece(harness, gguf_path, vocab):
    spm = pytest.importorskip("sentencepiece")
    proto = sentencepiece_model(vocab)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    ours = encode(harness, gguf_path, VALID)
    bad = []
    for c, a in zip(VALID, ours):
        b = [BOS] + sp.encode(c.decode()) if c else [BOS]
        if a != b:
            bad.append((c[:60], a[:20], b[:20]))
    assert not bad, f"{len(bad)} differ from sentencepiece, first: {bad[:3]}"


def sentencepiece_model(vocab):
    """A SentencePiece ModelProto (BPE, byte fallback, identity normalizer,
    dummy prefix, no whitespace folding) holding the GGUF vocabulary."""
    def varint(n):
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def field(num, wt, payload):
        key = varint(num << 3 | wt)
        return key + (varint(len(payload)) + payload if wt == 2 else payload)

    out = bytearray()
    for p, s, t in zip(vocab["pieces"], vocab["scores"], vocab["types"]):
        out += field(1, 2, field(1, 2, p) + field(2, 5, struct.pack("<f", s)) +
                     field(3, 0, varint(t)))
    out += field(2, 2, field(3, 0, varint(2)) + field(35, 0, varint(1)))
    out += field(3, 2, field(1, 2, b"identity") + field(3, 0, varint(1)) +
                 field(4, 0, varint(0)) + field(5, 0, varint(1)))
    return bytes(out)


def test_matches_llamacpp_prompt_tokens(harness, gguf_path):
    files = sorted(SHARED.glob("mini-*.json"))
    if not files:
        pytest.skip("shared/testdata/llamacpp absent")
    seen = 0
    for f in files:
        for e in json.loads(f.read_text()):
            got = encode(harness, gguf_path, [e["prompt"].encode()], ("--bos", "--special"))
            assert got == [e["prompt_tokens"]], (f.name, e["prompt"])
            seen += 1
    assert seen >= 3


def test_packed_gguf_strings_same_result(harness, gguf_path):
    sample = CASES[:150]
    assert (encode(harness, gguf_path, sample, ("--bos", "--packed"))
            == encode(harness, gguf_path, sample))


def test_special_tokens(harness, gguf_path, node_modules):
    chat = "<|system|>\nYou are Fluid.</s>\n<|user|>\nHi!</s>\n<|assistant|>\n"
    got = encode(harness, gguf_path, [chat.encode()], ("--bos", "--special"))[0]
    # llama.cpp: split at "</s>"; each text fragment gets the space prefix
    # because the fragment before it is the start or a special token
    parts = chat.split("</s>")
    frags = js_encode(node_modules, [[p, False, True] for p in parts])
    want = [BOS] + frags[0] + [EOS] + frags[1] + [EOS] + frags[2]
    assert got == want
    # without TOK_ENC_SPECIAL "</s>" is text, as in the JS package
    got = encode(harness, gguf_path, [chat.encode()], ("--bos",))[0]
    assert got == js_encode(node_modules, [chat])[0]
    assert 2 not in got
    cases = {b"</s>": [BOS, EOS], b"<s>": [BOS, BOS], b"<unk>": [BOS, 0],
             b"a</s>": [BOS, 263, EOS], b"</s></s>": [BOS, EOS, EOS],
             b"<s>Hello</s>": [BOS, BOS, 15043, EOS]}
    got = encode(harness, gguf_path, list(cases), ("--bos", "--special"))
    assert got == list(cases.values())


def test_capacity_error(harness, gguf_path):
    text = b"Hello world!"  # 4 tokens with BOS
    out = run(harness, gguf_path, ["--bos", "--cap", "3", "encode"], [escape(text)])
    assert out == ["ERR -4 4"]  # TOK_ERR_NOSPACE, and the count it needs
    out = run(harness, gguf_path, ["--bos", "--cap", "4", "encode"], [escape(text)])
    assert out == ["1 15043 3186 29991"]
    out = run(harness, gguf_path, ["--bos", "--cap", "0", "encode"], [""])
    assert out == ["ERR -4 1"]
    long = LONG[0]
    n = len(encode(harness, gguf_path, [long])[0])
    out = run(harness, gguf_path, ["--bos", "--cap", str(n - 1), "encode"], [escape(long)])
    assert out == [f"ERR -4 {n}"]


def test_scratch_too_small(harness, gguf_path):
    out = run(harness, gguf_path, ["--scratch", "1000", "encode"], [escape(b"x" * 500)])
    assert out == ["ERR -2 0"]  # TOK_ERR_NOMEM


def test_init_errors(harness, gguf_path):
    def init_err(*args):
        p = subprocess.run([str(harness), str(gguf_path), *args, "info"],
                           capture_output=True, text=True)
        assert p.returncode == 2, p.stdout + p.stderr
        return p.stdout.strip()

    msg = init_err("--break-byte", "13")
    assert msg.startswith("INIT_ERR -3 ") and "byte token id 13" in msg and "<0xHH>" in msg
    assert "byte token id 40" in init_err("--packed", "--break-byte", "40")
    assert "no byte token <0x0A>" in init_err("--drop-byte", "13")
    assert "byte 0x41 has two byte tokens, ids 68 and 100" in init_err("--dup-byte", "100")
    msg = init_err("--arena", "100000")
    assert msg.startswith("INIT_ERR -2 ") and "need" in msg
    info = dict(l.split("=") for l in run(harness, gguf_path, ["info"], []))
    assert info["n_vocab"] == "32000" and info["n_special"] == "3"
    assert int(info["arena_used"]) <= int(info["init_bytes"]) <= 1100000


# ------------------------------------------------------------- decoding


def decode(harness, gguf_path, id_lists, args=()):
    out = run(harness, gguf_path, [*args, "decode"], [" ".join(map(str, l)) for l in id_lists])
    res = []
    for l in out:
        if l.startswith("ERR") or ";ERR" in l:
            res.append(l)
            continue
        chunks, flush = l.split(";")
        res.append(([bytes.fromhex(c) for c in chunks.split(",")] if chunks else [],
                    bytes.fromhex(flush)))
    return res


def test_roundtrip(harness, gguf_path):
    """decode(encode(s)) == s with BOS and the leading space dropped, for all
    valid UTF-8 except text holding U+2581 itself: that encodes like a space
    and so decodes as one (the same in llama.cpp)."""
    cases = [c for c in VALID if SPACE not in c]
    assert len(cases) >= 300
    out = run(harness, gguf_path, ["roundtrip"], [escape(c) for c in cases])
    bad = [(c, bytes.fromhex(h)) for c, h in zip(cases, out) if bytes.fromhex(h) != c]
    assert not bad, bad[:3]
    out = run(harness, gguf_path, ["roundtrip"], [escape("a\u2581b".encode())])
    assert bytes.fromhex(out[0]) == b"a b"


def test_roundtrip_matches_js_decode(harness, gguf_path, node_modules):
    sample = [c for c in VALID if c][:100]
    ids = encode(harness, gguf_path, sample)
    p = subprocess.run(["node", str(HERE / "tok_js.mjs"), str(node_modules), "decode"],
                       input=json.dumps(ids), capture_output=True, text=True, check=True)
    theirs = json.loads(p.stdout)
    ours = [b"".join(c) + f for c, f in decode(harness, gguf_path, ids, ("--strip",))]
    assert [o.decode() for o in ours] == theirs


def byte_id(b):
    return 3 + b  # <0xHH> ids in the Llama vocabulary


def test_decode_reassembles_split_characters(harness, gguf_path):
    ja = "日".encode()  # e6 97 a5
    emoji = "😀".encode()  # f0 9f 98 80
    res = decode(harness, gguf_path, [[byte_id(b) for b in ja],
                                      [byte_id(b) for b in emoji] + [15043],
                                      [1, 29871] + [byte_id(b) for b in emoji]])
    assert res[0] == ([b"", b"", ja], b"")
    assert res[1] == ([b"", b"", b"", emoji, b" Hello"], b"")
    assert res[2] == ([b"", b" ", b"", b"", b"", emoji], b"")


def test_decode_invalid_sequences(harness, gguf_path):
    fffd = "\ufffd".encode()
    res = decode(harness, gguf_path, [
        [byte_id(0xE6), byte_id(0x97), 15043],       # cut short by a piece
        [byte_id(0xFF)],                             # never valid
        [byte_id(0x80), byte_id(0x41)],              # stray continuation
        [byte_id(0xE6), byte_id(0x97)],              # cut short by the end
        [byte_id(0xED), byte_id(0xA0), byte_id(0x80)],  # surrogate
    ])
    assert res[0] == ([b"", b"", fffd + b" Hello"], b"")
    assert res[1] == ([fffd], b"")
    assert res[2] == ([fffd, b"A"], b"")
    assert res[3] == ([b"", b""], fffd)
    assert res[4] == ([b"", fffd + fffd, fffd], b"")  # ED is a valid lead byte


def test_decode_random_bytes_like_python(harness, gguf_path, vocab):
    """Byte tokens mixed with pieces and control tokens decode exactly like
    Python's bytes.decode('utf-8', 'replace') (maximal-subpart rule)."""
    rnd = random.Random(7)
    pool = [0x41, 0x20, 0x80, 0xBF, 0xC2, 0xC3, 0xA9, 0xE0, 0xA0, 0xED, 0x9F, 0xE6,
            0x97, 0xA5, 0xF0, 0x90, 0x9F, 0x98, 0xF4, 0x8F, 0xF5, 0xFF, 0xC0]
    lists, want = [], []
    for _ in range(300):
        ids, raw = [], b""
        for _ in range(rnd.randint(1, 12)):
            r = rnd.random()
            if r < 0.75:
                b = rnd.choice(pool)
                ids.append(byte_id(b))
                raw += bytes([b])
            elif r < 0.9:
                t = rnd.choice([15043, 3186, 29871, 259, 30325])
                ids.append(t)
                raw += vocab["pieces"][t].replace(SPACE, b" ")
            else:
                ids.append(rnd.choice([BOS, EOS]))
        lists.append(ids)
        want.append(raw.decode("utf-8", "replace").encode())
    for (chunks, flush), w, ids in zip(decode(harness, gguf_path, lists), want, lists):
        assert b"".join(chunks) + flush == w, ids


def test_decode_token_kinds(harness, gguf_path):
    res = decode(harness, gguf_path, [[BOS, 15043, EOS], [0], [BOS, 15043, EOS]])
    assert res[0] == ([b"", b" Hello", b""], b"")
    assert res[1] == (["\u2585".encode()], b"")  # <unk> prints U+2585, as llama.cpp
    res = decode(harness, gguf_path, [[BOS, 15043, EOS]], ("--dec-special",))
    assert res[0] == ([b"<s>", b" Hello", b"</s>"], b"")
    res = decode(harness, gguf_path, [[BOS, 15043, 3186], [BOS, 259, 15043]], ("--strip",))
    assert res[0] == ([b"", b"Hello", b" world"], b"")
    assert res[1] == ([b"", b" ", b" Hello"], b"")  # "▁▁" loses one space only


def test_decode_errors(harness, gguf_path):
    assert decode(harness, gguf_path, [[32000]]) == ["ERR -5"]
    assert decode(harness, gguf_path, [[-1]]) == ["ERR -5"]
    assert decode(harness, gguf_path, [[15043]], ("--dec-cap", "5")) == ["ERR -4"]
    # a held-back byte needs room for U+FFFD at flush
    assert decode(harness, gguf_path, [[byte_id(0xE6)]], ("--dec-cap", "2")) == ["ERR -4"]


# ----------------------------------------------------------- performance


def test_encode_speed_4096_bytes(harness, gguf_path, capsys):
    mixed = LONG[1]
    assert len(mixed) == 4096
    results = {}
    for name, text in (("mixed", mixed), ("english", LONG[0][:4096]),
                       ("a*4096", b"a" * 4096), ("mixed*8", mixed * 8)):
        out = run(harness, gguf_path, ["--bos", "bench", "50"], [escape(text)])
        kv = dict(x.split("=") for x in out[0].split())
        assert kv["status"] == "0"
        results[name] = (int(kv["bytes"]), int(kv["tokens"]), float(kv["ns_per_encode"]))
    with capsys.disabled():
        for name, (b, t, ns) in results.items():
            print(f"\n  encode {name}: {b} bytes -> {t} tokens in {ns / 1e3:.0f} us")
    # generous bound for a noisy shared machine: 4096 bytes well under 50 ms
    assert results["mixed"][2] < 50e6
    # O(n log n): 8x the input must not cost anything like 64x
    assert results["mixed*8"][2] < 30 * results["mixed"][2]


# ------------------------------------------------------------ sanitizers


def test_under_address_and_ub_sanitizers(harness, gguf_path):
    """The same encodes and decodes with ASan+UBSan, on every case plus
    random bytes mixed with special-token texts (scratch sized exactly by
    tok_encode_scratch_bytes, so an overrun of its bound is caught)."""
    san = build("tok_harness_san", ["tests/host/tok_harness.c", "kernel/core/llm/tokenizer.c"],
                ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
    rnd = random.Random(5)
    bits = [b"</s>", b"<s>", b"<unk>", b" ", b"\xe6", b"\x97", b"\xa5", b"a", b"\xff",
            b"\xf0\x9f", b"\n", b"</", b"s>"]
    extra = [b"".join(rnd.choice(bits) for _ in range(rnd.randint(0, 40)))
             for _ in range(200)]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    lines = "\n".join(escape(c) for c in CASES + extra) + "\n"
    for args in (["--bos", "--special", "encode"], ["--no-prefix", "encode"], ["roundtrip"]):
        outs = [subprocess.run([str(exe), str(gguf_path), *args], input=lines,
                               capture_output=True, text=True, env=env)
                for exe in (san, harness)]
        assert outs[0].returncode == 0, outs[0].stderr[-3000:]
        assert outs[0].stdout == outs[1].stdout
    ids = [" ".join(str(rnd.randrange(32000) if rnd.random() < 0.3 else byte_id(rnd.randrange(256)))
                    for _ in range(rnd.randint(0, 30))) for _ in range(300)]
    p = subprocess.run([str(san), str(gguf_path), "--strip", "decode"], input="\n".join(ids) + "\n",
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
