"""The PGO loop without QEMU: what a user does with a real machine.

profile --serial DEV: a pty stands in for the host's serial adapter, and
the real kernel (build/fluid-hosted, its console on the pty's other end)
for the machine; the tool opens the pty raw at the baud rate, runs the
workload (or just `prof export`, or waits for the user's), and saves the
JSON the kernel printed.  profile --log FILE: a console log captured from
the kernel.  apply --disk: a file (a copy of an image with spare room
after it, as on a USB stick bigger than the image) stands in for
/dev/sdX; crash points as pgo-apply's; boot of the "disk" says which
generation is active.  Every refusal writes nothing and says why.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tty
import zlib
from pathlib import Path

import pytest

from conftest import ROOT, build_image

sys.path.insert(0, str(ROOT / "tools"))
import fluidvm  # noqa: E402
import gguf  # noqa: E402
import pgo  # noqa: E402

PROMPT = "Once upon a time"
N = 8
MEM = "1G"


def pgo_run(*args):
    return pgo.main([str(a) for a in args])


def make_model(out, preset):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_model.py"), "--preset", preset, "--type", "Q4_0",
                    "--seed", "7", "-q", "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("baremetal")
    model = make_model(d / "tiny.gguf", "tiny")
    img = build_image(d / "base.img", model)
    # What the kernel says over a pipe: the independent record of this
    # image's greedy text for PROMPT.
    vm = fluidvm.boot(img, target="hosted", mem=MEM, smp=2)
    try:
        boot_log = vm.text()
        out = vm.cmd(f"gen -n {N} --temp 0 --seed 1 {PROMPT}")
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    text = out[:re.search(r"\n?\[prompt: \d+ tokens", out).start()].strip("\r\n")
    tag = re.search(r"tag (\S+), \d+ cores", boot_log).group(1)
    return dict(dir=d, model=model, img=img, text=text, tag=tag, kv=gguf.GGUFReader(model).kv)


class Machine:
    """build/fluid-hosted with its console on a pty's master side (raw,
    as a UART is): the slave side, self.dev, is the "serial device"."""

    def __init__(self, img):
        self.master, self.slave = os.openpty()
        self.dev = os.ttyname(self.slave)
        tty.setraw(self.slave)         # a UART has no line discipline: no echo, no line editing
        self.err = open(Path(img).with_suffix(".stderr"), "wb")
        self.proc = subprocess.Popen([fluidvm.HOSTED, "--test", "--mem", MEM, "--threads", "2", str(img)],
                                     stdin=self.master, stdout=self.master, stderr=self.err)
        os.close(self.master)          # the process holds it: when it dies the line hangs up

    def type(self, text, delay=0.0):
        """Type at the machine's own keyboard (here: into its console)."""
        time.sleep(delay)
        os.write(self.slave, text.encode())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.slave)
        self.err.close()


@pytest.fixture
def machine(env):
    ms = []

    def start(img=None):
        m = Machine(img or env["img"])
        ms.append(m)
        return m

    yield start
    for m in ms:
        m.close()


def saved(profiles):
    return sorted(p for p in Path(profiles).glob("*/*/*.json") if not p.name.endswith(".plan.json"))


def check_against_model(prof, env):
    """What the kernel exported agrees with the GGUF file itself."""
    kv = env["kv"]
    sh = prof["model"]["shapes"]
    assert sh["n_embd"] == kv["llama.embedding_length"] and sh["n_layer"] == kv["llama.block_count"]
    assert sh["n_ff"] == kv["llama.feed_forward_length"] and sh["n_vocab"] == len(kv["tokenizer.ggml.tokens"])
    assert prof["cpu"]["tag"] == env["tag"]


# ---- profile --serial ----

