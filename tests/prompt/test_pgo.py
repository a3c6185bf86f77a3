"""The PGO loop (issue 4) end to end on a small model, under QEMU.

profile -> analyze -> apply -> reboot: the cached variants are active in
`modules`, and the greedy tokens are IDENTICAL to the baseline run - not
merely within llama.cpp's tolerance: the test model is Q4_0 (with a Q8_0
output matrix), whose kernels compute the same float operations in the same
order on every ISA (modules/mm_common.h), and every module is compiled with
-ffp-contract=off, so no FMA contraction changes a rounding.  The test also
compares `eval` logits of the whole sequence, printed to 6 decimals, for
equality.  The second profile's cycles per decoded token are reported (see
the end of the pytest output), not asserted: under TCG, emulated AVX2 can be
slower than SSE2.

Then persistence (two more reboots), a cache for a tag this CPU cannot run,
a module requiring AVX-512 registered under this CPU's tag, a flipped bit in
a cached module, zeroed / garbage / truncated cache regions, an apply killed
half way (a half-written slot), and shape-specialised modules on a model
with other shapes.  Every damaged case must boot, say why in one line, run
the baselines for the affected ops and print the same tokens.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, build_image

sys.path.insert(0, str(ROOT / "tools"))
import pgo  # noqa: E402
import pgo_image  # noqa: E402
import fluidvm  # noqa: E402

try:
    from conftest import report_figure
except ImportError:          # older conftest: print instead
    def report_figure(line):
        print(line)

PROMPT = "Once upon a time, in a small village by the sea,"
N = 16
MEM = "1G"
TARGET = os.environ.get("FLUID_TARGET", "hosted")   # the loop as `make pgo-* HOSTED=1` runs it


def make_model(out, preset):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_model.py"), "--preset", preset, "--type", "Q4_0",
                    "--seed", "7", "-o", str(out)], check=True, capture_output=True)
    return out


def parse_variants(modules_out):
    """{op: {module, variant, opt, march, hash}} from the `modules` table."""
    out = {}
    for line in modules_out.splitlines():
        f = line.split()
        if len(f) == 8 and f[2] in ("baseline", "image", "cache", "none"):
            out[f[0]] = dict(module=f[1], variant=f[2], opt=f[3], march=f[4], hash=f[5])
    return out


def first_variant(tag):
    """What runs an op with no cache: the image's per-ISA build on any CPU
    above x86-64 (v1), else the scalar baseline."""
    return "baseline" if tag == "x86-64" else "image"


class Run:
    """One boot: the boot log, `modules`, greedy text and eval of it."""

    def __init__(self, img, evals=True, cpu=None):
        """cpu: run the hosted target as a CPU of this tag (--cpu)."""
        vm = fluidvm.boot(img, target=TARGET, mem=MEM, smp=2, **({"extra": ["--cpu", cpu]} if cpu else {}))
        try:
            self.log = vm.text()
            self.modules_out = vm.cmd("modules")
            self.cache_out = vm.cmd("cache")
            out = vm.cmd(f"gen -n {N} --temp 0 --seed 1 {PROMPT}", timeout=600)
            m = re.search(r"\n?\[prompt: \d+ tokens", out)
            assert m, out
            self.text = out[:m.start()]
            self.evals = None
            if evals:
                ids = vm.cmd("tokenize " + self.text.replace("\\", "\\\\").replace("\n", "\\n")).strip()
                ids = json.loads(ids)
                self.evals = vm.cmd("eval --top 3 " + " ".join(map(str, ids)), timeout=600)
            vm.send("poweroff\r")
            vm.wait_exit(30)
        finally:
            vm.close()
        self.variants = parse_variants(self.modules_out)
        self.tag = re.search(r"tag (\S+), \d+ cores", self.log).group(1)

    def cached_modules(self):
        return {v["module"] for v in self.variants.values() if v["variant"] == "cache"}


def cache_region(img):
    r = pgo.read_image_header(img)["regions"][pgo.REGION_CACHE]
    return r["lba"] * 512, r["sectors"] * 512


def outside_cache(img):
    start, size = cache_region(img)
    data = Path(img).read_bytes()
    return data[:start] + data[start + size:]


def pgo_run(*args):
    return pgo.main([str(a) for a in args])


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    d = tmp_path_factory.mktemp("pgo")
    model = make_model(d / "tiny-q4_0.gguf", "tiny")
    base = build_image(d / "base.img", model)
    baseline = Run(base)
    assert set(v["variant"] for v in baseline.variants.values()) == {first_variant(baseline.tag)}
    assert "cache: no valid slot; the image's modules run" in baseline.log
    img = d / "pgo.img"
    shutil.copy(base, img)
    profiles, cache = d / "profiles", d / "cache"
    prof1 = pgo_run("profile", "--image", img, "--profiles-dir", profiles, "--prompt", PROMPT, "-n", N,
                    "--mem", MEM, "--smp", 2, "--quiet", "--target", TARGET)
    plan_path = pgo_run("analyze", "--profiles-dir", profiles)
    pgo_run("apply", "--profiles-dir", profiles, "--image", img, "--cache-dir", cache)
    return dict(dir=d, model=model, base=base, img=img, baseline=baseline, profiles=profiles, cache=cache,
                prof1=Path(prof1), plan_path=Path(plan_path), plan=json.loads(Path(plan_path).read_text()))


def planned(loop):
    return {m["module"]: m for m in loop["plan"]["modules"] if m["opt_level"] > 0}


def copy_img(loop, name, src="img"):
    dst = loop["dir"] / name
    shutil.copy(loop[src], dst)
    return dst


def assert_same_tokens(run, loop, ref=None):
    ref = ref or loop["baseline"]
    assert run.text == ref.text
    if run.evals is not None:
        assert run.evals == ref.evals


NO_AVX512 = "x86-64-v3"


def run_without_avx512(loop, img):
    """Boot img on a CPU without AVX-512, and the image's own modules on
    that CPU to compare with: this CPU, or one with AVX-512 run as
    x86-64-v3 (hosted --cpu); in QEMU on such a CPU the test skips."""
    if not _has_avx512(loop["baseline"]):
        return Run(img), loop["baseline"]
    if TARGET != "hosted":
        pytest.skip("this guest CPU has AVX-512")
    if "baseline_v3" not in loop:
        loop["baseline_v3"] = Run(loop["base"], cpu=NO_AVX512)
    return Run(img, cpu=NO_AVX512), loop["baseline_v3"]


def test_profile_has_the_documented_schema(loop):
    p = json.loads(loop["prof1"].read_text())
    assert p["schema"] == "fluid-profile" and p["schema_version"] == 1
    for key in ("kernel", "cpu", "pmu", "model", "workload", "modules", "cache", "total_cycles", "capture"):
        assert key in p, key
    assert p["kernel"]["build_id"].startswith("kernel-")
    cpu = p["cpu"]
    assert {"vendor", "family", "model", "stepping", "features", "x86_64_level", "tag", "tsc_hz"} <= set(cpu)
    assert "SSE2" in cpu["features"] and pgo.tag_from_features(cpu["features"]) == cpu["tag"]
    assert p["pmu"] is None or "events" in p["pmu"]          # these VMs: null
    m = p["model"]
    assert m["shapes"]["n_embd"] == 64 and m["types"]["Q4_0"] > 0 and re.fullmatch(r".+-[0-9a-f]{8}", m["id"])
    w = p["workload"]
    assert w["generated_tokens"] == N and w["prompt_tokens"] > 1 and w["decode_tok_s"] > 0
    ops = {o["op"]: o for o in p["modules"]}
    assert len(ops) == pgo_image.L.OP_COUNT and ops["mm_q4_0"]["calls"] > 0 and ops["mm_q4_0"]["variant"] == first_variant(cpu["tag"])
    assert ops["mm_q4_0"]["per_cpu"] and ops["mm_q4_0"]["pmu"] is None
    assert p["capture"]["output"].startswith(PROMPT)
    assert (loop["prof1"].parent / "latest").resolve() == loop["prof1"].resolve()
    assert loop["prof1"].parent.name == cpu["tag"] and loop["prof1"].parent.parent.name == m["id"]


def test_loop_activates_cached_variants_with_identical_tokens(loop):
    plan = loop["plan"]
    assert planned(loop), "the plan rebuilds at least one module"
    assert (loop["cache"] / plan["tag"] / "registry.json").exists()
    # apply touched nothing outside the cache region.
    assert outside_cache(loop["img"]) == outside_cache(loop["base"])
    run = Run(loop["img"])
    assert plan["tag"] == run.tag, "the plan's tag is the profiled (= this) CPU's"
    assert f"cache: tag {run.tag} found, generation 1" in run.log
    assert re.search(r"cache: \d+ modules loaded, 0 rejected", run.log)
    for op, v in run.variants.items():
        want = planned(loop).get(v["module"])
        if want:
            assert (v["variant"], v["opt"], v["march"]) == ("cache", want["decision"], plan["tag"]), op
        else:
            assert v["variant"] == first_variant(run.tag), op
    for m in planned(loop).values():
        if m.get("shapes"):
            assert f"modules: {m['module']} (cache) specialised for" in run.log
            assert "matches the model" in run.log
    assert_same_tokens(run, loop)

    # Applying the same plan again changes nothing (idempotent).
    before = Path(loop["img"]).read_bytes()
    pgo_run("apply", "--plan", loop["plan_path"], "--image", loop["img"], "--cache-dir", loop["cache"])
    assert Path(loop["img"]).read_bytes() == before

    # Second profile, then the report comparing the two.
    prof2 = Path(pgo_run("profile", "--image", loop["img"], "--profiles-dir", loop["profiles"], "--prompt", PROMPT,
                         "-n", N, "--mem", MEM, "--smp", 2, "--quiet", "--target", TARGET))
    p1, p2 = json.loads(loop["prof1"].read_text()), json.loads(prof2.read_text())
    assert p2["capture"]["output"] == p1["capture"]["output"]
    assert p2["cache"]["generation"] == 1
    assert {o["module"] for o in p2["modules"] if o["variant"] == "cache"} == set(planned(loop))
    report = Path(pgo_run("report", "--profiles-dir", loop["profiles"]))
    page = report.read_text()
    assert "<svg" in page and "decode tok/s" in page and "identical" in page
    # Feedback: analyze the second profile; variants measured slower than
    # the baseline (likely under TCG, where AVX2 is emulated) go back to it.
    plan2 = json.loads(Path(pgo_run("analyze", "--profiles-dir", loop["profiles"])).read_text())
    reverted = [m["module"] for m in plan2["modules"] if "kept at baseline" in m["reason"]]
    report_figure(f"pgo feedback: second analyze keeps {len(reverted)} module(s) at baseline as measured slower "
                  f"than it: {' '.join(reverted) or '-'}")
    c1, c2 = pgo.per_token(p1), pgo.per_token(p2)
    report_figure(f"pgo loop (tiny Q4_0, {p1['cpu']['tag']}, {p1['capture']['accel']}): decode cycles/token "
                  f"{c1['decode_cycles_per_token']:.0f} -> {c2['decode_cycles_per_token']:.0f}, module cycles/token "
                  f"{c1['module_cycles_per_token']:.0f} -> {c2['module_cycles_per_token']:.0f}, decode tok/s "
                  f"{p1['workload']['decode_tok_s']:.2f} -> {p2['workload']['decode_tok_s']:.2f}")


def test_cache_persists_over_reboots(loop):
    runs = [Run(loop["img"], evals=False) for _ in range(2)]
    for r in runs:
        assert f"cache: tag {r.tag} found, generation 1" in r.log
        assert "generation 1" in r.cache_out and "[active]" in r.cache_out
        assert r.cached_modules() == set(planned(loop))
        assert r.text == loop["baseline"].text
    assert runs[0].variants == runs[1].variants


def _has_avx512(run):
    return run.tag.startswith("x86-64-v4")


def test_cache_for_a_tag_this_cpu_lacks_is_rejected(loop):
    img = copy_img(loop, "v4.img", "base")
    pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / "cache-v4",
            "--tag", "x86-64-v4")
    run, ref = run_without_avx512(loop, img)
    assert re.search(r"modules: cache tag x86-64-v4 rejected: requires AVX512F .*which this CPU", run.log)
    assert "cache: no cached modules usable by this CPU" in run.log
    assert not run.cached_modules()
    assert_same_tokens(run, loop, ref)


def test_module_requiring_missing_features_is_rejected(loop):
    """A module built for x86-64-v4 but registered under this CPU's tag: the
    per-module CPUID check refuses it before its first call."""
    img = copy_img(loop, "v4-as-mine.img", "base")
    tag = NO_AVX512 if _has_avx512(loop["baseline"]) else loop["baseline"].tag
    pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / "cache-v4b",
            "--tag", "x86-64-v4", "--register-as", tag)
    run, ref = run_without_avx512(loop, img)
    assert run.tag == tag
    assert f"cache: tag {tag} found" in run.log
    for name in planned(loop):
        assert re.search(rf"modules: cache {re.escape(tag)} gen 1: {name} rejected: requires AVX512F .*"
                         r"which this CPU lacks", run.log), name
    assert re.search(rf"cache: 0 modules loaded, {len(planned(loop))} rejected", run.log)
    assert not run.cached_modules()
    assert_same_tokens(run, loop, ref)


def test_flipped_bit_in_a_cached_module(loop):
    img = copy_img(loop, "flip.img")
    start, _ = cache_region(img)
    data = bytearray(Path(img).read_bytes())
    state, _, info = pgo.parse_slot(bytes(data[start:start + pgo.CACHE_SLOT_BYTES]))
    assert state == "valid"
    victim = info["entries"][0]
    pos = start + victim["offset"] + pgo.MOD_HEADER_BYTES + 17   # inside its body
    data[pos] ^= 0x08
    Path(img).write_bytes(bytes(data))
    run = Run(img)
    assert re.search(rf"{victim['name']} rejected: SHA-256 mismatch", run.log)
    assert victim["name"] not in run.cached_modules()
    assert run.cached_modules() == set(planned(loop)) - {victim["name"]}
    assert_same_tokens(run, loop)


@pytest.mark.parametrize("fill", ["zeros", "garbage"])
def test_zeroed_or_garbage_cache_region(loop, fill):
    img = copy_img(loop, f"{fill}.img")
    start, size = cache_region(img)
    with open(img, "r+b") as f:
        f.seek(start)
        f.write(bytes(size) if fill == "zeros" else os.urandom(size))
    run = Run(img, evals=False)
    want = "empty: never written" if fill == "zeros" else "not a cache slot"
    assert f"cache: slot 0: {want}" in run.log and f"cache: slot 1: {want}" in run.log
    assert "cache: no valid slot; the image's modules run" in run.log
    assert not run.cached_modules()
    assert run.text == loop["baseline"].text


def test_image_truncated_inside_the_cache_region(loop):
    img = copy_img(loop, "trunc.img")
    start, _ = cache_region(img)
    os.truncate(img, start + 4096)       # slot 0's header survives, its modules do not
    vm = fluidvm.boot(img, target=TARGET, mem=MEM, smp=2)
    try:
        log = vm.text()
        out = vm.cmd("modules")
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    assert re.search(r"cache: slot 0: incomplete \(interrupted write\): generation 1 ends past the end of the disk",
                     log)
    assert "cache: slot 1: unreadable: past the end of the disk" in log
    assert "cache: no valid slot; the image's modules run" in log
    assert {v["variant"] for v in parse_variants(out).values()} == {first_variant(loop["baseline"].tag)}
    assert "model:" in log and "truncated" in log            # the model region is gone too


def test_interrupted_apply_keeps_the_previous_generation(loop):
    img = copy_img(loop, "crash.img")
    tag = loop["baseline"].tag
    # Generation 2 must hold other modules than generation 1: the same plan
    # at other -O levels, without shape constants.
    plan2 = json.loads(loop["plan_path"].read_text())
    for m in plan2["modules"]:
        if m["opt_level"] > 0:
            m["opt_level"] = 1 if m["opt_level"] != 1 else 2
    plan2_path = loop["dir"] / "plan2.json"
    plan2_path.write_text(json.dumps(plan2))
    common = ["--plan", plan2_path, "--image", img, "--cache-dir", loop["dir"] / "cache-crash", "--no-shapes"]
    # Generation 2 cut off half way.
    pgo_run("apply", *common, "--stop-after", 0.5)
    run = Run(img, evals=False)
    assert "cache: slot 1: incomplete (interrupted write)" in run.log
    assert f"cache: tag {tag} found, generation 1 (slot 0)" in run.log
    assert run.cached_modules() == set(planned(loop))
    assert run.text == loop["baseline"].text
    # The complete write of generation 2, then generation 3 (the first
    # plan again) cut off in slot 0.
    pgo_run("apply", *common)
    pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / "cache-crash3",
            "--stop-after", 0.5)
    run = Run(img, evals=False)
    assert "cache: slot 0: incomplete (interrupted write)" in run.log
    assert f"cache: tag {tag} found, generation 2 (slot 1)" in run.log
    assert "specialised for" not in run.log            # generation 2 has no shaped modules
    assert run.cached_modules() == set(planned(loop))
    assert {v["opt"] for v in run.variants.values() if v["variant"] == "cache"} <= {"-O1", "-O2"}
    assert run.text == loop["baseline"].text


@pytest.fixture(scope="module")
def mini_img(loop):
    """An image of the mini model (other shapes than the loop's tiny one)."""
    mini = make_model(loop["dir"] / "mini-q4_0.gguf", "mini")
    return build_image(loop["dir"] / "mini-base.img", mini)


def test_shaped_modules_fall_back_on_another_model(loop, mini_img):
    """The tiny model's shape-specialised cache on an image with the mini
    model (--other-model): the runtime check takes the generic path, tokens
    unchanged."""
    if not any(m.get("shapes") for m in planned(loop).values()):
        pytest.skip("the plan has no shape-specialised module")
    img = loop["dir"] / "mini.img"
    shutil.copy(mini_img, img)
    base = Run(img, evals=False)
    pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / "cache-mini",
            "--other-model")
    run = Run(img, evals=False)
    assert "does not match the model, its generic path runs" in run.log
    assert "model differs, generic path" in run.modules_out
    assert run.cached_modules() == set(planned(loop))
    assert run.text == base.text


