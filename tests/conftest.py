"""Shared pytest fixtures: paths, the ../shared test data, images, and the
two targets (tools/fluidvm.py): tests/prompt runs on the hosted target
(native speed) unless FLUID_TARGET=qemu; tests/machine runs in QEMU (what
only a machine has: bootloader, traps, drivers, SMP start-up)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

BUILD = ROOT / "build"
SHARED = Path(os.environ.get("FLUID_SHARED", ROOT.parent / "shared"))
LLAMACPP = SHARED / "testdata" / "llamacpp"


def shared_models():
    """The llama.cpp-made models beside their outputs, or [] without shared/."""
    if not LLAMACPP.is_dir():
        return []
    return sorted(p for p in LLAMACPP.glob("*.gguf") if p.with_suffix(".json").exists())


def build_image(out, model=None):
    """Write a bootable image with `model` (a GGUF path or None) from the
    already-built boot pieces (make test builds them first)."""
    parts = [BUILD / "bootloader" / "stage1.bin", BUILD / "bootloader" / "stage2.bin",
             BUILD / "kernel.bin", BUILD / "tools" / "mkimage", BUILD / "modules.bin"]
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        pytest.fail(f"build products missing (run `make image` first): {missing}")
    cmd = [str(BUILD / "tools" / "mkimage"), "-o", str(out),
           "--stage1", str(parts[0]), "--stage2", str(parts[1]), "--kernel", str(parts[2]),
           "--modules", str(parts[4]), "--model", str(model) if model else ""]
    subprocess.run(cmd, check=True)
    return Path(out)


@pytest.fixture(scope="session")
def empty_image(tmp_path_factory):
    return build_image(tmp_path_factory.mktemp("img") / "empty.img")


@pytest.fixture
def target(request):
    """Where a test boots: tests/machine always in QEMU (what only a machine
    has); everything else on the hosted target (native speed) unless
    FLUID_TARGET=qemu."""
    if "machine" in Path(str(request.path)).relative_to(ROOT / "tests").parts[:1]:
        return "qemu"
    t = os.environ.get("FLUID_TARGET", "hosted")
    if t not in ("hosted", "qemu"):
        pytest.fail(f"FLUID_TARGET={t!r}: use hosted or qemu")
    return t


@pytest.fixture
def vm_factory(target):
    """Boot images in test mode on `target` (vm_factory(img, target="qemu")
    to choose); every one is killed at the end of the test."""
    import fluidvm
    vms = []

    def boot(image, **kw):
        kw.setdefault("target", target)
        vm = fluidvm.boot(image, **kw)
        vms.append(vm)
        return vm

    yield boot
    for vm in vms:
        vm.close()


FIGURES = []


def report_figure(line):
    """Record a measured figure; printed at the end of the test run."""
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter):
    # A skip says why even without -rs: a missing oracle must not look like a pass.
    skipped = terminalreporter.stats.get("skipped", [])
    chars = terminalreporter.config.option.reportchars or ""
    if skipped and not any(c in chars for c in "saA"):
        why = {}
        for rep in skipped:
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            why[reason] = why.get(reason, 0) + 1
        terminalreporter.section("skipped, and why")
        for reason, n in why.items():
            terminalreporter.write_line(f"{n} x {reason}")
    if FIGURES:
        terminalreporter.section("measured figures (reported, not asserted)")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def gen_model():
    """Make (once per session) a model with tools/make_model.py and return
    its path: gen_model(preset, type, seed, extra=[make_model.py options,
    e.g. "--set", "tokenizer.ggml.add_bos_token=false"])."""
    out_dir = BUILD / "test-models"
    out_dir.mkdir(parents=True, exist_ok=True)

    def make(preset="mini", qtype="Q4_0", seed=1, extra=(), quantizer="fluid"):
        """extra: more make_model.py options; quantizer "llamacpp": converted by
        llama.cpp itself (make_model.py --quantizer llamacpp; needs
        node-llama-cpp's libraries)."""
        tag = "" if quantizer == "fluid" else f"-{quantizer}"
        if extra:   # the options, and any file they name (@FILE), make the name
            import hashlib
            h = hashlib.sha256("\0".join(extra).encode())
            for a in extra:
                if "=@" in a:
                    h.update(Path(a.split("=@", 1)[1]).read_bytes())
            tag += "-x" + h.hexdigest()[:12]
        out = out_dir / f"{preset}-{qtype}-s{seed}{tag}.gguf"
        if not out.exists():
            subprocess.run([sys.executable, str(ROOT / "tools" / "make_model.py"), "--preset", preset,
                            "--type", qtype, "--seed", str(seed), "--quantizer", quantizer, "-q", *extra,
                            "-o", str(out) + ".tmp"], check=True)
            os.replace(str(out) + ".tmp", out)
        return out

    return make
