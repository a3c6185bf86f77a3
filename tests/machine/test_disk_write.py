"""The kernel writing its own disk (issue 10 part 3, issue 11) through the
pc drivers, in QEMU: virtio-blk (VIRTIO_BLK_T_OUT, then T_FLUSH) and AHCI
(WRITE DMA EXT, then FLUSH CACHE EXT).

`tune` runs once in QEMU and writes its choices; the next boot runs them;
`tune save` writes the same choices again through the other controller, a
power cut is simulated at a sector of the commit, QEMU's blkdebug driver
makes writes or flushes fail (a failing flush proves the flush is sent),
and QEMU's write throttling makes the disk stop answering.  The disk
contents are checked by tools/pgo.py on the host, a reader independent of
the kernel.

What QEMU cannot model: a virtio queue of fewer than 3 descriptors or not
a power of two (QEMU refuses queue-size=2 and 3; the smallest it has, 4,
runs here), a device that completes descriptors it was never given, a
missing status byte.  tests/host/test_virtio_blk.py covers those against a
device model.
"""
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT, build_image, report_figure

sys.path.insert(0, str(ROOT / "tools"))
import fluidvm  # noqa: E402
from pgo_image import Medium  # noqa: E402
from tune_table import choice_key, modules_rows  # noqa: E402

MEM = "1G"
N = 13   # ops the mini Q4_0 model's forward pass calls (tests/prompt/test_tune.py HOT)
NC = 14  # tune's choices for them: mm_q4_0 twice (prefill, decode; test_tune.py WORKS)


def newest(img):
    with Medium(img) as m:
        cur = m.newest()
        return (m.slots[cur]["info"] if cur is not None else None), m.slots


def boot(img, **kw):
    return fluidvm.boot(img, target="qemu", mem=MEM, smp=2, **kw)


def off(vm):
    vm.send("poweroff\r")
    assert vm.wait_exit(60) == fluidvm.EXIT_CLEAN
    vm.close()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, gen_model):
    """`tune -r 1` in QEMU on virtio-blk: generation 1 on the disk."""
    d = tmp_path_factory.mktemp("dw")
    img = build_image(d / "mini.img", gen_model("mini", "Q4_0"))
    vm = boot(img)
    try:
        t0 = time.monotonic()
        out = vm.cmd("tune -r 1", timeout=1500)
        took = time.monotonic() - t0
        off(vm)
    finally:
        vm.close()
    assert re.search(r"wrote generation 1 to cache slot 0 of virtio-blk \S+", out), out[-2000:]
    m = re.search(r"chose (\d+) variants for (\d+) ops \((\d+) differ from the default\)", out)
    report_figure(f"tune -r 1 in QEMU ({vm.accel}), mini Q4_0: {took:.0f} s; {m.group(3)} of {m.group(1)} choices "
                  "run another build than the default")
    info, _ = newest(img)
    assert info["generation"] == 1 and len(info["choices"]) == NC
    return dict(dir=d, img=img, out=out, info=info)


def copy(tuned, name):
    dst = tuned["dir"] / name
    shutil.copy(tuned["img"], dst)
    return dst


