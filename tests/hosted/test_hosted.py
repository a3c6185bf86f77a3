"""The hosted target as a user meets it (issue 8): build/fluid-hosted boots
the very image `make run` boots, maps module code read+execute only after
copying it (W^X), ends with the statuses QEMU's isa-debug-exit gives in
test mode, refuses bad images with one message and a non-zero exit, and
drives a real terminal in raw mode (pty)."""
import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

from conftest import BUILD, ROOT, build_image
from fluidvm import HOSTED, FluidHosted
from image_craft import CASES, craft

EXIT_CLEAN, EXIT_FAILURE, EXIT_USAGE = 1, 3, 2


def run_hosted(args, stdin=b"", timeout=60, wrapper=()):
    """fluid-hosted ARGS (under `wrapper`, e.g. qemu-user): (status, output)."""
    p = subprocess.run([*wrapper, HOSTED, *map(str, args)], input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def tiny_image(tmp_path_factory, gen_model):
    return build_image(tmp_path_factory.mktemp("h") / "tiny.img", gen_model("tiny", "Q8_0"))


def test_module_code_is_never_writable_and_executable(tiny_image):
    vm = FluidHosted(tiny_image)
    try:
        maps = open(f"/proc/{vm.proc.pid}/maps").read().splitlines()
        perms = [l.split()[1] for l in maps]
        assert not [l for l in maps if l.split()[1].startswith("rwx")], "\n".join(maps)
        # The baseline modules (at least 13): anonymous read+execute mappings, each
        # followed by its read+write data page(s).
        anon_rx = [l for l in maps if l.split()[1] == "r-xp" and len(l.split()) == 5]
        assert len(anon_rx) >= 13, "\n".join(maps)
        assert "r-xp" in perms and "rw-p" in perms
        assert "generated: 4 tokens" in vm.cmd("gen -n 4 --temp 0 Hi")   # and the sealed code runs
    finally:
        vm.close()


def test_poweroff_and_end_of_input_exit_statuses(tiny_image):
    # Test mode: poweroff is status 1, as isa-debug-exit reports it.
    rc, out = run_hosted(["--test", tiny_image], b"poweroff\r")
    assert rc == EXIT_CLEAN and "powering off" in out
    # A user's session: poweroff, Ctrl-D on an empty line and end of input
    # all exit 0.
    assert run_hosted([tiny_image], b"poweroff\r")[0] == 0
    assert run_hosted([tiny_image], b"\x04")[0] == 0
    rc, out = run_hosted([tiny_image], b"tokenize Hello world!\r")
    assert rc == 0 and "[1, 15043, 3186, 29991]" in out   # llama-tokenizer-js's ids for it


def test_usage_errors():
    rc, out = run_hosted([])
    assert rc == EXIT_USAGE and "usage: fluid-hosted" in out
    rc, out = run_hosted(["--threads", "0", "x.img"])
    assert rc == EXIT_USAGE and "--threads takes" in out
    rc, out = run_hosted(["--mem", "lots", "x.img"])
    assert rc == EXIT_USAGE and "--mem takes" in out


CPU_TAGS = ["x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "x86-64-v4+vnni", "x86-64-v4+vnni+bf16"]
# The image's builds (Makefile ISA_DIRS): the highest one each tag runs.
IMAGE_BUILD_FOR = {"x86-64": ("baseline", "x86-64"), "x86-64-v2": ("image", "x86-64-v2"),
                   "x86-64-v3": ("image", "x86-64-v3"), "x86-64-v4": ("image", "x86-64-v3"),
                   "x86-64-v4+vnni": ("image", "x86-64-v4+vnni"), "x86-64-v4+vnni+bf16": ("image", "x86-64-v4+vnni")}


def test_cpu_tag_limits_the_instruction_sets(tiny_image):
    """--cpu TAG runs as a CPU with only TAG's instruction sets: that tag
    in the boot line, every op on the image's build for it (the baseline
    for x86-64), and the same greedy text (Q8_0's tiles are bit-identical
    across ISA levels).  A tag this CPU cannot run, or no tag, is refused."""
    rc, out = run_hosted(["--cpu", "x86-64-v9", tiny_image])
    assert rc == EXIT_USAGE and "--cpu 'x86-64-v9' is not a CPU tag" in out
    own = FluidHosted(tiny_image)
    try:
        mine = re.search(r", tag (\S+),", own.text()).group(1)
        text = own.cmd("gen -n 8 --temp 0 Hi").split("[prompt:")[0]
    finally:
        own.close()
    runnable = CPU_TAGS[:CPU_TAGS.index(mine) + 1] if mine in CPU_TAGS else ["x86-64"]
    for tag in runnable:
        vm = FluidHosted(tiny_image, extra=["--cpu", tag])
        try:
            assert f", tag {tag}, " in vm.text() and "instruction sets limited by --cpu" in vm.text()
            builds = {(l.split()[2], l.split()[4]) for l in vm.cmd("modules").splitlines()
                      if l.startswith("mm_q8_0 ")}
            assert builds == {IMAGE_BUILD_FOR[tag]}, (tag, builds)
            assert vm.cmd("gen -n 8 --temp 0 Hi").split("[prompt:")[0] == text, tag
        finally:
            vm.close()
    for tag in CPU_TAGS[len(runnable):]:
        rc, out = run_hosted(["--cpu", tag, tiny_image])
        assert rc == EXIT_FAILURE and f"--cpu {tag} needs " in out and "which this CPU" in out, out


QEMU_USER = shutil.which("qemu-x86_64")   # Debian's qemu-user (tools/install-deps.sh)


def run_as_cpu_model(model, image, stdin):
    """fluid-hosted under qemu-user's TCG as QEMU CPU `model`: unlike
    --cpu, an instruction that model lacks really faults (SIGILL)."""
    return run_hosted(["--test", "--threads", "2", image], stdin, timeout=300, wrapper=(QEMU_USER, "-cpu", model))


@pytest.mark.skipif(not QEMU_USER, reason="needs qemu-user (qemu-x86_64): tools/install-deps.sh installs it")
def test_a_cpu_without_avx512_runs_its_own_build_and_nothing_above():
    """On a real x86-64-v3 CPU (QEMU's Haswell model, no AVX-512), which a
    CPU with AVX-512 run as --cpu x86-64-v3 cannot stand in for: any
    AVX-512 instruction in the kernel or in a module picked for this CPU
    faults.  Boots with the image's v3 build, and greedy text equals that
    of this machine run as --cpu x86-64-v3 (the same code)."""
    img = BUILD / "fluid.img"   # make test builds it: the default model, the shipped modules
    rc, out = run_as_cpu_model("Haswell", img, b"modules\rgen -n 8 --temp 0 --seed 1 Once upon a time\rpoweroff\r")
    assert rc == EXIT_CLEAN and "*** CPU exception" not in out, out[-3000:]
    assert ", tag x86-64-v3, " in out
    mods = [l.split() for l in out.splitlines() if re.match(r"mm_q4_0 +mm_q4_0 ", l)]
    assert mods and mods[0][4] == "x86-64-v3", mods
    native = FluidHosted(img, extra=["--cpu", "x86-64-v3"])
    try:
        want = native.cmd("gen -n 8 --temp 0 --seed 1 Once upon a time").split("[prompt:")[0]
    finally:
        native.close()
    assert "generated: 8 tokens" in out and want.strip() and want in out


@pytest.mark.skipif(not QEMU_USER, reason="needs qemu-user (qemu-x86_64): tools/install-deps.sh installs it")
@pytest.mark.parametrize("model", ["Nehalem", "qemu64"])
def test_a_cpu_below_x86_64_v3_is_refused_with_the_reason(tiny_image, model):
    """The kernel's libc math needs AVX2 and FMA (arch/x86/cpu.h,
    FLUID_KERNEL_FEATURES): an older CPU gets one line saying so and the
    failure status, never an invalid-opcode fault at the first token."""
    rc, out = run_as_cpu_model(model, tiny_image, b"gen -n 4 --temp 0 Hi\rpoweroff\r")
    assert rc == EXIT_FAILURE and "*** CPU exception" not in out, out[-3000:]
    assert re.search(r"fluid: cannot run: this CPU lacks AVX AVX2 FMA, .* Fluid needs an x86-64-v3 CPU", out), out
    assert "fluid> " not in out


def flip(path, offset, mask=0x01):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def region(img, name):
    out = subprocess.run([str(BUILD / "tools" / "mkimage"), "--info", str(img)], capture_output=True, text=True,
                         check=True).stdout
    f = [l for l in out.splitlines() if l.startswith(name)][0].split()
    return int(f[2]), int(f[4])   # lba, bytes


@pytest.mark.parametrize("case", ["missing", "not_an_image", "header", "kernel", "modules", "truncated"])
def test_bad_images_end_in_one_message(case, tiny_image, tmp_path):
    img = tmp_path / "bad.img"
    if case != "missing":
        img.write_bytes(tiny_image.read_bytes())
    want = {
        "missing": "cannot open the image",
        "not_an_image": "not a Fluid image",
        "header": "image header checksum mismatch",
        "kernel": "kernel region checksum mismatch",
        "modules": "modules region checksum mismatch",
        "truncated": "truncated: the modules region ends at byte",
    }[case]
    if case == "not_an_image":
        flip(img, 512)                         # the magic's first byte
    elif case == "header":
        flip(img, 512 + 40)                    # a region field
    elif case in ("kernel", "modules"):
        lba, n = region(tiny_image, case)
        flip(img, lba * 512 + n // 2)
    elif case == "truncated":
        lba, n = region(tiny_image, "modules")
        os.truncate(img, lba * 512 + n // 2)
    t0 = time.monotonic()
    rc, out = run_hosted(["--test", img], b"info\r", timeout=30)
    assert rc == EXIT_FAILURE, out
    assert want in out, out
    assert "fluid>" not in out
    assert time.monotonic() - t0 < 20


def test_bad_model_exits_unless_told_to_stay(tmp_path, tiny_image):
    img = tmp_path / "m.img"
    img.write_bytes(tiny_image.read_bytes())
    lba, n = region(tiny_image, "model")
    flip(img, lba * 512 + n - 10, 0x40)
    rc, out = run_hosted([img], b"info\r")
    assert rc == EXIT_FAILURE
    assert "model region checksum mismatch" in out and "no usable model, exiting" in out
    rc, out = run_hosted(["--stay", img], b"gen hello\r")
    assert rc == 0 and "no model is loaded" in out


def test_typing_ahead_during_a_generation_is_kept(tiny_image):
    vm = FluidHosted(tiny_image)
    try:
        vm.send("gen -n 24 --temp 0 Once upon a time\rtokenize Hello world!\r")
        out = vm.wait_for("[1, 15043, 3186, 29991]", timeout=60)
        assert "generated: 24 tokens" in out or "end of text" in out
    finally:
        vm.close()


def test_ctrl_c_stops_a_generation(mini_image):
    vm = FluidHosted(mini_image)
    try:
        vm.send("gen -n 500 --temp 0 Once upon a time\r")
        vm.wait_for("Once upon a time", timeout=30)
        time.sleep(0.05)
        vm.send("\x03")
        out = vm.wait_for("fluid> ", timeout=60)
        assert "[stopped]" in out, out[-300:]
        assert "generated: 500 tokens" not in out
    finally:
        vm.close()


def test_terminal_in_raw_mode(tiny_image):
    """On a real terminal: keys arrive one by one (raw mode), the line editor
    echoes them, Ctrl-C at the prompt cancels the line, Ctrl-D exits 0 and
    the terminal's settings are restored."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(HOSTED, [HOSTED, str(tiny_image)])
    buf = b""

    def read_until(needle, timeout=30):
        nonlocal buf
        end = time.monotonic() + timeout
        while needle not in buf:
            r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not r:
                raise AssertionError(f"timed out waiting for {needle!r}; got {buf[-2000:]!r}")
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
        return buf

    try:
        read_until(b"fluid> ")
        os.write(fd, b"tokenize Hello world!\r")
        read_until(b"[1, 15043, 3186, 29991]")
        os.write(fd, b"half a line\x03")
        read_until(b"^C")
        os.write(fd, b"\x04")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    # Echo came from the line editor, not the tty (raw mode turns ECHO off):
    # the typed line appears once.
    assert buf.count(b"tokenize Hello world!") == 1


def test_core_libc_calls_bind_to_llvm_libc():
    """The same bits as the unikernel need the same libm and printf: the
    hosted link puts llvm-libc before glibc, so every libc function the
    core calls is llvm-libc's, linked into the binary (nm: T), and only
    the platform's own calls (threads, terminal, files) go to glibc."""
    out = subprocess.run(["nm", HOSTED], capture_output=True, text=True, check=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if re.match(r"^[0-9a-f]+ T ", l)}
    for fn in ("expf", "sinf", "cosf", "powf", "sqrtf", "snprintf", "vsnprintf", "strtof", "strtol", "qsort",
               "memcpy"):
        assert fn in defined, f"{fn} is not llvm-libc's (linked from glibc?)"


@pytest.fixture(scope="module")
def mini_image(tmp_path_factory, gen_model):
    return build_image(tmp_path_factory.mktemp("hm") / "mini.img", gen_model("mini", "Q4_0"))


@pytest.fixture(scope="module")
def tinyllama_image(tmp_path_factory):
    model = ROOT / "models" / "tinyllama-shaped-Q4_0.gguf"
    assert model.exists(), "make test writes the default model first"
    return build_image(tmp_path_factory.mktemp("ht") / "tl.img", model)


@pytest.mark.parametrize("command", ["eval", "bench", "gen"])
def test_ctrl_c_stops_prefill_eval_and_bench(tinyllama_image, command):
    """The session polls between forward passes, so Ctrl-C ends a long
    prefill (gen's prompt, eval's tokens) and a benchmark too, and the
    prompt answers again at once."""
    ids = " ".join(str(300 + 7 * i) for i in range(500))
    line = {"eval": f"eval --top 1 1 {ids}", "bench": "bench -p 500 -n 500 -r 20",
            "gen": "gen -n 4 " + "once upon a time " * 120}[command]
    vm = FluidHosted(tinyllama_image)     # TinyLlama's shapes: a 500-token prefill takes seconds
    try:
        vm.send(line + "\r")
        vm.wait_for(line[-30:] + "\n", timeout=30)      # the line editor's echo is done
        time.sleep(0.3)
        t0 = time.monotonic()
        vm.send("\x03")
        out = vm.wait_for("fluid> ", timeout=60)
        assert "[stopped]" in out, out[-500:]
        assert time.monotonic() - t0 < 10
        if command == "eval":
            assert out.count('{"pos"') < 500
        assert "[1, 15043, 3186, 29991]" in vm.cmd("tokenize Hello world!")
    finally:
        vm.close()


def test_eval_takes_a_whole_context_of_ids(mini_image):
    """Words past the 64th were once glued into the last one; now a line
    holds as many words as it has room for."""
    vm = FluidHosted(mini_image)
    try:
        ids = [1] + [300 + 7 * i for i in range(199)]
        out = vm.cmd("eval --top 1 " + " ".join(map(str, ids)), timeout=120)
        assert out.count('{"pos"') == 200, out[-300:]
    finally:
        vm.close()


def test_numbers_are_decimal_and_seeds_not_negative(tiny_image):
    """Shell numbers are decimal ("010" is ten: strtol base 0 made it
    eight) and gen --seed takes what `set seed` takes: 0 or more."""
    vm = FluidHosted(tiny_image)
    try:
        assert "n_predict 10\n" in vm.cmd("set n_predict 010") + vm.cmd("set").replace("\r", "")
        assert "error: bad option or value: --seed -5" in vm.cmd("gen --seed -5 hello")
        assert "error: bad key or value 'seed -5'" in vm.cmd("set seed -5")
        assert "error" not in vm.cmd("gen -n 2 --seed 5 hello")
        assert "error: bad option or value: -n 0x10" in vm.cmd("gen -n 0x10 hello")
    finally:
        vm.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_image_header_ends_in_one_message(case, tiny_image, tmp_path):
    """The header check stage 2 makes, on the process: overlapping, out of
    order, oversized or unterminated fields end in one message naming the
    region, before any field is used."""
    img = tmp_path / "bad.img"
    img.write_bytes(tiny_image.read_bytes())
    words = craft(img, case)
    if case == "disk_short":
        words = "truncated: the modules region ends at byte"
    rc, out = run_hosted(["--test", img], b"info\r", timeout=30)
    assert rc == EXIT_FAILURE, out
    assert words in out, out
    assert "fluid>" not in out and out.count("\n") == 1, out
