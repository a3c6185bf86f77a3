"""Host-built unit tests of kernel code that needs no hardware: the E820
allocator (kernel/plat/pc/mm/phys.c), the image header and CRC-32 (checked against
Python's zlib), and the image tool's errors."""
import random
import subprocess
import zlib
import struct

import pytest

from conftest import BUILD, ROOT, build_image
from hostbuild import build


@pytest.fixture(scope="module")
def phys_test():
    return build("phys_test", ["tests/host/phys_test.c", "kernel/plat/pc/mm/phys.c"])


def test_allocator(phys_test):
    r = subprocess.run([str(phys_test)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all allocator checks passed" in r.stdout


def test_crc32_matches_zlib():
    exe = build("crc_test", ["tests/host/crc_test.c", "kernel/core/lib/crc32_fast.c"])
    rnd = random.Random(5).randbytes(300000)
    for data in (b"", b"a", b"123456789", bytes(range(256)) * 40, bytes(range(7, 250)) * 999, rnd):
        for piece in (1000, 1, 63, 255, 256, 257, 319, 4096 + 17, 1 << 20):
            if piece == 1 and len(data) > 20000:
                continue
            out = subprocess.run([str(exe), str(piece)], input=data, capture_output=True, check=True).stdout.split()
            assert [int(x, 16) for x in out] == [zlib.crc32(data)] * 2, (len(data), piece)


def test_image_header_layout_and_checksums(tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(bytes(range(256)) * 40000)   # 10 MB: three 4 MiB pieces
    img = tmp_path / "x.img"
    subprocess.run([str(BUILD / "tools" / "mkimage"), "-o", str(img),
                    "--stage1", str(BUILD / "bootloader" / "stage1.bin"),
                    "--stage2", str(BUILD / "bootloader" / "stage2.bin"),
                    "--kernel", str(BUILD / "kernel.bin"), "--model", str(model)], check=True)
    raw = img.read_bytes()
    assert raw[510:512] == b"\x55\xaa"
    part = raw[446:462]
    assert part[0] == 0x80 and part[4] == 0xDA
    start, count = struct.unpack("<II", part[8:16])
    assert start == 1 and count == len(raw) // 512 - 1
    hdr = raw[512:1024]
    assert hdr[:8] == b"FLUIDIMG"
    assert struct.unpack("<I", hdr[508:512])[0] == zlib.crc32(hdr[:508])
    names = ["stage2", "kernel", "modules", "cache", "model"]
    for i, name in enumerate(names):
        lba, nbytes, sectors, crc, flags, _ = struct.unpack("<QQIIII", hdr[24 + 32 * i:56 + 32 * i])
        assert nbytes <= sectors * 512
        if i != 0:
            assert lba % 2048 == 0, f"{name} region not 1 MiB aligned"
        data = raw[lba * 512:lba * 512 + nbytes]
        if flags & 2:      # chunked: CRC of the 4 MiB pieces' CRCs
            pieces = [zlib.crc32(data[i:i + (4 << 20)]) for i in range(0, len(data), 4 << 20)]
            assert crc == zlib.crc32(b"".join(struct.pack("<I", c) for c in pieces)), name
        elif flags & 1:
            assert crc == zlib.crc32(data), name
    lba, nbytes, _, _, flags, _ = struct.unpack("<QQIIII", hdr[24 + 128:56 + 128])
    assert flags == 3   # the model region's CRC is chunked
    assert raw[lba * 512:lba * 512 + nbytes] == model.read_bytes()


def test_mkimage_refuses_bad_input(tmp_path):
    tool = str(BUILD / "tools" / "mkimage")
    r = subprocess.run([tool, "--info", str(tmp_path / "nope.img")], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot open" in r.stderr
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 4096)
    r = subprocess.run([tool, "--info", str(junk)], capture_output=True, text=True)
    assert r.returncode == 1 and "not a Fluid image" in r.stderr
    r = subprocess.run([tool, "-o", str(tmp_path / "o.img"), "--stage1", str(junk),
                        "--stage2", str(junk), "--kernel", str(junk)], capture_output=True, text=True)
    assert r.returncode == 1 and "boot signature" in r.stderr