def choices_in_force(log):
    m = re.search(r"tune: tuned choice in force for (\d+) of (\d+) choices \(generation (\d+)", log)
    return m and (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def test_tune_in_qemu_and_the_next_boot_runs_it(tuned):
    info = tuned["info"]
    vm = boot(tuned["img"])
    try:
        assert choices_in_force(vm.text()) == (NC, NC, 1), vm.text()[-2000:]
        rows = modules_rows(vm.cmd("modules"))
        for c in info["choices"]:
            assert rows[choice_key(c)][5] == c["sha256"].hex()[:16], c["op_name"]
        off(vm)
    finally:
        vm.close()


@pytest.mark.parametrize("disk", ["virtio", "ahci"])
def test_write_and_flush_round_trip(tuned, disk):
    """`tune save` through each controller: the host reads the new
    generation with the same choices; the next boot runs it."""
    img = copy(tuned, f"rt-{disk}.img")
    vm = boot(img, disk=disk)
    try:
        out = vm.cmd("tune save", timeout=120)
        name = "virtio-blk" if disk == "virtio" else "ahci"
        assert re.search(rf"wrote generation 2 to cache slot 1 of {name} ", out), out
        off(vm)
        info, slots = newest(img)
        assert info["generation"] == 2 and info["choices"] == tuned["info"]["choices"]
        assert slots[0]["state"] == "valid" and slots[0]["info"]["generation"] == 1
        vm = boot(img, disk=disk)
        assert choices_in_force(vm.text()) == (NC, NC, 2)
        off(vm)
    finally:
        vm.close()


@pytest.mark.parametrize("disk", ["virtio", "ahci"])
def test_power_cut_during_the_commit_keeps_generation_1(tuned, disk):
    img = copy(tuned, f"cut-{disk}.img")
    vm = boot(img, disk=disk)
    try:
        vm.send("tune save --stop-after 3\r")
        assert vm.wait_exit(60) == fluidvm.EXIT_CLEAN
        assert "SIMULATED POWER CUT after 3 of" in vm.text()
        vm.close()
        vm = boot(img, disk=disk)
        log = vm.text()
        assert "cache: slot 1: incomplete (interrupted write)" in log, log[-2000:]
        assert choices_in_force(log) == (NC, NC, 1)
        off(vm)
    finally:
        vm.close()
    info, slots = newest(img)
    assert info["generation"] == 1 and slots[1]["state"] == "torn"


RULES = {"write": "[inject-error]\nevent = \"none\"\niotype = \"write\"\nerrno = \"5\"\n",
         "flush": "[inject-error]\nevent = \"none\"\niotype = \"flush\"\nerrno = \"5\"\n"}
WHY = {("virtio", "write"): r"write at LBA \d+: I/O error \(VIRTIO_BLK_S_IOERR\)",
       ("virtio", "flush"): r"cache flush: I/O error \(VIRTIO_BLK_S_IOERR\)",
       ("ahci", "write"): r"WRITE DMA EXT at LBA \d+ \(\d+ sectors\): ATA status 0x[0-9a-f]{2} error 0x04",
       ("ahci", "flush"): r"FLUSH CACHE EXT: ATA status 0x[0-9a-f]{2} error 0x04"}


@pytest.mark.parametrize("disk", ["virtio", "ahci"])
@pytest.mark.parametrize("fails", ["write", "flush"])
def test_write_and_flush_errors_are_reported(tuned, disk, fails):
    """blkdebug fails every write (or every flush) with EIO: tune save says
    which command failed and how; the disk still reads, the previous
    generation stays in force.  A failing flush is only seen when the
    driver sends one."""
    img = copy(tuned, f"err-{disk}-{fails}.img")
    rules = tuned["dir"] / f"{fails}.rules"
    rules.write_text(RULES[fails])
    vm = boot(f"blkdebug:{rules}:{img}", disk=disk)
    try:
        for _ in range(2):   # the port / device still works after the error
            out = vm.cmd("tune save", timeout=120)
            assert re.search(r"error: tune save: writing generation 2 to slot 1 failed: " + WHY[(disk, fails)], out), out
        assert "generation 1" in vm.cmd("cache")
        off(vm)
    finally:
        vm.close()
    info, _ = newest(img)
    assert info["generation"] == 1 and info["choices"] == tuned["info"]["choices"]


def test_disk_that_stops_answering_ends_in_a_message(tuned):
    """Writes throttled to 10 bytes/s: the commit record's write does not
    complete in 30 s.  The driver says so, resets and disables the device,
    and the prompt comes back; later writes are refused at once.  Whatever
    reached the disk, the newest valid generation holds the same choices
    (QEMU finishes the request while the device resets)."""
    img = copy(tuned, "silent.img")
    vm = boot(img, drive_opts=",throttling.bps-write=10")
    try:
        out = vm.cmd("tune save", timeout=240)
        assert re.search(r"virtio-blk \S+: no answer in 30 s to a write at LBA \d+; device reset and disabled", out), out
        assert "error: tune save: writing generation 2 to slot 1 failed" in out
        out = vm.cmd("tune save", timeout=60)
        assert "disabled after an earlier failure: no answer in 30 s" in out, out
        off(vm)
    finally:
        vm.close()
    info, _ = newest(img)
    assert info["generation"] in (1, 2) and info["choices"] == tuned["info"]["choices"]


def test_smallest_virtio_queue_qemu_has(tuned):
    """queue-size=4 holds one request chain at a time: the model loads and
    a write round trip works.  QEMU itself refuses 2 (and 3), so a queue
    too small for one chain is tested against the device model only."""
    img = copy(tuned, "q4.img")
    vm = boot(img, device_opts=",queue-size=4")
    try:
        assert "model: loaded" in vm.text()
        assert "wrote generation 2" in vm.cmd("tune save", timeout=120)
        off(vm)
    finally:
        vm.close()
    r = subprocess.run(fluidvm.qemu_args(img, MEM, 1, test=True, device_opts=",queue-size=2") +
                       ["-serial", "none", "-monitor", "none"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "invalid queue-size property (2), must be > 2" in r.stderr
