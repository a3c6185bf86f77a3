"""The PGO loop exactly as a user types it, through the Makefile:

    make pgo-profile HOSTED=1
    make pgo-analyze
    make pgo-apply
    make run HOSTED=1          (on a real terminal: a pty; `modules`, `cache`)

with MODEL= a tiny model (fast) and IMAGE=, PGO_CACHE=, PGO_PROFILES= in
a temporary directory (so the user's build/fluid.img, cache/ and profiles/
are never touched).  `make run` rebuilds the image (its rule is FORCEd)
and must keep the applied cache: boot names the generation, `modules`
shows the cached variants.  A rebuild with another model, stale module
sources, other shapes or another module ABI drops it, saying why in one
line.  Then a second profile and `make pgo-report`, whose page headless
Chromium renders: the screenshot must show each generation's bars, the
throughput bars as tall as the profiles' tok/s say.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import fluidvm  # noqa: E402
import pgo  # noqa: E402
import pgo_image  # noqa: E402
from pgo_report import GEN_COLOURS  # noqa: E402

MEM = "1G"


def make_model(out, preset):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_model.py"), "--preset", preset, "--type", "Q4_0",
                    "--seed", "7", "-q", "-o", str(out)], check=True)
    return out


def make(*args, **vars):
    """`make -s TARGET... VAR=value...` in the repository; returns its output."""
    cmd = ["make", "-s", "--no-print-directory", "-C", str(ROOT), *args, *[f"{k}={v}" for k, v in vars.items()]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def make_run_on_pty(commands, **vars):
    """`make run HOSTED=1 ...` with its terminal a pty, as a user runs it:
    wait for the prompt, type each command, then poweroff.  Returns
    (transcript, {command: its output}) with "\\r" removed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("make", ["make", "-s", "--no-print-directory", "-C", str(ROOT), "run", "HOSTED=1",
                           *[f"{k}={v}" for k, v in vars.items()]])
    buf = bytearray()

    def read_until(count, timeout=300):
        end = time.monotonic() + timeout
        while buf.count(b"fluid> ") < count:
            if time.monotonic() > end:
                raise AssertionError("no prompt; the terminal showed:\n" + buf[-4000:].decode("utf-8", "replace"))
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError("make run ended early:\n" + buf[-4000:].decode("utf-8", "replace"))
                buf.extend(data)

    outs = {}
    try:
        read_until(1)
        for k, c in enumerate(commands, 2):
            start = len(buf)
            os.write(fd, c.encode() + b"\r")
            read_until(k)
            outs[c] = bytes(buf[start:buf.rindex(b"fluid> ")]).decode("utf-8", "replace").replace("\r", "")
        os.write(fd, b"poweroff\r")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                buf.extend(data)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"make run: status {status}"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    return bytes(buf).decode("utf-8", "replace").replace("\r", ""), outs


def variants(modules_out):
    """{op: (module, variant, -O, march)} from the `modules` table."""
    out = {}
    for line in modules_out.splitlines():
        f = line.split()
        if len(f) == 8 and f[2] in ("baseline", "image", "cache", "none"):
            out[f[0]] = (f[1], f[2], f[3], f[4])
    return out


def chunked_crc(path):
    """The image header's model CRC computed here from the GGUF file: the
    CRC-32 of the little-endian CRC-32s of its 4 MiB pieces
    (FLUID_REGION_CRC_CHUNKED, kernel/include/fluid/image.h)."""
    crcs = bytearray()
    with open(path, "rb") as f:
        while piece := f.read(4 << 20):
            crcs += struct.pack("<I", zlib.crc32(piece))
    return zlib.crc32(bytes(crcs))


def cache_region(img):
    r = pgo.read_image_header(img)["regions"][pgo.REGION_CACHE]
    with open(img, "rb") as f:
        f.seek(r["lba"] * 512)
        return f.read(r["sectors"] * 512)


def boot(img):
    vm = fluidvm.boot(img, target="hosted", mem=MEM, smp=2)
    try:
        log = vm.text()
        mods = vm.cmd("modules")
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    return log, variants(mods)


