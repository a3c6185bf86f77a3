"""Crafting damaged image headers for the tests (tests/machine, tests/hosted).

The layout comes from build/gen/fluid_layout.py (tools/genlayout.c prints it
from kernel/include/fluid/image.h), never restated here.  Each CASE names a
header fault and the words every reader (stage 2 in QEMU, fluid-hosted)
must print for it; craft(img, case) applies it to a good image in place.
"""
import importlib.util
import os
import zlib

from conftest import BUILD

_gen = BUILD / "gen" / "fluid_layout.py"
_spec = importlib.util.spec_from_file_location("fluid_layout", _gen)
L = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(L)
IH, RG = L.IMAGE_HEADER, L.REGION
SECTOR = L.FLUID_SECTOR_BYTES
HEADER_AT = L.FLUID_HEADER_LBA * SECTOR
KERNEL, MODULES, CACHE, MODEL = L.FLUID_REGION_KERNEL, L.FLUID_REGION_MODULES, L.FLUID_REGION_CACHE, L.FLUID_REGION_MODEL


def read_header(img):
    with open(img, "rb") as f:
        f.seek(HEADER_AT)
        return bytearray(f.read(IH.size))


def write_header(img, h, fix_crc=True):
    if fix_crc:
        IH.put(h, "header_crc", zlib.crc32(bytes(h[:IH.off("header_crc")])))
    with open(img, "r+b") as f:
        f.seek(HEADER_AT)
        f.write(h)


def region(h, i, field):
    return RG.get(h, field, IH.off("region") + RG.size * i)


def set_region(h, i, field, value):
    RG.put(h, field, value, IH.off("region") + RG.size * i)


DONE = "done"   # a case that wrote the file itself


def _crc_not_fixed(img, h):
    set_region(h, KERNEL, "bytes", L.FLUID_KERNEL_MAX_BYTES + SECTOR)   # too large for its load area...
    write_header(img, h, fix_crc=False)                                 # ...but the CRC says so first
    return DONE


def _overlap(img, h):
    set_region(h, KERNEL, "lba", region(h, L.FLUID_REGION_STAGE2, "lba"))


def _order(img, h):
    k, m = region(h, KERNEL, "lba"), region(h, MODULES, "lba")
    set_region(h, KERNEL, "lba", m)
    set_region(h, MODULES, "lba", k)


def _past_image(img, h):
    set_region(h, CACHE, "sectors", IH.get(h, "image_sectors"))


def _bytes_near_2_64(img, h):
    set_region(h, MODEL, "bytes", 2**64 - 1)


def _lba_near_2_64(img, h):
    set_region(h, CACHE, "lba", 2**64 - 8)   # lba + sectors would wrap (the cache region is never empty)


def _name_unterminated(img, h):
    IH.put(h, "model_name", b"M" * IH.fields["model_name"][1])


def _flags(img, h):
    set_region(h, MODEL, "flags", 0x80)


def _disk_short(img, h):
    os.truncate(img, region(h, MODULES, "lba") * SECTOR + region(h, MODULES, "bytes") // 2)
    return DONE   # the header is untouched


# case -> (how, what every reader says)
CASES = {
    "crc_before_fields": (_crc_not_fixed, "image header checksum mismatch"),
    "overlap": (_overlap, "image header: the kernel region overlaps the header or the region before it"),
    "out_of_order": (_order, "image header: the modules region overlaps the header or the region before it"),
    "past_the_image": (_past_image, "image header: the cache region ends past the end of the image"),
    "bytes_near_2_64": (_bytes_near_2_64, "image header: the model region holds more bytes than its sectors"),
    "lba_near_2_64": (_lba_near_2_64, "image header: the cache region ends past the end of the image"),
    "name_unterminated": (_name_unterminated, "image header: the model name is not terminated inside its field"),
    "unknown_flags": (_flags, "image header: the model region has unknown flags"),
    "disk_short": (_disk_short, None),   # the reader's own words: see the tests
}


def craft(img, case):
    """Apply CASES[case] to the image file `img` (a good image, in place)."""
    how, words = CASES[case]
    h = read_header(img)
    if how(img, h) is not DONE:
        write_header(img, h)
    return words
