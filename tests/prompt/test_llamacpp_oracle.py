"""The kernel's logits against llama.cpp's, computed at test time, so every
clone has an independent oracle (test_llamacpp_agreement.py needs the
precomputed ../shared files, which a user's clone lacks).

llama.cpp runs through tools/peer/logits.mjs (node-llama-cpp 3.22.1's
prebuilt CPU binary, installed by tools/peer-deps.sh) on models written by
tools/make_model.py: mini and tiny in every file type of the hub's
TinyLlama GGUF sets (F16, Q8_0, Q6_K, Q5_K_M/S, Q5_1, Q5_0, Q4_K_M/S, Q4_1,
Q4_0, Q3_K_L/M/S, Q2_K), the default TinyLlama-shaped Q4_0 and the
TinyLlama-shaped files of the types added with Q2_K/Q3_K/Q4_1/Q5_0/Q5_1
kernels (full shapes; one prompt, few steps), and mini files of those
converted by llama.cpp's own llama_model_quantize (make_model.py --quantizer
llamacpp), so the blocks Fluid reads were written by llama.cpp too.  For each prompt:
llama.cpp's tokenization must equal the kernel's `tokenize`; then llama.cpp's
greedy tokens are teacher-forced through `eval --top 40`, and at every step
llama.cpp's top-8 logits must be within 0.05 of ours (0.15, rms 0.05 at
TinyLlama's shapes: see TOL) and top-1 must agree at all but one step per
model (two at TinyLlama's shapes, whose random weights make near-ties), as
in the agreement test; a step whose top-1 differs must be a near-tie:
llama.cpp ranks our pick within the logit tolerance of its own best.

llama.cpp's outputs are cached in build/oracle/, keyed by the model's sha256
and the request (prompts, steps, top, logits.mjs, peer version), so reruns
only pay for the kernel.  When node-llama-cpp cannot be installed or loaded,
the tests fail under CI=true and skip elsewhere (reason in the summary).
"""
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, build_image, report_figure, shared_models

PEER = ROOT / "tools" / "peer"
SCRIPT = PEER / "logits.mjs"
CACHE = BUILD / "oracle"
DEFAULT = ROOT / "models" / "tinyllama-shaped-Q4_0.gguf"
THREADS = 2          # the machines are shared 2-core VMs
TOP = 8

# Plain text, an English pangram, digits/punctuation/UTF-8 with byte
# fallback, and the Zephyr chat format (special tokens parsed).
PROMPTS = [
    "Once upon a time",
    "The quick brown fox jumps over the lazy dog.",
    "Fluid boots straight into inference: 1, 2, 3 \u2014 \u00bfqu\u00e9 tal? \u65e5\u672c\u8a9e",
    "<|system|>\nYou are terse.</s>\n<|user|>\nHi!</s>\n<|assistant|>\n",
]
TYPES = ["Q4_0", "Q8_0", "Q4_K_M", "Q5_K_M", "F16",
         # the rest of the hub's TinyLlama GGUF set (file types with llama.cpp's mixes)
         "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q5_K_S", "Q6_K", "Q4_1", "Q5_0", "Q5_1"]
# File types whose base type is new (Q2_K, Q3_K, Q4_1, Q5_0, Q5_1): also at
# TinyLlama's shapes, and as converted by llama.cpp's own llama_model_quantize.
NEW_BASE = ["Q2_K", "Q3_K_M", "Q4_1", "Q5_0", "Q5_1"]
# (preset, type, prompts, steps, quantizer): tiny has K-quant types too, though
# its 64-wide rows fall back to Q4_0/Q5_0/Q5_1/Q8_0 as llama.cpp's quantiser
# does (tools/make_model.py): the file is still one llama.cpp must read as the
# kernel does.  quantizer "llamacpp": the float weights converted by llama.cpp.
CASES = ([("mini", t, PROMPTS, 16, "fluid") for t in TYPES] + [("tiny", t, PROMPTS, 16, "fluid") for t in TYPES]
         + [("tinyllama", "Q4_0", PROMPTS[:1], 8, "fluid")]
         + [("mini", t, PROMPTS, 16, "llamacpp") for t in NEW_BASE]
         + [("tinyllama", t, PROMPTS[:1], 8, "fluid") for t in NEW_BASE])