def test_serial_profile_runs_the_workload(env, machine, tmp_path):
    m = machine()
    path = Path(pgo_run("profile", "--serial", m.dev, "--baud", 115200, "--profiles-dir", tmp_path / "p",
                        "--prompt", PROMPT, "-n", N, "--quiet", "--prompt-timeout", 60, "--poweroff"))
    prof = json.loads(path.read_text())
    check_against_model(prof, env)
    assert prof["workload"]["runs"] == 1 and prof["workload"]["generated_tokens"] == N
    assert prof["capture"]["output"] == env["text"], "the same greedy text as over a pipe"
    assert prof["capture"]["source"] == "serial" and m.dev in prof["capture"]["image"]
    assert path.parent == tmp_path / "p" / prof["model"]["id"] / env["tag"]
    assert m.proc.wait(30) == fluidvm.EXIT_CLEAN, "--poweroff powered the machine off"


def test_serial_export_only_profiles_what_ran_before(env, machine, tmp_path):
    m = machine()
    m.type(f"gen -n 3 --temp 0 {PROMPT}\r", delay=0.5)      # the user's own run, at the machine
    time.sleep(1.0)
    path = pgo_run("profile", "--serial", m.dev, "--export-only", "--profiles-dir", tmp_path, "--prompt-timeout", 60)
    prof = json.loads(Path(path).read_text())
    check_against_model(prof, env)
    assert prof["workload"]["runs"] == 1 and prof["workload"]["generated_tokens"] == 3
    assert m.proc.poll() is None, "without --poweroff the machine stays at its prompt"


def test_serial_wait_takes_the_users_export(env, machine, tmp_path):
    m = machine()
    typist = threading.Thread(target=m.type, args=(f"gen -n 2 --temp 0 {PROMPT}\rprof export\r", 1.0))
    typist.start()
    path = pgo_run("profile", "--serial", m.dev, "--wait", "--timeout", 60, "--profiles-dir", tmp_path)
    typist.join()
    prof = json.loads(Path(path).read_text())
    assert prof["workload"]["generated_tokens"] == 2
    check_against_model(prof, env)


def test_serial_line_that_hangs_up(env, machine, tmp_path, capsys):
    m = machine()
    threading.Timer(1.5, m.proc.kill).start()
    t0 = time.monotonic()
    with pytest.raises(SystemExit):
        pgo_run("profile", "--serial", m.dev, "--wait", "--timeout", 60, "--profiles-dir", tmp_path)
    assert time.monotonic() - t0 < 20, "a dead line is noticed, not waited out"
    assert "hung up" in capsys.readouterr().err
    assert not saved(tmp_path)


def test_serial_silent_line_times_out(tmp_path, capsys):
    master, slave = os.openpty()          # nothing answers on the other end
    try:
        t0 = time.monotonic()
        with pytest.raises(SystemExit):
            pgo_run("profile", "--serial", os.ttyname(slave), "--prompt-timeout", 2, "--profiles-dir", tmp_path)
        assert time.monotonic() - t0 < 15
        assert "timed out after 2" in capsys.readouterr().err
    finally:
        os.close(master)
        os.close(slave)
    assert not saved(tmp_path)


@pytest.mark.parametrize("case", ["not-a-tty", "missing", "bad-baud"])
def test_serial_device_errors(tmp_path, capsys, case):
    dev = tmp_path / "ttyFAKE"
    if case == "not-a-tty":
        dev.write_text("")
    args = ["profile", "--serial", dev, "--profiles-dir", tmp_path / "p"]
    if case == "bad-baud":
        master, slave = os.openpty()
        args = ["profile", "--serial", os.ttyname(slave), "--baud", 12345, "--profiles-dir", tmp_path / "p"]
    try:
        with pytest.raises(SystemExit):
            pgo_run(*args)
    finally:
        if case == "bad-baud":
            os.close(master)
            os.close(slave)
    err = capsys.readouterr().err
    want = {"not-a-tty": "is not a terminal", "missing": "No such file", "bad-baud": "--baud 12345"}[case]
    assert want in err
    assert not (tmp_path / "p").exists()


# ---- profile --log ----