def test_apply_refuses_an_image_of_another_model(loop, mini_img, capsys):
    """Without --other-model a plan is written only onto its own model, and
    a refused apply writes nothing."""
    img = loop["dir"] / "mini-refused.img"
    shutil.copy(mini_img, img)
    before = Path(img).read_bytes()
    with pytest.raises(SystemExit):
        pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / "cache-refused")
    crc = chunked_crc(loop["dir"] / "mini-q4_0.gguf")
    err = capsys.readouterr().err
    assert f"the image holds model mini-q4_0.gguf (CRC {crc:08x}), the plan is for {loop['plan']['model_id']}" in err
    assert Path(img).read_bytes() == before
    assert not (loop["dir"] / "cache-refused").exists(), "nothing is built for a refused target"


def chunked_crc(path):
    """The image header's model CRC, computed here from the GGUF file: the
    CRC-32 of the little-endian CRC-32s of its 4 MiB pieces
    (FLUID_REGION_CRC_CHUNKED, kernel/include/fluid/image.h)."""
    crcs = bytearray()
    with open(path, "rb") as f:
        while piece := f.read(4 << 20):
            crcs += struct.pack("<I", zlib.crc32(piece))
    return zlib.crc32(bytes(crcs))


def slot_tags(run):
    m = re.search(r"cache: slot \d: generation \d+, \d+ modules, tags (.+) \(active\)", run.log)
    assert m, run.log
    return set(m.group(1).split())


