"""Sampling over a vocabulary above 2^17 (issue 11 part 5).  Until a2ef680
the shell sampled into a static 2^17-entry candidate buffer, so a larger
vocabulary at any temperature > 0 wrote past it (rebuilt that way, the
hosted target dies of SIGSEGV at the first token of this test's model);
the session now sizes the buffer from n_vocab (llm/session.c).

The model: the tiny preset with the vocabulary padded to 150000 tokens
(tools/make_model.py --vocab-size), so token_embd and output are 150000
rows.  llama.cpp (tools/peer/logits.mjs) gives the first position's logits;
every token Fluid samples at the default settings (temperature 0.8, top-k
40, top-p 0.95), over many seeds, must be among llama.cpp's best, tokens
above 2^17 must come up, and the model must still answer as llama.cpp
does afterwards (nothing was overwritten)."""
import math
import re
import sys

from conftest import ROOT, build_image
from test_llamacpp_oracle import oracle, shell_escape  # noqa: F401

sys.path.insert(0, str(ROOT / "tools"))
N_VOCAB = 150000
PROMPT = "Hello"
SEEDS = range(1, 49)
MARGIN = 8   # llama.cpp ranks beyond 40 that logit rounding (|d| <= 0.05) may swap in


def piece_text(piece):
    """What the detokenizer prints for a piece (U+2581 is a space; bytes as themselves)."""
    m = re.fullmatch(r"<0x([0-9A-F]{2})>", piece)
    return chr(int(m.group(1), 16)) if m else piece.replace("\u2581", " ")


def test_sampling_over_150k_tokens(tmp_path, gen_model, vm_factory, oracle):  # noqa: F811
    from vocab import load_vocab
    model = gen_model("tiny", "Q8_0", 1, extra=["--vocab-size", str(N_VOCAB)])
    case = oracle(model, [PROMPT], 1, top=40 + MARGIN)[0]
    best = [t for t, _ in case["steps"][0]["top"]]
    pieces = load_vocab()["tokens"]
    text_of = lambda t: piece_text(pieces[t]) if t < len(pieces) else f"<extra_{t}>"
    by_text = {}
    for t in best:
        by_text.setdefault(text_of(t), set()).add(t)

    vm = vm_factory(build_image(tmp_path / "v.img", model))
    assert f"vocab {N_VOCAB}" in vm.cmd("model")
    assert "temp      0.800\ntop_k     40\ntop_p     0.950" in vm.cmd("set").replace("\r", "")   # the defaults
    sampled = []
    for seed in SEEDS:
        out = vm.cmd(f"gen -n 1 --seed {seed} {PROMPT}")
        assert "generated: 1 tokens" in out, out
        text = out.split("\n[prompt:")[0].replace("\r", "")
        assert text.startswith(PROMPT), out
        got = by_text.get(text[len(PROMPT):])
        assert got, f"seed {seed}: {text[len(PROMPT):]!r} is none of llama.cpp's best {40 + MARGIN} tokens"
        sampled += sorted(got)[:1]
    high = [t for t in sampled if t >= 1 << 17]
    assert high, f"no token above 2^17 in {len(sampled)} samples: {sampled}"
    assert len(set(sampled)) >= 10, sampled                # it samples, not argmax
    # The rest of the machine is intact: tokenizer and logits as llama.cpp's.
    assert vm.cmd("tokenize " + shell_escape(PROMPT)).strip() == str(case["prompt_tokens"])
    out = vm.cmd("eval --top 1 " + " ".join(map(str, case["prompt_tokens"])))
    top1 = re.findall(r'"top": \[\[(\d+), ([-0-9.]+)\]\]', out)[-1]
    assert int(top1[0]) == case["greedy"][0] and math.isclose(float(top1[1]), case["steps"][0]["top"][0][1],
                                                               abs_tol=0.05)