# |logit difference| bounds on llama.cpp's top-8: (every value, rms over
# the model's values).  Small models: 0.05 as in the agreement test.  At
# TinyLlama's shapes (22 blocks, 2048 wide, N(0, 1) embeddings) one 8-bit
# activation rounding flipped by summation order travels much further: two
# llama.cpp configurations of the same build (flash attention on vs off)
# differ by up to 0.090 (rms 0.033) on this test's 8 steps, and so does the
# numpy reference tools/llama_ref.py (0.064, rms 0.030); Fluid measured 0.086
# (rms 0.034).  A real bug (RoPE, GQA, a scale) moves logits by ~1.
# The files of the newer types at TinyLlama's shapes come as close to that
# bound in llama.cpp itself: flash attention on vs off differ by 0.149 (rms
# 0.043, and one top-1 near-tie flips) on Q5_0, 0.130 (0.048) on Q3_K_M, 0.110
# on Q4_1, 0.085 on Q5_1.  With its F32 KV cache Fluid measured up to 0.161
# (Q3_K_M); with the F16 KV cache llama.cpp also uses, 0.096 (rms 0.047,
# Q3_K_M), 0.095 (Q2_K, two top-1 near-ties), 0.083 (Q4_1), 0.078 (Q5_1),
# 0.067 (Q5_0), so they share the 0.15 / 0.05 bound; a real bug moves
# logits by ~1, and the kernels themselves are checked bit for bit against
# llama.cpp's in tests/host/test_llamacpp_kernels.py, and to 0.006 on the
# mini models here.
TOL = {"mini": (0.05, 0.05), "tiny": (0.05, 0.05), "tinyllama": (0.15, 0.05)}
TOL_NEW_FULL = {}   # the newer types at TinyLlama's shapes: TOL["tinyllama"], see above


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def peer_problem():
    """None when logits.mjs can load llama.cpp here, else why not (a str)."""
    if shutil.which("node") is None:
        return "node is not installed (tools/install-deps.sh installs Node.js)"
    if not (PEER / "node_modules" / "node-llama-cpp").is_dir():
        return "node-llama-cpp is not installed (run tools/peer-deps.sh; `make test` does)"
    try:
        r = subprocess.run(["node", str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "node-llama-cpp did not load in 120 s"
    try:
        info = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"logits.mjs --check printed no JSON (status {r.returncode}): {r.stderr.strip()[-500:]}"
    if not info.get("ok"):
        return f"node-llama-cpp cannot run here: {info.get('error')}"
    return None


def sha256(path):
    """Hex sha256 of a file, remembered in build/oracle/sha256.json by (path,
    size, mtime): hashing the 0.64 GB TinyLlama-shaped file takes seconds."""
    st = os.stat(path)
    where = os.path.abspath(path)
    key = f"{where}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = CACHE / "sha256.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        memo = {k: v for k, v in memo.items() if not k.startswith(where + "|")}   # stale versions
        memo[key] = h.hexdigest()
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=0))
        os.replace(tmp, memo_file)
    return memo[key]