def test_several_cpu_tags_in_one_cache(loop):
    """This CPU's tag and x86-64-v4 in one slot: boot runs this CPU's own
    tag's modules (on a CPU without AVX-512: never one built for it)."""
    img = copy_img(loop, "tags.img")
    pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / "cache-tags",
            "--tag", "x86-64-v4")
    run = Run(img)
    assert slot_tags(run) == {run.tag, "x86-64-v4"}
    assert f"cache: tag {run.tag} found, generation 2" in run.log
    cached = [v for v in run.variants.values() if v["variant"] == "cache"]
    assert {v["module"] for v in cached} == set(planned(loop))
    assert {v["march"] for v in cached} == {run.tag}
    assert_same_tokens(run, loop)


def test_best_usable_tag_when_this_cpus_own_is_absent(loop):
    """A slot with x86-64-v2 and x86-64-v4 only, on a v3 CPU: the kernel
    takes v2 (the usable tag with the most features), says v4 needs
    features this CPU lacks, and runs no v4 module."""
    if loop["baseline"].tag != NO_AVX512 and not _has_avx512(loop["baseline"]):
        pytest.skip(f"needs an x86-64-v3 CPU or one above it (this one is {loop['baseline'].tag})")
    img = copy_img(loop, "v2v4.img", "base")
    for t in ("x86-64-v2", "x86-64-v4"):
        pgo_run("apply", "--plan", loop["plan_path"], "--image", img, "--cache-dir", loop["dir"] / f"cache-{t}",
                "--tag", t)
    run, ref = run_without_avx512(loop, img)
    assert run.tag == NO_AVX512
    assert slot_tags(run) == {"x86-64-v2", "x86-64-v4"}
    assert "cache: tag x86-64-v2 found (this CPU's own tag has no cache), generation 2" in run.log
    assert re.search(r"modules: cache tag x86-64-v4 rejected: requires AVX512F .*which this CPU", run.log)
    cached = [v for v in run.variants.values() if v["variant"] == "cache"]
    assert {v["module"] for v in cached} == set(planned(loop))
    assert {v["march"] for v in cached} == {"x86-64-v2"}
    assert_same_tokens(run, loop, ref)


