"""`tune` at the prompt (issue 10, part 3): every variant of every hot op
timed on the loaded model's shapes, checked against the scalar baseline,
the fastest chosen, kept in the disk's cache region and used by the next
boot with no host; a write cut at any sector leaves the previous choice in
force.

Independent checks: the slot the kernel writes is read back by
tools/pgo.py (a separate reader of the format), its choices name real
module files of build/modules by their SHA-256, and a deliberately wrong
module and a deliberately slow one (compiled here) are never chosen.

Runs on the hosted target (FLUID_TARGET=qemu for QEMU); the machine tests
(tests/machine/test_disk_write.py) repeat the round trip and one power cut
through the pc disk drivers.
"""
import hashlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, build_image

sys.path.insert(0, str(ROOT / "tools"))
import pgo  # noqa: E402
from pgo_image import Medium  # noqa: E402
from tune_table import choice_key, modules_rows, parse_tune  # noqa: E402

MEM = "1G"


def slot_state(img):
    """(newest valid slot info, both slots) as tools/pgo.py reads them."""
    with Medium(img) as m:
        cur = m.newest()
        return (m.slots[cur]["info"] if cur is not None else None), m.slots


def write_slot(img, index, slot):
    with Medium(img, write=True) as m:
        m.write_slot(index, slot)


def module_files():
    """{sha256: path} of every module build the image carries."""
    out = {}
    for p in (BUILD / "modules").glob("*/*.fmod"):
        out[pgo.parse_module(p.read_bytes())["sha256"]] = p
    return out


@pytest.fixture(scope="module")
def mini(tmp_path_factory, gen_model):
    d = tmp_path_factory.mktemp("tune")
    return dict(dir=d, img=build_image(d / "mini.img", gen_model("mini", "Q4_0")))


def fresh(mini, name):
    dst = mini["dir"] / name
    shutil.copy(mini["img"], dst)
    return dst


@pytest.fixture(scope="module")
def tuned(mini, vm_factory_module):
    """One full `tune` on a fresh image and the boot after it."""
    img = fresh(mini, "tuned.img")
    vm = vm_factory_module(img, mem=MEM, smp=2)
    before_eval = vm.cmd("eval --top 3 1 450 4996 17354", timeout=300)
    out = vm.cmd("tune -r 3", timeout=600)
    cache_out = vm.cmd("cache")
    vm.send("poweroff\r")
    vm.wait_exit(30)
    vm2 = vm_factory_module(img, mem=MEM, smp=2)
    return dict(img=img, out=out, table=parse_tune(out), cache_out=cache_out, tag=re.search(
        r"tag (\S+), \d+ cores", vm.text()).group(1), before_eval=before_eval, boot2=vm2.text(),
        modules2=vm2.cmd("modules"), eval2=vm2.cmd("eval --top 3 1 450 4996 17354", timeout=300), vm2=vm2)


@pytest.fixture(scope="module")
def vm_factory_module(request):
    import fluidvm
    import os
    target = os.environ.get("FLUID_TARGET", "hosted")
    vms = []

    def boot(image, **kw):
        vm = fluidvm.boot(image, target=target, **kw)
        vms.append(vm)
        return vm

    yield boot
    for vm in vms:
        vm.close()


# The mini Q4_0 model: Q4_0 blocks (Q8_0S activations), a Q6_K output (Q8_K),
# the F16 KV cache (convert_f16).
HOT = {"mm_q4_0", "mm_q6_K", "quantize_q8_0s", "quantize_q8_K", "dequant_q4_0", "rmsnorm", "rope", "swiglu", "add",
       "attn_scores", "softmax", "attn_wsum", "convert_f16"}
N = len(HOT)
# tune's workloads (one choice each): mm_q4_0's prefill batch and its
# one-token calls; the Q6_K output is only ever called with one token.
WORKS = (HOT - {"mm_q6_K"}) | {"mm_q4_0 decode", "mm_q6_K decode"}
NW = len(WORKS)



