"""`tokenize` at the kernel prompt against llama-tokenizer-js (an independent
encoder of the same Llama 2 vocabulary).  The host tests check ~400 strings
through the same C code; this checks the path a user takes: the line
editor, escapes, UTF-8 typed directly, and the vocabulary as the kernel
loaded it from the GGUF in its model region; and the GGUF's tokenizer keys
(add_bos_token, add_space_prefix) against llama.cpp's own tokenizer."""
import json
import shutil
import subprocess

import pytest

from conftest import ROOT, build_image
from llamacpp_tokens import shell_line, tok_oracle  # noqa: F401 (a fixture)

NODE_MODULES = ROOT / "tools" / "node_modules"
TOK_JS = ROOT / "tests" / "host" / "tok_js.mjs"

STRINGS = [
    "Hello world!", "hello", " leading space", "trailing space ", "  two  spaces  ",
    "a\nb", "tab\there", "line1\n\nline3", "Numbers 1234567890 and 3.14159",
    "Punctuation: ,.;:!?()[]{}<>-_=+*/\\|@#$%^&~`'\"", "CamelCaseWordsAndALLCAPS",
    "naïve café résumé", "Ελληνικά γράμματα", "Русский текст", "日本語のテキスト",
    "中文字符", "한국어", "emoji 😀🚀👍", "mixed: abc 日本 😀 déjà", "zero\u200bwidth",
    "combining e\u0301", "ﬁ ligature", "🦜🦜🦜", "\u3042\u3044\u3046", "x" * 300,
    "The quick brown fox jumps over the lazy dog. " * 20, "A", "?", "\u00a0nbsp",
    "tabs\t\t\tand\nnewlines\n", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "<0x41> literal", "Don't stop",
]


def escape(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


@pytest.fixture(scope="module")
def js_ids():
    if not (NODE_MODULES / "llama-tokenizer-js").is_dir() or not shutil.which("node"):
        pytest.skip("llama-tokenizer-js is not installed (make test runs tools/npm-deps.sh)")
    p = subprocess.run(["node", str(TOK_JS), str(NODE_MODULES), "encode"], input=json.dumps(STRINGS),
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def test_kernel_tokenize_matches_js(tmp_path, gen_model, vm_factory, js_ids):
    vm = vm_factory(build_image(tmp_path / "t.img", gen_model("tiny", "Q8_0")))
    for s, want in zip(STRINGS, js_ids):
        got = json.loads(vm.cmd("tokenize " + escape(s), timeout=120).strip())
        assert got == want, repr(s)


def test_prompt_longer_than_context(tmp_path, gen_model, vm_factory):
    vm = vm_factory(build_image(tmp_path / "c.img", gen_model("tiny", "Q8_0")))
    ctx = 128   # the tiny preset's context length
    out = vm.cmd("gen -n 4 " + "word " * (ctx + 10), timeout=300)
    assert "the prompt is too long" in out and f"the context holds {ctx}" in out
    out = vm.cmd("gen -n 200 --temp 0 " + "word " * (ctx - 10), timeout=600)
    assert "context full" in out
    assert "CPU:" in vm.cmd("info")


# GGUF tokenizer keys (issue 11 part 3): tokenizer.ggml.add_bos_token and
# tokenizer.ggml.add_space_prefix, each as llama.cpp reads it (absent:
# true), against llama.cpp's own tokenizer on models made with them set.
KEY_CASES = {
    "defaults": [],
    "no_bos": ["--set", "tokenizer.ggml.add_bos_token=false"],
    "no_space_prefix": ["--set", "tokenizer.ggml.add_space_prefix=false"],
    "neither": ["--set", "tokenizer.ggml.add_bos_token=false", "--set", "tokenizer.ggml.add_space_prefix=false"],
}
KEY_TEXTS = ["Hello world!", " leading space", "a</s>b", "</s>\n<|user|>\nHi", "<s>x", "line\nbreak", "日本語"]


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_gguf_tokenizer_keys_as_llamacpp(case, tmp_path, gen_model, vm_factory, tok_oracle):
    model = gen_model("tiny", "Q8_0", 1, extra=KEY_CASES[case])
    want = tok_oracle(model, texts=KEY_TEXTS)
    vm = vm_factory(build_image(tmp_path / "k.img", model))
    for w in want:
        got = json.loads(vm.cmd("tokenize " + shell_line(w["text"])).strip())
        assert got == w["tokens"], f"{case}: tokenize {w['text']!r}: llama.cpp {w['tokens']}"
    # gen feeds what tokenize shows: BOS or not, prefix or not.
    out = vm.cmd("gen -n 1 --temp 0 Hello world!")
    assert f"[prompt: {len(want[0]['tokens'])} tokens" in out, out
    bos = 1 in want[0]["tokens"][:1]
    assert bos == (case in ("defaults", "no_space_prefix"))   # the oracle itself reads the keys