def cached(vs):
    return {m for m, v, _, _ in vs.values() if v == "cache"}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    d = tmp_path_factory.mktemp("pgo-user")
    tiny = make_model(d / "tiny.gguf", "tiny")
    v = dict(IMAGE=d / "fluid.img", PGO_CACHE=d / "cache", PGO_PROFILES=d / "profiles", MODEL=tiny, MEM=MEM, SMP=2,
             PGO_N=8)
    out = dict(profile=make("pgo-profile", "HOSTED=1", **v), analyze=make("pgo-analyze", **v),
               apply=make("pgo-apply", **v))
    plan_path = Path(re.search(r"^plan: (\S+)$", out["analyze"], re.M).group(1))
    plan = json.loads(plan_path.read_text())
    planned = {m["module"]: m for m in plan["modules"] if m["opt_level"] > 0}
    assert planned, "the plan rebuilds at least one module"
    transcript, cmds = make_run_on_pty(["modules", "cache"], **v)
    return dict(dir=d, vars=v, img=d / "fluid.img", tiny=tiny, out=out, plan=plan, plan_path=plan_path,
                planned=planned, transcript=transcript, cmds=cmds)


def test_make_run_runs_the_applied_cache(loop):
    img, plan = loop["img"], loop["plan"]
    assert f"wrote generation 1 to slot 0 of {img}" in loop["out"]["apply"]
    t = loop["transcript"]
    assert f"cache: kept generation 1 of {img} (" in t, "the rebuild by make run kept the cache"
    tag = re.search(r"tag (\S+), \d+ cores", t).group(1)
    assert plan["tag"] == tag
    assert "cache: slot 0: generation 1" in t and "(active)" in t
    assert f"cache: tag {tag} found, generation 1 (slot 0)" in t
    assert f"cache: {len(loop['planned'])} modules loaded, 0 rejected" in t
    vs = variants(loop["cmds"]["modules"])
    assert len(vs) == pgo_image.L.OP_COUNT
    for op, (module, variant, opt, march) in vs.items():
        want = loop["planned"].get(module)
        if want:
            assert (variant, opt, march) == ("cache", want["decision"], want["march"]), op
        else:
            assert variant in ("image", "baseline"), op
    assert f"cache tag {tag}, generation 1" in loop["cmds"]["modules"]
    assert re.search(r"slot 0: +valid, generation 1, .*\[active\]", loop["cmds"]["cache"])


def test_every_image_rebuild_keeps_the_slot_byte_for_byte(loop):
    img = loop["dir"] / "rebuilt.img"
    shutil.copy(loop["img"], img)
    before = cache_region(img)
    v = dict(loop["vars"], IMAGE=img)
    assert f"cache: kept generation 1 of {img}" in make("image", **v)
    assert cache_region(img) == before
    # make bench and make test build the image through the same rule.
    for target in ("bench", "test"):
        dry = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), target,
                              *[f"{k}={x}" for k, x in v.items()]], capture_output=True, text=True).stdout
        assert f"tools/pgo.py carry --into {img}.tmp --from {img}" in dry, target


def test_changed_model_drops_the_cache_and_the_old_one_comes_back(loop):
    img = loop["dir"] / "other.img"
    shutil.copy(loop["img"], img)
    mini = make_model(loop["dir"] / "mini.gguf", "mini")
    v = dict(loop["vars"], IMAGE=img)
    out = make("image", **dict(v, MODEL=mini))
    line = [x for x in out.splitlines() if x.startswith("cache:")]
    assert len(line) == 1, out
    assert line[0].startswith(f"cache: dropped, the image's modules run: generation 1 was built for model "
                              f"{loop['plan']['model_id']}, but the image's model (mini.gguf) has CRC "
                              f"{chunked_crc(mini):08x}"), line[0]
    log, vs = boot(img)
    assert "cache: no valid slot; the image's modules run" in log and not cached(vs)
    # Back to the profiled model: the cache comes back from PGO_CACHE/.
    out = make("image", **v)
    assert f"cache: kept generation 1 from {loop['vars']['PGO_CACHE']}/" in out
    log, vs = boot(img)
    assert re.search(r"cache: tag \S+ found, generation 1 \(slot 0\)", log)
    assert cached(vs) == set(loop["planned"])


