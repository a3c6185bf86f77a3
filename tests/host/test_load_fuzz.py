"""The load-path fuzzer (tests/host/load_fuzz.c, driven by fuzzload.py):
image header -> GGUF parse -> Llama validation -> tokenizer -> engine ->
one forward pass -> one sampled token, under ASan and UBSan.

    /usr/bin/python3 -m pytest -q tests/host/test_load_fuzz.py
    FUZZ_RUNS=200000 /usr/bin/python3 -m pytest -q tests/host/test_load_fuzz.py -k bounded
    make fuzz                              # the long campaign (fuzzload.py campaign)

Every input the fuzzer ever crashed on is kept, minimized, in
tests/host/fuzz/regress/ and must now run clean (each failed before its
fix); the seeds must really reach the token (else the fuzzer would only
ever see early errors); a bounded run of FUZZ_RUNS executions over the
seeds and the regression inputs must find nothing.
"""
import os
import subprocess

import pytest

import fuzzload

FUZZ_RUNS = int(os.environ.get("FUZZ_RUNS", "20000"))


@pytest.fixture(scope="module")
def exe():
    return fuzzload.build_fuzzer()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    return d, fuzzload.write_seeds(d)


REGRESS = fuzzload.regression_inputs()


@pytest.mark.parametrize("path", REGRESS, ids=[p.name for p in REGRESS])
@pytest.mark.parametrize("isa", ["v3", "base"])
def test_regression_input_runs_clean(path, isa):
    if isa == "v3" and not fuzzload.cpu_has_v3():
        pytest.skip("this CPU cannot run x86-64-v3 code")
    rc, log = fuzzload.run_inputs(fuzzload.build_fuzzer(isa), [path])
    bad = [b for b in fuzzload.BAD if b in log]
    assert rc == 0 and not bad, "\n".join(log.splitlines()[-30:])


def test_regression_inputs_exist():
    """One per fix (see each name): the fuzzer's finds are kept."""
    assert {p.name for p in REGRESS} >= {"quantize-q8_0-nan.gguf", "quantize-q8_0-huge.img",
                                         "f16-misaligned.gguf", "image-model-name-escape.img"}


def _boot_log(exe, path):
    p = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, FUZZ_VERBOSE="1"))
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stderr


def test_valid_seeds_reach_the_token(exe, seeds):
    """Every model seed (and the whole images) loads: kernel's boot lines
    for its shapes appear, so the fuzzer starts from inputs that go all the
    way to a sampled token."""
    d, names = seeds
    valid = [n for n in names if n.startswith(("micro-", "image-micro-")) or n.endswith("-cut.gguf")]
    assert len(valid) >= 10, valid
    for name in valid:
        log = _boot_log(exe, d / name)
        assert "model: loaded" in log and "blocks, embd" in log, (name, log[-500:])


def test_damaged_seeds_fail_cleanly(exe, seeds):
    d, names = seeds
    log = _boot_log(exe, d / "image-truncated-model.img")
    assert "the disk image is truncated: the model region ends at sector" in log
    log = _boot_log(exe, d / "bad-wrong_shape.gguf")
    assert "llama: tensor 'blk.0.attn_k.weight': shape" in log


def test_bounded_fuzz(exe, seeds, tmp_path):
    """FUZZ_RUNS executions (default 20000) from the seeds and regression
    inputs: no crash, leak, sanitizer report or broken harness check."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    dirs = [corpus, seeds[0]] + ([fuzzload.REGRESS] if REGRESS else [])
    res = fuzzload.fuzz(exe, dirs, tmp_path / "artifacts", runs=FUZZ_RUNS, seed=1, timeout=3600)
    tail = "\n".join(res["log"].splitlines()[-40:])
    assert res["returncode"] == 0 and not fuzzload.findings(res), tail
    assert "Done " in res["log"] and res["executions"] >= FUZZ_RUNS, tail
    print("\nload fuzz: %d executions in %.0f s (%.0f exec/s)" % (
        res["executions"], res["seconds"], res["executions"] / max(res["seconds"], 1e-9)))
