"""The kernel's logits against llama.cpp's own, on llama.cpp-made models.

For every ../shared/testdata/llamacpp/mini-*.gguf: boot it, check that
`tokenize` matches llama.cpp's prompt_tokens, then teacher-force llama.cpp's
greedy tokens through `eval` and require top-1 agreement on at least 47 of
48 positions and |logit difference| <= 0.05 on llama.cpp's top-8 at every
position.  Skips when ../shared is absent (a user's clone).
"""
import json

import pytest

from conftest import build_image, shared_models

MODELS = shared_models()
pytestmark = pytest.mark.skipif(not MODELS, reason="../shared/testdata/llamacpp is absent")


def parse_eval(out):
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return {r["pos"]: r["top"] for r in rows}


@pytest.mark.parametrize("model", MODELS, ids=[m.stem for m in MODELS])
def test_matches_llamacpp(model, tmp_path, vm_factory):
    cases = json.loads(model.with_suffix(".json").read_text())
    vm = vm_factory(build_image(tmp_path / "m.img", model))
    agree = total = 0
    worst = 0.0
    for case in cases:
        prompt = case["prompt"]
        got = vm.cmd("tokenize " + prompt.replace("\\", "\\\\").replace("\n", "\\n"))
        assert got.strip() == str(case["prompt_tokens"]), f"tokenize {prompt!r}"
        feed = case["prompt_tokens"] + case["greedy"][:-1]
        out = parse_eval(vm.cmd(f"eval --top 40 " + " ".join(map(str, feed)), timeout=600))
        start = len(case["prompt_tokens"]) - 1
        for k, step in enumerate(case["steps"]):
            ours = dict((t, l) for t, l in out[start + k])   # our 40 best
            best = out[start + k][0][0]
            total += 1
            agree += best == case["greedy"][k]
            for tok, logit in step["top"]:
                assert tok in ours, f"{model.name} {prompt!r} step {k}: llama.cpp's token {tok} not in our top 40"
                d = abs(ours[tok] - logit)
                worst = max(worst, d)
                assert d <= 0.05, f"{model.name} {prompt!r} step {k}: token {tok} logit {ours[tok]} vs llama.cpp {logit}"
    print(f"{model.name}: top-1 {agree}/{total}, worst |dlogit| {worst:.4f}")
    assert total == 48 and agree >= 47