@pytest.fixture(scope="module")
def console_log(env):
    """A console log as a terminal program records it from COM1 (CR LF line
    ends): boot, an export of nothing, a gen, an export of that gen."""
    vm = fluidvm.boot(env["img"], target="hosted", mem=MEM, smp=2)
    try:
        vm.cmd("prof export")
        vm.cmd(f"gen -n {N} --temp 0 --seed 1 {PROMPT}")
        vm.cmd("prof export")
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    path = env["dir"] / "console.log"
    path.write_bytes(bytes(vm.log).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return path


def test_log_profile_takes_the_last_export(env, console_log, tmp_path):
    assert console_log.read_text().count(pgo.pgo_capture.PROF_BEGIN) == 2
    prof = json.loads(Path(pgo_run("profile", "--log", console_log, "--profiles-dir", tmp_path)).read_text())
    check_against_model(prof, env)
    assert prof["workload"]["runs"] == 1 and prof["workload"]["generated_tokens"] == N
    assert prof["capture"]["output"] == env["text"]
    assert prof["capture"]["command"] == f"gen -n {N} --temp 0 --seed 1 {PROMPT}"


@pytest.mark.parametrize("damage,want", [
    ("no-marker", "no -----BEGIN FLUID PROFILE----- line"),
    ("cut-off", "is cut off"),
    ("byte-lost", "is not valid JSON"),
    ("other-schema", "not 'fluid-profile' version 1"),
])
def test_damaged_log_is_refused(console_log, tmp_path, capsys, damage, want):
    text = console_log.read_bytes()
    end = text.rfind(pgo.pgo_capture.PROF_END.encode())
    if damage == "no-marker":
        text = text.replace(pgo.pgo_capture.PROF_BEGIN.encode(), b"")
    elif damage == "cut-off":
        text = text[:end - 200]
    elif damage == "byte-lost":
        i = text.rfind(b'"total_cycles"')
        text = text[:i] + text[i + 1:]
    else:
        text = text.replace(b'"schema":"fluid-profile"', b'"schema":"something-else"')
    bad = tmp_path / "bad.log"
    bad.write_bytes(text)
    with pytest.raises(SystemExit):
        pgo_run("profile", "--log", bad, "--profiles-dir", tmp_path / "p")
    assert want in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


# ---- apply --disk ----

SPARE = 16 << 20          # the stick is bigger than the image


@pytest.fixture(scope="module")
def plan(env):
    """A plan from a serial profile of this model (the bare-metal loop)."""
    profiles = env["dir"] / "profiles"
    m = Machine(env["img"])
    try:
        pgo_run("profile", "--serial", m.dev, "--profiles-dir", profiles, "--prompt", PROMPT, "-n", N, "--quiet",
                "--prompt-timeout", 60, "--poweroff")
    finally:
        m.close()
    path = Path(pgo_run("analyze", "--profiles-dir", profiles))
    p = json.loads(path.read_text())
    assert any(x["opt_level"] for x in p["modules"]), "the plan rebuilds something"
    return dict(path=path, plan=p, planned={x["module"] for x in p["modules"] if x["opt_level"]})


def make_disk(env, name):
    disk = env["dir"] / name
    shutil.copy(env["img"], disk)
    with open(disk, "ab") as f:
        f.write(os.urandom(SPARE))            # whatever the stick held before
    return disk


def outside_cache(path):
    r = pgo.read_image_header(path)["regions"][pgo.REGION_CACHE]
    data = Path(path).read_bytes()
    return data[:r["lba"] * 512] + data[(r["lba"] + r["sectors"]) * 512:]


def boot_log(disk):
    vm = fluidvm.boot(disk, target="hosted", mem=MEM, smp=2)
    try:
        log = vm.text()
        mods = vm.cmd("modules")
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    cached = {f[1] for f in (line.split() for line in mods.splitlines()) if len(f) == 8 and f[2] == "cache"}
    return log, cached


def test_apply_disk_with_crash_points(env, plan, tmp_path):
    disk = make_disk(env, "disk.img")
    untouched = outside_cache(disk)
    cache = tmp_path / "cache"
    pgo_run("apply", "--plan", plan["path"], "--disk", disk, "--cache-dir", cache)
    log, cached = boot_log(disk)
    assert f"cache: tag {env['tag']} found, generation 1 (slot 0)" in log
    assert cached == plan["planned"]
    # Generation 2 (other -O levels, no shapes), killed at each point of its
    # write: before anything, after the header, half way, after everything
    # but the commit record.  Generation 1 stays in force every time.
    p2 = dict(plan["plan"])
    p2["modules"] = [dict(x, opt_level=(1 if x["opt_level"] != 1 else 2)) if x["opt_level"] else x
                     for x in plan["plan"]["modules"]]
    p2_path = tmp_path / "plan2.json"
    p2_path.write_text(json.dumps(p2))
    common = ["--plan", p2_path, "--disk", disk, "--cache-dir", tmp_path / "cache2", "--no-shapes"]
    shaped = any(x.get("shapes") for x in plan["plan"]["modules"] if x["opt_level"])
    for stop in (0, 512, 0.5, -512):
        pgo_run("apply", *common, "--stop-after", stop)
        log, cached = boot_log(disk)
        assert f"cache: tag {env['tag']} found, generation 1 (slot 0)" in log, stop
        assert ("specialised for" in log) == shaped, "generation 1's shaped modules run"
        assert cached == plan["planned"], stop
        if stop:
            assert "cache: slot 1: incomplete (interrupted write)" in log, stop
    pgo_run("apply", *common)
    log, cached = boot_log(disk)
    assert f"cache: tag {env['tag']} found, generation 2 (slot 1)" in log
    assert "specialised for" not in log and cached == plan["planned"]
    assert outside_cache(disk) == untouched, "nothing outside the cache region was written"


def test_make_pgo_apply_disk(env, plan, tmp_path):
    """The same through make, as the README tells it: make pgo-apply DISK=..."""
    disk = make_disk(env, "disk-make.img")
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "pgo-apply", f"DISK={disk}",
                        f"PGO_PROFILES={env['dir'] / 'profiles'}", f"PGO_CACHE={tmp_path / 'cache'}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"wrote generation 1 to slot 0 of {disk}" in r.stdout
    log, cached = boot_log(disk)
    assert cached == plan["planned"]


def _garbage(env, disk):
    disk.write_bytes(os.urandom(20 << 20))


def _truncated(env, disk):
    shutil.copy(env["img"], disk)
    os.truncate(disk, os.path.getsize(env["img"]) // 2)


def _other_model(env, disk):
    mini = make_model(env["dir"] / "mini.gguf", "mini")
    build_image(disk, mini)


def _old_kernel_abi(env, disk):
    """An image whose kernel and modules speak module ABI 1 (as a stick
    written before ABI 2 would): its first module's header says so."""
    shutil.copy(env["img"], disk)
    L = pgo.L
    r = pgo.read_image_header(disk)["regions"][pgo.pgo_image.REGION_MODULES]
    with open(disk, "r+b") as f:
        f.seek(r["lba"] * 512)
        h = bytearray(f.read(L.FLUID_MOD_HEADER_BYTES))
        L.MOD_HEADER.put(h, "abi_version", L.FLUID_MOD_ABI_VERSION - 1)
        L.MOD_HEADER.put(h, "header_crc", zlib.crc32(bytes(h[:L.MOD_HEADER.off("header_crc")])))
        f.seek(r["lba"] * 512)
        f.write(h)


@pytest.mark.parametrize("make,want", [
    (_garbage, "no Fluid image header at sector 1"),
    (_truncated, "was not written completely"),
    (_other_model, "the disk holds model mini.gguf"),
    (_old_kernel_abi, "its kernel loads module ABI"),
])
def test_apply_refuses_a_disk_that_does_not_match(env, plan, tmp_path, capsys, make, want):
    disk = tmp_path / "disk.img"
    make(env, disk)
    before = disk.read_bytes()
    with pytest.raises(SystemExit):
        pgo_run("apply", "--plan", plan["path"], "--disk", disk, "--cache-dir", tmp_path / "cache")
    err = capsys.readouterr().err
    assert f"refusing {disk}" in err and want in err, err
    assert disk.read_bytes() == before, "a refused disk is not written"
    assert not (tmp_path / "cache").exists(), "nothing is built for a refused disk"
