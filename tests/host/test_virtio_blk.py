"""The virtio-blk driver (kernel/plat/pc/dev/virtio_blk.c, issue 11)
against a model of a legacy virtio-blk device (tests/host/vblk_harness.c)
that misbehaves as QEMU will not let it: QEMU refuses queue-size <= 2 and
non-powers of two, and has no device that never answers.  Each case must
end in a clear message and an error code, never a hang (the old driver
hung on a silent device and on a queue of 2: its waits had no deadline).

Run: /usr/bin/python3 -m pytest -q tests/host/test_virtio_blk.py
"""
import subprocess

import pytest

from conftest import ROOT
from hostbuild import build

BLK_EIO, BLK_ERANGE, BLK_ETIMEOUT, BLK_EDEAD = -1, -2, -4, -5


@pytest.fixture(scope="module")
def harness():
    return build("vblk_harness", ["tests/host/vblk_harness.c", "kernel/plat/pc/dev/virtio_blk.c"],
                 ["-iquote", str(ROOT / "tests" / "host" / "fakepc"), "-D_GNU_SOURCE",
                  "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])


def run(harness, scenario):
    r = subprocess.run([str(harness), scenario], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    facts = {}
    for line in r.stdout.splitlines():
        key, _, rest = line.partition(" ")
        facts.setdefault(key, []).append(rest)
    return facts, r.stdout


def code(facts, key):
    return int(facts[key][0].split()[0])


def test_write_then_flush_round_trip(harness):
    """9 MiB written in three requests, then one T_FLUSH (VIRTIO_BLK_F_FLUSH
    offered and negotiated), read back equal; a range past the end is
    refused before the device sees it."""
    f, out = run(harness, "rw")
    assert f["negotiated"] == ["0x200"] and f["writable"] == ["1"], out
    assert code(f, "write") == 0 and f["flushes"] == ["1 writes 3"], out
    assert code(f, "read") == 0 and f["match"] == ["1"], out
    assert code(f, "past-end") == BLK_ERANGE and "past the end of the disk" in f["past-end"][0]


def test_no_flush_when_the_device_does_not_offer_it(harness):
    """Without VIRTIO_BLK_F_FLUSH the legacy device is write-through (virtio
    1.x 5.2.5.1): nothing to negotiate, no flush sent, writes still land."""
    f, out = run(harness, "noflush")
    assert f["negotiated"] == ["0x0"] and code(f, "write") == 0 and f["flushes"] == ["0 writes 3"], out
    assert f["match"] == ["1"]


def test_read_only_device_is_never_written(harness):
    f, out = run(harness, "ro")
    assert f["writable"] == ["0 the device is read-only (VIRTIO_BLK_F_RO)"], out
    assert "write" not in f and code(f, "read") == 0


@pytest.mark.parametrize("qsize,why", [(2, "queue size 2 is below the 3 descriptors one request needs"),
                                       (3, "queue size 3 is not a power of two")])
def test_too_small_or_odd_queue_is_refused(harness, qsize, why):
    f, out = run(harness, f"qsize{qsize}")
    assert f["registered"] == ["0"], out
    assert any(why in c and "device not used" in c for c in f["console:"]), out


def test_queue_of_four_runs_one_request_at_a_time(harness):
    f, out = run(harness, "qsize4")
    assert code(f, "write") == 0 and code(f, "read") == 0 and f["match"] == ["1"], out


def test_silent_device_times_out_and_is_disabled(harness):
    """A device that never completes: BLK_ETIMEOUT after the deadline with
    one message, the device reset (so it stops using our memory), and every
    later call refused at once with the reason."""
    f, out = run(harness, "hang")
    assert code(f, "write") == BLK_ETIMEOUT and "no answer in 30 s to a write at LBA 100" in f["write"][0], out
    assert any("device reset and disabled" in c for c in f["console:"])
    assert code(f, "read") == BLK_EDEAD and "disabled after an earlier failure" in f["read"][0]
    assert f["resets"] == ["1"]


@pytest.mark.parametrize("scenario,key,why", [
    ("ioerr", "write", "write at LBA 100: I/O error (VIRTIO_BLK_S_IOERR)"),
    ("flusherr", "write", "cache flush: request not supported (VIRTIO_BLK_S_UNSUPP)"),
    ("nostatus", "read", "read at LBA 100: completed without writing its status byte"),
])
def test_device_errors_are_reported(harness, scenario, key, why):
    f, out = run(harness, scenario)
    assert code(f, key) == BLK_EIO and why in f[key][0], out


def test_completion_of_an_unknown_descriptor_disables_the_device(harness):
    f, out = run(harness, "badid")
    assert code(f, "write") == BLK_EIO and "completed descriptor 1, which heads no request in flight" in out, out
    assert code(f, "read") == BLK_EDEAD and f["resets"] == ["1"]