def test_stale_module_sources_drop_the_cache(loop):
    """registry.json records each build's source fingerprint; one that no
    longer matches (as after an edit of modules/<name>.c) drops the cache
    instead of running the old build over the image's newer one."""
    cache = loop["dir"] / "cache-stale"
    shutil.copytree(loop["vars"]["PGO_CACHE"], cache)
    reg_path = next(cache.glob("*/registry.json"))
    reg = json.loads(reg_path.read_text())
    for m in reg["modules"]:
        assert re.fullmatch(r"[0-9a-f]{64}", m["source_sha256"]), m
    victim = reg["modules"][0]["name"]
    reg["modules"][0]["source_sha256"] = "0" * 64
    reg_path.write_text(json.dumps(reg))
    img = loop["dir"] / "stale.img"
    shutil.copy(loop["img"], img)
    out = make("image", **dict(loop["vars"], IMAGE=img, PGO_CACHE=cache))
    assert (f"cache: dropped, the image's modules run: modules/{victim}.c or a module header changed since "
            "generation 1 was built (make pgo-apply rebuilds it)") in out
    log, vs = boot(img)
    assert "cache: no valid slot" in log and not cached(vs)


def test_modules_shaped_for_other_shapes_drop_the_cache(loop):
    """A cache that names the model but whose shaped modules carry other
    shapes (here: the tiny model's, written for the mini model's id)."""
    shaped = [m for m in loop["planned"].values() if m.get("shapes")]
    if not shaped:
        pytest.skip("the plan has no shape-specialised module")
    mini = make_model(loop["dir"] / "mini2.gguf", "mini")
    img = loop["dir"] / "shapes.img"
    v = dict(loop["vars"], IMAGE=img, MODEL=mini, PGO_CACHE=loop["dir"] / "cache-shapes")
    make("image", **v)
    plan = dict(loop["plan"], model_id=f"mini-random-{chunked_crc(mini):08x}")
    plan_path = loop["dir"] / "shapes.plan.json"
    plan_path.write_text(json.dumps(plan))
    pgo.main(["apply", "--plan", str(plan_path), "--image", str(img), "--cache-dir", str(v["PGO_CACHE"])])
    out = make("image", **v)
    assert re.search(r"cache: dropped, the image's modules run: \w+ was specialised for \w+=\d+, the model has "
                     r"\w+=\d+", out), out


def test_cached_modules_of_another_module_abi_drop_the_cache(loop):
    """A slot whose modules say module ABI N-1 (a cache from before an ABI
    change): not carried into an image whose kernel speaks N."""
    L = pgo.L
    img = loop["dir"] / "abi.img"
    shutil.copy(loop["img"], img)
    with pgo.Medium(img, write=True) as m:
        cur = m.newest()
        info = m.slots[cur]["info"]
        entries = []
        for e in info["entries"]:
            f = bytearray(e["file"])
            L.MOD_HEADER.put(f, "abi_version", L.FLUID_MOD_ABI_VERSION - 1)
            L.MOD_HEADER.put(f, "header_crc", zlib.crc32(bytes(f[:L.MOD_HEADER.off("header_crc")])))
            entries.append(dict(e, file=bytes(f)))
        m.write_slot(cur, pgo.build_slot(info["generation"], entries, info["model_id"]))
    out = make("image", **dict(loop["vars"], IMAGE=img, PGO_CACHE=loop["dir"] / "no-cache-dir"))
    assert (f"cache: dropped, the image's modules run: its modules use module ABI {L.FLUID_MOD_ABI_VERSION - 1}, "
            f"the image's kernel ABI {L.FLUID_MOD_ABI_VERSION}") in out


def test_damaged_slot_of_the_old_image_is_reported(loop):
    """A cache the rebuild cannot read (a flipped bit in its registry) is
    not silently lost: the line says what is wrong with it."""
    img = loop["dir"] / "damaged.img"
    shutil.copy(loop["img"], img)
    r = pgo.read_image_header(img)["regions"][pgo.REGION_CACHE]
    with open(img, "r+b") as f:
        f.seek(r["lba"] * 512 + pgo.L.CACHE_SLOT.size + 40)         # inside the registry
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x10]))
    out = make("image", **dict(loop["vars"], IMAGE=img, PGO_CACHE=loop["dir"] / "no-cache-dir"))
    assert (f"cache: dropped, the image's modules run: its cache is unusable: slot 0: registry SHA-256 mismatch "
            f"[{img}]") in out


# ---- make pgo-report, rendered by headless Chromium ----

CHROMIUM = shutil.which("chromium")


def png_pixels(path):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    return im.size, im.load()


def colour_mask(size, px, colour, tol=3):
    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return {(x, y) for y in range(size[1]) for x in range(size[0])
            if all(abs(a - b) <= tol for a, b in zip(px[x, y], want))}


def bands(rows, gap=40):
    """Vertical extents of groups of rows closer than `gap` to each other."""
    out = []
    for y in sorted(rows):
        if out and y - out[-1][1] <= gap:
            out[-1][1] = y
        else:
            out.append([y, y])
    return out