def test_tune_times_every_variant_and_checks_it(tuned):
    t = tuned["table"]
    assert set(t) == WORKS, tuned["out"]
    have_v4 = tuned["tag"].startswith("x86-64-v4")
    for op, vs in t.items():
        assert vs[0]["variant"] == "baseline" and vs[0]["march"] == "x86-64" and vs[0]["status"] == "reference", op
        marches = {v["march"] for v in vs}
        assert {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4+vnni"} <= marches, (op, marches)
        for v in vs:
            if v["march"] == "x86-64-v4+vnni" and not have_v4:
                assert v["status"] == "skipped" and "requires AVX512F" in v["line"] and "lacks" in v["line"], op
            elif v["status"] not in ("reference", "same"):
                assert v["status"] == "ok", (op, v["line"])
        timed = [v for v in vs if v["status"] in ("ok", "reference")]
        chosen = [v for v in timed if v["chosen"]]
        # the fastest, unless the default is within 3 % of it (tune.h TUNE_KEEP)
        best = min(v["min"] for v in timed)
        assert len(chosen) == 1, op
        assert chosen[0]["min"] == best or (chosen[0]["default"] and chosen[0]["min"] <= 1.03 * best), (op, chosen)
        default = [v for v in timed if v["default"]]
        if default and not chosen[0]["default"]:
            assert default[0]["min"] > 1.03 * chosen[0]["min"], (op, default, chosen)
        assert all(1 <= v["reps"] <= 3 for v in timed)
    # Independent of Fluid: SIMD builds beat the -O1 scalar baseline by far
    # on every matrix product (20-55x natively, REFERENCE.md).
    for op in ("mm_q4_0", "mm_q4_0 decode", "mm_q6_K decode"):
        base = t[op][0]["min"]
        best = min(v["min"] for v in t[op] if v["status"] == "ok")
        assert base > 3 * best, (op, base, best)
    assert "tune: matrix products timed with their weights out of the caches (64 MiB read before each run)" in \
        tuned["out"]
    assert re.search(rf"tune: chose {NW} variants for {N} ops \(\d+ differ from the default\); 0 variants wrong",
                     tuned["out"])
    # The matrix products' prefetch alternatives are timed beside the
    # defaults, on the AVX2 level and up.
    for op in ("mm_q4_0", "mm_q4_0 decode", "mm_q6_K decode"):
        pf = {v["variant"] for v in t[op] if v["variant"].startswith("pf=")}
        assert pf == {"pf=0", "pf=1K", "pf=4K", "pf=16K"}, (op, pf)
        assert all(v["march"] in ("x86-64-v3", "x86-64-v4+vnni") for v in t[op] if v["variant"] in pf)
    # ... and only there: mm_q4_0's other ops do not prefetch.
    assert not [v for op in WORKS - {"mm_q4_0", "mm_q4_0 decode", "mm_q6_K decode"} for v in t[op]
                if v["variant"].startswith("pf=")]


def test_choice_is_on_disk_in_the_documented_format(tuned):
    """tools/pgo.py reads the slot the kernel wrote: generation 1, one
    choice per hot op, each the chosen row of the table, naming a module
    file the image carries by its body's SHA-256."""
    info, slots = slot_state(tuned["img"])
    assert info and info["generation"] == 1 and info["writer"] == "fluid kernel tune" and not info["entries"]
    assert info["choice_meta"]["choice_tag"] == tuned["tag"]
    assert info["choice_meta"]["choice_model_id"].startswith("mini-random-")
    files = module_files()
    got = {choice_key(c): c for c in info["choices"]}
    assert set(got) == WORKS
    for op, c in got.items():
        chosen = next(v for v in tuned["table"][op] if v.get("chosen"))
        assert c["sha256"].hex()[:16] == chosen["hash"] and c["march"] == chosen["march"], op
        assert c["cycles"] == chosen["min"]
        path = files[c["sha256"]]
        assert pgo.parse_module(path.read_bytes())["name"] == c["module"]
        assert hashlib.sha256(path.read_bytes()[pgo.MOD_HEADER_BYTES:]).digest() == c["sha256"]
    assert "[active]" in tuned["cache_out"] and f"{NW} tuned choices" in tuned["cache_out"]


def test_next_boot_runs_the_tuned_choice(tuned):
    log = tuned["boot2"]
    assert re.search(rf"tune: tuned choice in force for {NW} of {NW} choices \(generation 1, measured on this CPU's "
                     rf"tag {re.escape(tuned['tag'])}, model mini-random-[0-9a-f]{{8}}\)", log), log[-2000:]
    assert re.search(rf"tuned: {N} ops run the variant `tune` chose \(2 decode choices; generation 1",
                     tuned["modules2"])
    rows = modules_rows(tuned["modules2"])
    for op, vs in tuned["table"].items():
        chosen = next(v for v in vs if v.get("chosen"))
        assert rows[op][5] == chosen["hash"], (op, rows[op], chosen)
    # The chosen variants compute the same model: top logits as before.
    def top(out):
        import json
        return [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    a, b = top(tuned["before_eval"]), top(tuned["eval2"])
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert [t[0] for t in x["top"]] == [t[0] for t in y["top"]]
        assert all(abs(p[1] - q[1]) < 1e-3 for p, q in zip(x["top"], y["top"]))


def _compile_module(tmp, name, src):
    """A module from C source with the Makefile's module flags, packed by
    modpack as an x86-64 (SSE2) -O2 build named `name`."""
    mf = pgo.modflags()
    (tmp / f"{name}.c").write_text(src)
    objs = []
    for s in (tmp / f"{name}.c", ROOT / "modules" / "modrt.c"):
        o = tmp / f"{s.stem}-{name}.o"
        subprocess.run([mf["CC"], *shlex.split(mf["MOD_CFLAGS"]), "-O2", "-march=x86-64", "-c", str(s), "-o",
                        str(o)], check=True, cwd=ROOT)
        objs.append(str(o))
    elf = tmp / f"{name}.elf"
    subprocess.run([mf["LD"], *shlex.split(mf["MOD_LDFLAGS"]), *objs, "-o", str(elf)], check=True, cwd=ROOT)
    out = tmp / f"{name}.fmod"
    subprocess.run([str(BUILD / "tools" / "modpack"), "module", "-o", str(out), "--elf", str(elf), "--name",
                    "rmsnorm", "--march", "x86-64", "--opt", "2", "--features", "SSE SSE2"], check=True)
    return out.read_bytes()


WRONG = """#include "ops.h"
/* Fast and wrong: no normalisation at all. */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    (void)w, (void)eps;
    for (int i = 0; i < n; i++)
        out[i] = x[i];
}
"""
SLOW = """#define rmsnorm rmsnorm_once
#include "rmsnorm.c"
#undef rmsnorm
/* Right and slow: the real RMSNorm, 64 times over. */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    for (volatile int r = 0; r < 64; r++)
        rmsnorm_once(out, x, w, n, eps);
}
"""


def test_wrong_and_slow_variants_are_never_chosen(mini, tuned, vm_factory_module, tmp_path):
    """A cache holding a wrong rmsnorm for this CPU's tag (so it is what
    runs after boot) and a slow but right one under the portable tag (kept
    as a variant for tune): tune reports the first WRONG and the second
    slower, chooses neither, and the next boot runs its choice instead of
    the cache's wrong module."""
    img = fresh(mini, "bad-variants.img")
    wrong, slow = _compile_module(tmp_path, "wrong", WRONG), _compile_module(tmp_path, "slow", SLOW)
    slot = pgo.build_slot(1, [dict(tag=tuned["tag"], file=wrong), dict(tag="x86-64", file=slow)], "test")
    write_slot(img, 0, slot)
    hw = pgo.parse_module(wrong)["sha256"].hex()[:16]
    hs = pgo.parse_module(slow)["sha256"].hex()[:16]
    vm = vm_factory_module(img, mem=MEM, smp=2)
    assert "cache: 1 modules of other tags kept as variants for `tune`" in vm.text()
    assert re.search(rf"^rmsnorm +rmsnorm +cache .* {hw} ", vm.cmd("modules"), re.M)
    out = vm.cmd("tune -r 3", timeout=600)
    rows = {v["hash"]: v for v in parse_tune(out)["rmsnorm"]}
    assert rows[hw]["status"] == "wrong" and not rows[hw]["chosen"] and rows[hw]["default"], out
    assert rows[hs]["status"] == "ok" and not rows[hs]["chosen"], out
    chosen = next(v for v in rows.values() if v.get("chosen"))
    assert rows[hs]["min"] > 8 * chosen["min"], (rows[hs], chosen)
    assert "1 variants wrong" in out
    vm.send("poweroff\r")
    vm.wait_exit(30)
    vm = vm_factory_module(img, mem=MEM, smp=2)
    log = vm.text()
    assert re.search(rf"tune: tuned choice in force for {NW} of {NW} choices \(generation 2", log), log[-2000:]
    assert re.search(rf"choices? runs? another variant than the default: .*rmsnorm={chosen['variant']} "
                     rf"{re.escape(chosen['march'])} {chosen['opt']}", log)
    assert re.search(rf"^rmsnorm +rmsnorm +{chosen['variant']} .* {chosen['hash']} ", vm.cmd("modules"), re.M)
    info, _ = slot_state(img)
    assert info["generation"] == 2 and len(info["entries"]) == 2, "tune carried the cached modules over"


def _boot_check(vm_factory_module, img):
    vm = vm_factory_module(img, mem=MEM, smp=2)
    log = vm.text()
    vm.send("poweroff\r")
    vm.wait_exit(30)
    vm.close()
    return log


def _cut(vm_factory_module, img, n):
    vm = vm_factory_module(img, mem=MEM, smp=2)
    vm.send(f"tune save --stop-after {n}\r")
    status = vm.wait_exit(60)
    text = vm.text()
    vm.close()
    return status, text


@pytest.mark.parametrize("with_modules", [False, True], ids=["choices-only", "with-cached-modules"])
def test_power_cut_at_every_sector_keeps_the_previous_choice(mini, tuned, vm_factory_module, with_modules):
    """Generation 1 holds the tuned choices; generation 2 (`tune save`) is
    cut after each possible number of sectors, 0 .. all but the last: every
    time the next boot finds generation 1 whole and runs its choices, and
    the half-written slot is reported.  Writing every sector commits
    generation 2.  With cached modules in the slot (carried over byte for
    byte) the slot is ~20 times longer; every sector is still tried."""
    base = fresh(mini, f"cut-base-{with_modules}.img")
    shutil.copyfile(tuned["img"], base)
    if with_modules:
        info, _ = slot_state(base)
        mods = [dict(tag=tuned["tag"], file=(BUILD / "modules" / "v3" / f"{n}.fmod").read_bytes())
                for n in ("add", "rmsnorm", "mm_q4_0")]
        slot = pgo.build_slot(1, mods, info["model_id"], info["choices"], info["choice_meta"])
        write_slot(base, 0, slot)
    gen1, _ = slot_state(base)
    assert gen1["generation"] == 1 and len(gen1["choices"]) == NW
    # How many sectors generation 2 takes: write it once in full.
    full = base.with_name(base.stem + "-full.img")
    shutil.copyfile(base, full)
    vm = vm_factory_module(full, mem=MEM, smp=2)
    text = vm.cmd("tune save")
    assert "wrote generation 2 to cache slot 1" in text, text
    vm.send("poweroff\r")
    vm.wait_exit(30)
    vm.close()
    gen2, slots = slot_state(full)
    assert gen2["generation"] == 2 and gen2["choices"] == gen1["choices"], text[-1500:]
    assert [e["file"] for e in gen2["entries"]] == [e["file"] for e in gen1["entries"]]
    sectors = gen2["slot_bytes"] // 512
    assert sectors >= (40 if with_modules else 4)
    img = base.with_name(base.stem + "-cut.img")
    for n in range(sectors):
        shutil.copyfile(base, img)
        status, text = _cut(vm_factory_module, img, n)
        assert f"SIMULATED POWER CUT after {n} of {sectors} sectors of generation 2 (slot 1)" in text
        assert status == 1, text[-800:]
        log = _boot_check(vm_factory_module, img)
        assert "cache: slot 0: generation 1" in log and "(active)" in log, (n, log[-1500:])
        assert f"tune: tuned choice in force for {NW} of {NW} choices (generation 1," in log, (n, log[-1500:])
        cur, slots = slot_state(img)
        assert cur["generation"] == 1 and cur["choices"] == gen1["choices"], n
        assert slots[1]["state"] in ("empty", "torn", "bad-header"), (n, slots[1])
        if n > 0:
            assert slots[1]["state"] == "torn" and "write interrupted" in slots[1]["why"], (n, slots[1])
    log = _boot_check(vm_factory_module, full)
    assert f"tune: tuned choice in force for {NW} of {NW} choices (generation 2," in log


def test_tune_clear_and_errors(mini, tuned, vm_factory_module):
    img = fresh(mini, "clear.img")
    shutil.copyfile(tuned["img"], img)
    vm = vm_factory_module(img, mem=MEM, smp=2)
    assert "error: -r takes 1..32 repetitions" in vm.cmd("tune -r 0")
    assert "error: usage: tune" in vm.cmd("tune --frobnicate")
    out = vm.cmd("tune clear")
    assert "every op runs its default variant again" in out and "wrote generation 2" in out
    assert "tuned:" not in vm.cmd("modules")
    vm.send("poweroff\r")
    vm.wait_exit(30)
    log = _boot_check(vm_factory_module, img)
    assert "tuned choice in force" not in log
    info, _ = slot_state(img)
    assert info["generation"] == 2 and info["choices"] == []
    # No model: nothing to time on.
    empty = build_image(mini["dir"] / "nomodel.img")
    vm = vm_factory_module(empty, mem=MEM, smp=2)
    assert "error: no model is loaded" in vm.cmd("tune")
    assert "error: tune save: no tuned choices to save" in vm.cmd("tune save")


def test_stop_after_is_refused_outside_test_mode(mini):
    """The simulated power cut is a test hook: without --test it is refused."""
    img = fresh(mini, "notest.img")
    r = subprocess.run([str(BUILD / "fluid-hosted"), "--mem", MEM, str(img)], input=b"tune --stop-after 1\npoweroff\n",
                       capture_output=True, timeout=120)
    assert b"error: --stop-after (a simulated power cut) works in test mode only" in r.stdout
    info, _ = slot_state(img)
    assert info is None