@pytest.fixture(scope="session")
def oracle():
    """llama_cpp(model, prompts, steps, top=8) -> the list logits.mjs prints
    ([{prompt, prompt_tokens, steps: [{top}], greedy}]), from build/oracle/
    when cached.  Fails the test if llama.cpp rejects the model: the peer
    works here (checked once), so that is a finding, not a missing tool."""
    why = peer_problem()
    if why:
        if in_ci():
            pytest.fail(f"llama.cpp oracle unavailable in CI: {why}")
        pytest.skip(f"llama.cpp oracle unavailable: {why}")
    CACHE.mkdir(parents=True, exist_ok=True)
    request_salt = hashlib.sha256(SCRIPT.read_bytes() + (PEER / "package-lock.json").read_bytes()).hexdigest()

    def llama_cpp(model, prompts, steps, top=TOP):
        req = json.dumps({"prompts": prompts, "steps": steps, "top": top, "salt": request_salt})
        out = CACHE / f"{sha256(model)[:32]}-{hashlib.sha256(req.encode()).hexdigest()[:16]}.json"
        if out.exists():
            return json.loads(out.read_text())
        cmd = ["node", str(SCRIPT), "--model", str(model), "--steps", str(steps), "--top", str(top),
               "--threads", str(THREADS)]
        r = subprocess.run(cmd, input=json.dumps(prompts), capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            pytest.fail(f"llama.cpp on {model.name}: {r.stdout.strip()[-1000:]} {r.stderr.strip()[-1000:]}")
        cases = json.loads(r.stdout)
        assert [c["prompt"] for c in cases] == prompts and all(len(c["greedy"]) == steps for c in cases)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(r.stdout)
        os.replace(tmp, out)
        return cases

    return llama_cpp


def shell_escape(text):
    """A prompt as one `fluid>` line: the shell reads \\\\, \\n and \\t."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def parse_eval(out):
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["pos"]: r["top"] for r in rows}


@pytest.mark.parametrize("preset,qtype,prompts,steps,quantizer", CASES,
                         ids=[f"{p}-{t}" + ("" if q == "fluid" else f"-{q}") for p, t, _, _, q in CASES])
def test_matches_llamacpp_oracle(preset, qtype, prompts, steps, quantizer, tmp_path, gen_model, oracle,
                                 vm_factory):
    if preset == "tinyllama" and qtype == "Q4_0" and DEFAULT.exists():
        model = DEFAULT                   # `make image` made it: same generator, seed 0
    else:
        model = gen_model(preset, qtype, seed=0 if preset == "tinyllama" else 1, quantizer=quantizer)
    cases = oracle(model, prompts, steps)
    big = preset == "tinyllama"
    vm = vm_factory(build_image(tmp_path / "o.img", model), **({"boot_timeout": 600} if big else {}))
    tol_max, tol_rms = TOL_NEW_FULL.get((preset, qtype), TOL[preset])
    agree = total = ties = 0
    worst = sq = 0.0
    for case in cases:
        prompt = case["prompt"]
        got = vm.cmd("tokenize " + shell_escape(prompt))
        assert got.strip() == str(case["prompt_tokens"]), f"tokenize {prompt!r}: llama.cpp {case['prompt_tokens']}"
        feed = case["prompt_tokens"] + case["greedy"][:-1]
        out = parse_eval(vm.cmd("eval --top 40 " + " ".join(map(str, feed)), timeout=3600 if big else 600))
        start = len(case["prompt_tokens"]) - 1
        for k, step in enumerate(case["steps"]):
            ours = dict((t, l) for t, l in out[start + k])
            total += 1
            mine = out[start + k][0][0]
            agree += mine == case["greedy"][k]
            # A different top-1 is a near-tie when llama.cpp itself ranks
            # Fluid's pick within the logit tolerance of its own best.
            theirs = dict(step["top"])
            if mine != case["greedy"][k]:
                assert mine in theirs and max(theirs.values()) - theirs[mine] <= tol_max, (
                    f"{model.name} {prompt!r} step {k}: our top-1 {mine} is not a near-tie in llama.cpp's "
                    f"top 8 {step['top']}")
                ties += 1
            for tok, logit in step["top"]:
                where = f"{model.name} {prompt!r} step {k}: llama.cpp's token {tok}"
                assert tok in ours, f"{where} not in our top 40"
                d = abs(ours[tok] - logit)
                worst = max(worst, d)
                sq += d * d
                assert d <= tol_max, f"{where}: logit {ours[tok]} vs llama.cpp {logit}"
    rms = (sq / (total * TOP)) ** 0.5
    line = (f"llama.cpp oracle, {preset} {qtype}{'' if quantizer == 'fluid' else ' (' + quantizer + ')'}: "
            f"top-1 {agree}/{total} ({ties} near-ties), "
            f"|dlogit| max {worst:.4f} rms {rms:.4f}")
    print(line)
    report_figure(line)
    assert total == len(prompts) * steps and agree >= total - (2 if big else 1)
    assert rms <= tol_rms


SHARED = shared_models()


@pytest.mark.skipif(not SHARED, reason="../shared/testdata/llamacpp is absent")
@pytest.mark.parametrize("model", SHARED, ids=[m.stem for m in SHARED])
def test_oracle_reproduces_shared_data(model, oracle):
    """The oracle itself against the precomputed llama.cpp outputs (build
    c392e50, the same family): same tokens and greedy path, logits within
    0.01.  Measured here (AVX2, no AVX-512): <= 1e-4, except 0.003 on
    Q4_K_M's 13-token prompt (presumably another Q4_K kernel or summation
    order in this build or CPU variant).  Asks for 16 logits so that a
    near-tie at rank 8 is still found."""
    want = json.loads(model.with_suffix(".json").read_text())
    got = oracle(model, [c["prompt"] for c in want], len(want[0]["steps"]), top=16)
    worst = 0.0
    for w, g in zip(want, got):
        assert g["prompt_tokens"] == w["prompt_tokens"], w["prompt"]
        assert g["greedy"] == w["greedy"], w["prompt"]
        for k, (ws, gs) in enumerate(zip(w["steps"], g["steps"])):
            ours = dict((t, l) for t, l in gs["top"])
            for tok, logit in ws["top"]:
                assert tok in ours, f"{w['prompt']!r} step {k}: token {tok} not in the oracle's top 16"
                worst = max(worst, abs(ours[tok] - logit))
    report_figure(f"llama.cpp oracle vs shared {model.name}: |dlogit| max {worst:.2g}")
    assert worst <= 0.01