def test_profiles_of_several_runs_merge(loop):
    """analyze over two runs sums each op's calls and cycles: the plan's
    totals equal the sums of what the kernel exported in each."""
    prof2 = Path(pgo_run("profile", "--image", loop["base"], "--profiles-dir", loop["dir"] / "profiles-merge",
                         "--prompt", "The weather today", "-n", 6, "--mem", MEM, "--smp", 2, "--quiet",
                         "--target", TARGET))
    plan = json.loads(Path(pgo_run("analyze", "--profile", loop["prof1"], "--profile", prof2, "--out",
                                   loop["dir"] / "merged.plan.json")).read_text())
    p1, p2 = json.loads(loop["prof1"].read_text()), json.loads(prof2.read_text())
    assert p1["workload"]["generated_tokens"] != p2["workload"]["generated_tokens"], "two different runs"
    assert plan["total_cycles"] == p1["total_cycles"] + p2["total_cycles"]
    assert plan["profiles"] == [str(loop["prof1"]), str(prof2)]
    for m in plan["modules"]:
        ops = [o for p in (p1, p2) for o in p["modules"] if o["module"] == m["module"]]
        assert m["calls"] == sum(o["calls"] for o in ops), m["module"]
        assert m["cycles"] == sum(o["cycles"] for o in ops), m["module"]


def test_plan_never_goes_below_the_image_build(loop):
    """A planned module is never built at a lower -O level than the image's
    per-ISA build it replaces, also when that build is for a smaller tag
    than the profiled CPU's (the image has v4+vnni, a Zen 4/5 is
    v4+vnni+bf16): a warm module's -O1 would otherwise replace -O2."""
    prof = json.loads(loop["prof1"].read_text())
    ran = {o["module"]: (o["variant"], o["opt_level"], o["march"]) for o in prof["modules"] if o["calls"]}
    checked = 0
    for m in loop["plan"]["modules"]:
        r = ran.get(m["module"])
        if not r or r[0] != "image" or m["decision"] == "baseline":   # cold: the image's build stays
            continue
        checked += 1
        if m["decision"] == "image":   # not rebuilt: only the very build the image runs
            assert r[2] == m["march"] and "shapes" not in m, (m, r)
        else:
            assert m["opt_level"] >= r[1], (m, r)
    assert checked, "no module ran an image build"