def bars(mask, y0, y1):
    """[(x, width, height)] of the column runs of `mask` within rows
    y0..y1; height: the longest vertical run of the run's centre column
    (so a legend patch above a bar is not counted in it)."""
    cols = sorted({x for x, y in mask if y0 <= y <= y1})
    runs = []
    for x in cols:
        if runs and x == runs[-1][1] + 1:
            runs[-1][1] = x
        else:
            runs.append([x, x])
    out = []
    for a, b in runs:
        c = (a + b) // 2
        ys = sorted(y for x, y in mask if x == c and y0 <= y <= y1)
        best = cur = 1
        for p, q in zip(ys, ys[1:]):
            cur = cur + 1 if q == p + 1 else 1
            best = max(best, cur)
        out.append((a, b - a + 1, best))
    return out


@pytest.fixture(scope="module")
def report(loop):
    out = make("pgo-profile", "HOSTED=1", **loop["vars"])                       # generation 1, measured
    second = Path(re.search(r"^(\S+\.json)$", out, re.M).group(1))
    page = Path(re.search(r"^(\S+report\.html)$", make("pgo-report", **loop["vars"]), re.M).group(1))
    profs = sorted((json.loads(p.read_text()) for p in page.parent.glob("*.json") if not p.name.endswith("plan.json")),
                   key=lambda p: p["capture"]["time"])
    return dict(page=page, profs=profs, second=second)


def test_report_page_covers_each_generation(report):
    profs = report["profs"]
    assert [p["cache"]["generation"] for p in profs] == [0, 1]
    page = report["page"].read_text()
    assert page.count("<svg") == 2 and "gen 0 (no cache)" in page and "gen 1" in page
    for p in profs:                           # each run's figures, as the kernel exported them
        assert f"{p['workload']['decode_tok_s']:,.2f}" in page
        assert f"{p['workload']['prefill_tok_s']:,.2f}" in page
    assert "cache -O" in page and "image -O2" in page, "which variant ran, before and after"
    assert "identical in every generation" in page


def test_report_renders_in_headless_chromium(report, tmp_path):
    if not CHROMIUM:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (tools/report-deps.sh installs it)")
        pytest.skip("chromium is not installed (tools/report-deps.sh installs it; make test runs it)")
    shot = tmp_path / "report.png"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--force-device-scale-factor=1", "--window-size=1280,2400", f"--screenshot={shot}",
                        report["page"].as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists(), r.stderr
    size, px = png_pixels(shot)
    masks = [colour_mask(size, px, c) for c in GEN_COLOURS[:2]]
    charts = bands({y for m in masks for _, y in m})
    assert len(charts) == 2, f"two charts with the generations' colours, found bands {charts}"
    for k, m in enumerate(masks):
        for y0, y1 in charts:
            assert sum(1 for _, y in m if y0 <= y <= y1) > 100, f"generation {k}'s colour in chart {y0}..{y1}"
    # The throughput chart: per generation a prefill and a decode bar (the
    # two widest runs of its colour), as tall as its tok/s, on one scale.
    y0, y1 = charts[1]
    want, got = [], []
    for k, m in enumerate(masks):
        two = sorted(sorted(bars(m, y0, y1), key=lambda b: -b[1])[:2])
        assert len(two) == 2, f"generation {k}: {bars(m, y0, y1)}"
        w = report["profs"][k]["workload"]
        want += [w["prefill_tok_s"], w["decode_tok_s"]]
        got += [two[0][2], two[1][2]]
    scale = max(got) / max(want)
    for g, v in zip(got, want):
        assert abs(g - v * scale) <= 3, f"bar heights {got} px for {want} tok/s"
    # The module chart: each generation's tallest bar, on the same scale,
    # is its largest module cycles per token.
    y0, y1 = charts[0]
    cpt = [max(sum(o["cycles"] for o in p["modules"] if o["module"] == name) /
               (p["workload"]["prompt_tokens"] + p["workload"]["generated_tokens"])
               for name in {o["module"] for o in p["modules"]}) for p in report["profs"]]
    tall = [max(b[2] for b in bars(m, y0, y1)) for m in masks]
    scale = max(tall) / max(cpt)
    for g, v in zip(tall, cpt):
        assert abs(g - v * scale) <= 3, f"tallest module bars {tall} px for {cpt} cycles/token"
