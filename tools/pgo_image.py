"""Fluid images and boot disks as the PGO tools see them: the image header,
module files, and the two-slot cache region (formats: cache/README.md; C
definitions: kernel/include/fluid/image.h and modules/module_abi.h, read
through build/gen/fluid_layout.py, which tools/genlayout.c prints).

    m = Medium(path)              an image file, or a disk (block device or a
                                  file standing in for one) holding an image
    m.header, m.slots             checked image header; both cache slots parsed
    m.write_slot(i, data)         the crash-safe two-step write (fsync order)

Every check mirrors the kernel's (kernel/core/mod/modfmt.c, cache.c); a
failure raises ImageError whose text says what is wrong, never a
traceback for bad input.
"""
import hashlib
import importlib.util
import os
import stat
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITER = "fluid pgo.py 1"


class ImageError(Exception):
    """A file or disk that is not what a Fluid image must be; str() says why."""


def load_layout():
    """build/gen/fluid_layout.py, or $FLUID_LAYOUT (make sets it to its
    build dir's, B=...; make writes it before any target that runs the PGO
    tools); a missing or stale one is refused, not guessed at: raises
    ImportError with the fix."""
    gen = Path(os.environ.get("FLUID_LAYOUT") or ROOT / "build" / "gen" / "fluid_layout.py")
    fix = "run `make layout` (make image and make test do it too)"
    if not gen.exists():
        raise ImportError(f"{gen} is missing: {fix}")
    spec = importlib.util.spec_from_file_location("fluid_layout", gen)
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    stale = [s for s in layout.SOURCES if (ROOT / s).stat().st_mtime > gen.stat().st_mtime]
    if stale:
        raise ImportError(f"{gen} is older than {', '.join(stale)}: {fix}")
    return layout


L = load_layout()
IH, RG, MH, MS, ME = L.IMAGE_HEADER, L.REGION, L.MOD_HEADER, L.MOD_SHAPE, L.MOD_ENTRY
CS, CE, CT, CC = L.CACHE_SLOT, L.CACHE_ENTRY, L.CACHE_TRAILER, L.CACHE_CHOICE
SECTOR = L.FLUID_SECTOR_BYTES
REGION_KERNEL, REGION_MODULES = L.FLUID_REGION_KERNEL, L.FLUID_REGION_MODULES
REGION_CACHE, REGION_MODEL = L.FLUID_REGION_CACHE, L.FLUID_REGION_MODEL
CACHE_SLOT_BYTES = L.FLUID_CACHE_SLOT_BYTES
MOD_HEADER_BYTES = L.FLUID_MOD_HEADER_BYTES
MOD_FILE_ALIGN = L.FLUID_MOD_FILE_ALIGN


def cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


# ---- image header ----

def parse_image_header(h, where):
    """Check the 512-byte image header (as mkimage --info and stage 2 do).
    Returns {regions: [{lba, bytes, sectors, crc32, flags}], model_name,
    image_sectors}; raises ImageError naming `where`."""
    if len(h) < IH.size:
        raise ImageError(f"{where}: too short to hold a Fluid image header")
    if IH.get(h, "magic") != L.FLUID_IMAGE_MAGIC:
        raise ImageError(f"{where}: no Fluid image header at sector {L.FLUID_HEADER_LBA} (magic "
                         f"{IH.get(h, 'magic')!r}, want {L.FLUID_IMAGE_MAGIC!r}): not a Fluid image")
    if IH.get(h, "header_crc") != zlib.crc32(h[:IH.off("header_crc")]):
        raise ImageError(f"{where}: image header checksum mismatch (damaged header)")
    if IH.get(h, "version") != L.FLUID_IMAGE_VERSION:
        raise ImageError(f"{where}: image format version {IH.get(h, 'version')}, this build writes "
                         f"{L.FLUID_IMAGE_VERSION}")
    regions = []
    for i in range(L.FLUID_REGION_COUNT):
        base = IH.off("region") + RG.size * i
        regions.append({f: RG.get(h, f, base) for f in ("lba", "bytes", "sectors", "crc32", "flags")})
    return dict(regions=regions, model_name=cstr(IH.get(h, "model_name")),
                image_sectors=IH.get(h, "image_sectors"))


def read_image_header(path):
    """The checked header of the image file or disk at `path` (see
    parse_image_header); raises ImageError."""
    try:
        with open(path, "rb") as f:
            f.seek(L.FLUID_HEADER_LBA * SECTOR)
            h = f.read(IH.size)
    except OSError as e:
        raise ImageError(f"{path}: {e.strerror}") from None
    return parse_image_header(h, str(path))


def model_crc(header):
    """The image's model region CRC-32 as the kernel prints it in model ids
    (`<name>-<crc32 hex>`, kernel/core/shell/cmd_mod.c), or None without a model."""
    r = header["regions"][REGION_MODEL]
    return f"{r['crc32']:08x}" if r["bytes"] else None


def model_id_crc(model_id):
    """The CRC part of a model id (`<name>-<8 hex digits>`), or None."""
    tail = (model_id or "").rsplit("-", 1)[-1]
    return tail if len(tail) == 8 and all(c in "0123456789abcdef" for c in tail) else None


# ---- module files ----

def parse_module(buf, off=0, avail=None):
    """Check a module file (as the kernel's modfmt_check); returns a dict or
    raises ValueError with the reason."""
    avail = len(buf) - off if avail is None else avail
    if avail < MOD_HEADER_BYTES:
        raise ValueError("truncated module header")
    h = bytes(buf[off:off + MOD_HEADER_BYTES])
    if MH.get(h, "magic") != L.FLUID_MOD_MAGIC:
        raise ValueError("bad module magic")
    if MH.get(h, "header_crc") != zlib.crc32(h[:MH.off("header_crc")]):
        raise ValueError("module header checksum mismatch")
    body_bytes = MH.get(h, "body_bytes")
    if body_bytes > avail - MOD_HEADER_BYTES:
        raise ValueError("module body truncated")
    sha = MH.get(h, "sha256")
    body = bytes(buf[off + MOD_HEADER_BYTES:off + MOD_HEADER_BYTES + body_bytes])
    if hashlib.sha256(body).digest() != sha:
        raise ValueError("module body SHA-256 mismatch")
    shapes, entries = {}, []
    for i in range(min(MH.get(h, "n_shapes"), L.FLUID_MOD_MAX_SHAPES)):
        base = MH.off("shape") + MS.size * i
        shapes[MS.get(h, "id", base)] = MS.get(h, "value", base)
    params = {}
    for i in range(min(MH.get(h, "n_params"), L.FLUID_MOD_MAX_PARAMS)):
        base = MH.off("param") + MS.size * i
        params[L.PARAMS.get(MS.get(h, "id", base), "?")] = MS.get(h, "value", base)
    for i in range(min(MH.get(h, "n_entries"), L.FLUID_MOD_MAX_ENTRIES)):
        base = MH.off("entry") + ME.size * i
        entries.append((ME.get(h, "op", base), ME.get(h, "offset", base)))
    return dict(name=cstr(MH.get(h, "name")), march=cstr(MH.get(h, "march")), compiler=cstr(MH.get(h, "compiler")),
                features=MH.get(h, "features"), opt=MH.get(h, "opt_level"), flags=MH.get(h, "flags"),
                body_bytes=body_bytes, sha256=sha, file=bytes(buf[off:off + MOD_HEADER_BYTES + body_bytes]),
                shapes=shapes, params=params, entries=entries, abi=MH.get(h, "abi_version"),
                header_bytes=MH.get(h, "header_bytes"), text_bytes=MH.get(h, "text_bytes"))


# ---- cache slots ----

def parse_slot(data):
    """Check one cache slot (bytes from its start); returns (state, why, info).
    Mirrors kernel/core/mod/modfmt.c; state is 'valid' or a reason class."""
    if len(data) < CS.size:
        return "unreadable", "short", None
    h = data[:CS.size]
    if h == bytes(CS.size):
        return "empty", "never written (all zeros)", None
    if CS.get(h, "magic") != L.FLUID_CACHE_MAGIC:
        return "bad-magic", "bad magic", None
    version, hbytes, gen, slot_bytes, n_entries, reg_off, reg_bytes, hcrc = (CS.get(h, f) for f in (
        "version", "header_bytes", "generation", "slot_bytes", "n_entries", "registry_offset", "registry_bytes",
        "header_crc"))
    if version != L.FLUID_CACHE_VERSION or hbytes != CS.size:
        return "bad-version", f"cache format version {version}, this build reads {L.FLUID_CACHE_VERSION}", None
    if hcrc != zlib.crc32(h[:CS.off("header_crc")]):
        return "bad-header", "header checksum mismatch", None
    if (gen == 0 or slot_bytes % SECTOR or slot_bytes < CS.size + CT.size or slot_bytes > CACHE_SLOT_BYTES
            or n_entries > L.FLUID_CACHE_MAX_ENTRIES or reg_off != CS.size or reg_bytes != n_entries * CE.size
            or reg_off + reg_bytes > slot_bytes - CT.size):
        return "bad-header", "inconsistent header", None
    ch_off, n_ch = CS.get(h, "choice_offset"), CS.get(h, "n_choices")
    if (ch_off != 0 if n_ch == 0 else
            n_ch > L.FLUID_CACHE_MAX_CHOICES or ch_off % L.FLUID_CACHE_CHOICE_ALIGN or ch_off < reg_off + reg_bytes
            or ch_off + n_ch * CC.size > slot_bytes - CT.size):
        return "bad-header", "inconsistent tuned-choice table", None
    if len(data) < slot_bytes:
        return "torn", "slot shorter than its header says", None
    t = data[slot_bytes - CT.size:slot_bytes]
    if CT.get(t, "magic") != L.FLUID_CACHE_END_MAGIC or CT.get(t, "trailer_crc") != zlib.crc32(t[:CT.off("trailer_crc")]):
        return "torn", f"no commit record (generation {gen} write interrupted)", dict(generation=gen)
    tgen = CT.get(t, "generation")
    if tgen != gen or CT.get(t, "header_crc") != hcrc or CT.get(t, "slot_bytes") != slot_bytes:
        return "torn", f"commit record is for generation {tgen}", dict(generation=gen)
    reg = data[reg_off:reg_off + reg_bytes]
    if hashlib.sha256(reg).digest() != CS.get(h, "registry_sha256"):
        return "bad-registry", "registry SHA-256 mismatch", None
    entries = []
    for i in range(n_entries):
        e = reg[i * CE.size:(i + 1) * CE.size]
        off, nbytes = CE.get(e, "offset"), CE.get(e, "bytes")
        entries.append(dict(tag=cstr(CE.get(e, "tag")), name=cstr(CE.get(e, "name")), offset=off, bytes=nbytes,
                            sha256=CE.get(e, "sha256"), opt=CE.get(e, "opt_level"), flags=CE.get(e, "flags"),
                            file=data[off:off + nbytes]))
    info = dict(generation=gen, slot_bytes=slot_bytes, entries=entries, created=CS.get(h, "created_unix"),
                writer=cstr(CS.get(h, "writer")), model_id=cstr(CS.get(h, "model_id")), data=data[:slot_bytes])
    info["choices"], info["choices_error"] = parse_choices(data, h)
    info["choice_meta"] = {f: (CS.get(h, f) if f == "choice_tsc_hz" else cstr(CS.get(h, f)))
                           for f in ("choice_tag", "choice_cpu", "choice_model_id", "choice_tsc_hz")}
    return "valid", "", info


def parse_choices(data, h):
    """The tuned choices of a checked slot (the kernel's `tune`; as
    modfmt_slot_choices checks them): ([dict(op, phase, op_name, module, march,
    opt, flags, sha256, cycles, default_cycles)], None), or ([], reason)
    when the table is damaged (the slot's modules stay usable)."""
    off, n = CS.get(h, "choice_offset"), CS.get(h, "n_choices")
    table = data[off:off + n * CC.size]
    if n and hashlib.sha256(table).digest() != CS.get(h, "choice_sha256"):
        return [], "tuned-choice table SHA-256 mismatch"
    out = []
    for i in range(n):
        b = table[i * CC.size:(i + 1) * CC.size]
        op, phase = CC.get(b, "op"), CC.get(b, "phase")
        if op >= L.OP_COUNT or phase > L.FLUID_CHOICE_DECODE or any((c["op"], c["phase"]) == (op, phase)
                                                                    for c in out):
            return [], f"tuned choice {i}: op {op} (phase {phase}) unknown or repeated"
        out.append(dict(op=op, phase=phase, op_name=L.OPS[op], module=cstr(CC.get(b, "module")),
                        march=cstr(CC.get(b, "march")),
                        opt=CC.get(b, "opt_level"), flags=CC.get(b, "flags"), sha256=CC.get(b, "sha256"),
                        cycles=CC.get(b, "cycles"), default_cycles=CC.get(b, "default_cycles")))
    return out, None


def newest_slot(slots):
    """Index of the valid slot with the highest generation, or None."""
    valid = [(s["info"]["generation"], i) for i, s in enumerate(slots) if s["state"] == "valid"]
    return max(valid)[1] if valid else None


def build_slot(generation, entries, model_id, choices=(), choice_meta=None):
    """Bytes of a slot: header, registry, module files, tuned choices,
    trailer.  entries: [dict(tag, name, file, opt, flags)] (file = whole
    module file); choices: parse_choices() records to carry, with
    choice_meta (the slot info's "choice_meta": the CPU tag, CPU, model and
    TSC rate they were measured with).  Raises ImageError when they do not
    fit one slot or a name is too long."""
    reg_off = CS.size
    reg_bytes = len(entries) * CE.size
    off = reg_off + reg_bytes
    body = bytearray()
    registry = bytearray()
    for e in entries:
        off = (off + MOD_FILE_ALIGN - 1) // MOD_FILE_ALIGN * MOD_FILE_ALIGN
        pad = off - (reg_off + reg_bytes + len(body))
        body += bytes(pad)
        m = parse_module(e["file"])
        tag = e["tag"].encode()
        name = m["name"].encode()
        if len(tag) >= CE.fields["tag"][1] or len(name) >= CE.fields["name"][1]:
            raise ImageError(f"tag or module name too long: {e['tag']} {m['name']}")
        r = bytearray(CE.size)
        for f, v in (("tag", tag), ("name", name), ("offset", off), ("bytes", len(e["file"])),
                     ("sha256", m["sha256"]), ("opt_level", m["opt"]), ("flags", m["flags"])):
            CE.put(r, f, v)
        registry += r
        body += e["file"]
        off += len(e["file"])
    end = reg_off + reg_bytes + len(body)
    table = bytearray()
    choice_off = 0
    if choices:
        choice_off = (end + L.FLUID_CACHE_CHOICE_ALIGN - 1) // L.FLUID_CACHE_CHOICE_ALIGN * L.FLUID_CACHE_CHOICE_ALIGN
        body += bytes(choice_off - end)
        for c in choices:
            r = bytearray(CC.size)
            for f, v in (("op", c["op"]), ("phase", c.get("phase", L.FLUID_CHOICE_ALL)), ("opt_level", c["opt"]), ("module", c["module"].encode()),
                         ("march", c["march"].encode()), ("sha256", c["sha256"]), ("flags", c["flags"]),
                         ("cycles", c["cycles"]), ("default_cycles", c["default_cycles"])):
                CC.put(r, f, v)
            table += r
        body += table
        end = choice_off + len(table)
    slot_bytes = (end + SECTOR - 1) // SECTOR * SECTOR + CT.size
    if slot_bytes > CACHE_SLOT_BYTES:
        raise ImageError(f"the cache slot would need {slot_bytes} bytes; a slot holds {CACHE_SLOT_BYTES}")
    h = bytearray(CS.size)
    for f, v in (("magic", L.FLUID_CACHE_MAGIC), ("version", L.FLUID_CACHE_VERSION), ("header_bytes", CS.size),
                 ("generation", generation), ("slot_bytes", slot_bytes), ("n_entries", len(entries)),
                 ("registry_offset", reg_off), ("registry_bytes", reg_bytes),
                 ("registry_sha256", hashlib.sha256(registry).digest()), ("created_unix", int(time.time())),
                 ("writer", WRITER.encode()[:CS.fields["writer"][1] - 1]),
                 ("model_id", model_id.encode()[:CS.fields["model_id"][1] - 1])):
        CS.put(h, f, v)
    if choices:
        meta = choice_meta or {}
        for f, v in (("choice_offset", choice_off), ("n_choices", len(choices)),
                     ("choice_sha256", hashlib.sha256(table).digest()), ("choice_tsc_hz", meta.get("choice_tsc_hz", 0))):
            CS.put(h, f, v)
        for f in ("choice_tag", "choice_cpu", "choice_model_id"):
            CS.put(h, f, meta.get(f, "").encode()[:CS.fields[f][1] - 1])
    CS.put(h, "header_crc", zlib.crc32(bytes(h[:CS.off("header_crc")])))
    slot = bytearray(slot_bytes)
    slot[0:CS.size] = h
    slot[reg_off:reg_off + reg_bytes] = registry
    slot[reg_off + reg_bytes:end] = body
    t = bytearray(CT.size)
    for f, v in (("magic", L.FLUID_CACHE_END_MAGIC), ("generation", generation),
                 ("header_crc", CS.get(h, "header_crc")), ("slot_bytes", slot_bytes)):
        CT.put(t, f, v)
    CT.put(t, "trailer_crc", zlib.crc32(bytes(t[:CT.off("trailer_crc")])))
    slot[slot_bytes - CT.size:] = t
    return bytes(slot)


# ---- an image file or a boot disk ----

class Medium:
    """An image file, or a disk holding one (a block device written with dd,
    or a file standing in for it), opened for its cache region.

    Opening checks, and raises ImageError saying which failed: the image
    header (magic, CRC, version); that the medium holds as many bytes as the
    header says (a disk shorter than its image is an incomplete dd); that
    the cache region has two slots and lies inside the medium.  A block
    device is opened O_EXCL, so a mounted or otherwise busy disk is refused
    by the kernel (EBUSY) before anything is read."""

    def __init__(self, path, kind="image", write=False):
        self.path, self.kind = str(path), kind
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise ImageError(f"{self.path}: {e.strerror}") from None
        self.block_device = stat.S_ISBLK(st.st_mode)
        if not (self.block_device or stat.S_ISREG(st.st_mode)):
            raise ImageError(f"{self.path}: neither a block device nor a file")
        flags = os.O_RDWR if write else os.O_RDONLY
        if self.block_device and write:
            flags |= os.O_EXCL
        try:
            self.fd = os.open(self.path, flags)
        except OSError as e:
            busy = " (mounted or in use: unmount it first)" if e.errno == 16 else ""
            raise ImageError(f"{self.path}: cannot open {kind}: {e.strerror}{busy}") from None
        try:
            self._check()
        except BaseException:
            os.close(self.fd)
            raise

    def _check(self):
        self.size = os.lseek(self.fd, 0, os.SEEK_END)
        h = os.pread(self.fd, IH.size, L.FLUID_HEADER_LBA * SECTOR)
        self.header = parse_image_header(h, self.path)
        need = self.header["image_sectors"] * SECTOR
        if self.size < need:
            raise ImageError(f"{self.path}: the {self.kind} holds {self.size} bytes but its image header says "
                             f"{need}: the image was not written completely (dd interrupted?)")
        r = self.header["regions"][REGION_CACHE]
        self.region = r
        if r["sectors"] * SECTOR < 2 * CACHE_SLOT_BYTES:
            raise ImageError(f"{self.path}: the image has no cache region (rebuild it with `make image`)")
        if (r["lba"] + r["sectors"]) * SECTOR > need:
            raise ImageError(f"{self.path}: the cache region (sector {r['lba']}, {r['sectors']} sectors) lies "
                             f"past the image's end (damaged header)")
        self.slots = []
        for s in range(2):
            data = os.pread(self.fd, CACHE_SLOT_BYTES, self.slot_offset(s))
            state, why, info = parse_slot(data)
            self.slots.append(dict(state=state, why=why, info=info))

    def slot_offset(self, index):
        return self.region["lba"] * SECTOR + index * CACHE_SLOT_BYTES

    def newest(self):
        return newest_slot(self.slots)

    def module_abi(self):
        """The module ABI the image's kernel implements, as its MODULES
        region's first module file states it (they are built together from
        modules/module_abi.h); None when that region has no readable module."""
        r = self.header["regions"][REGION_MODULES]
        if not r["bytes"]:
            return None
        data = os.pread(self.fd, min(r["bytes"], MOD_HEADER_BYTES), r["lba"] * SECTOR)
        if (len(data) < MOD_HEADER_BYTES or MH.get(data, "magic") != L.FLUID_MOD_MAGIC
                or MH.get(data, "header_crc") != zlib.crc32(data[:MH.off("header_crc")])):
            return None
        return MH.get(data, "abi_version")

    def write_slot(self, index, slot, stop_after=None):
        """Write `slot` into slot `index`: everything but the trailer, fsync,
        then the trailer, fsync (cache/README.md "Crash safety": until the
        trailer is durable the slot is torn and ignored, so the other slot
        stays in force).  fsync on a block device also flushes the drive's
        write cache.  stop_after (tests): write only that many bytes from
        the slot's start and return, as a writer killed there would."""
        base = self.slot_offset(index)
        if stop_after is not None:
            os.pwrite(self.fd, slot[:stop_after], base)
            os.fsync(self.fd)
            return
        os.pwrite(self.fd, slot[:-CT.size], base)
        os.fsync(self.fd)
        os.pwrite(self.fd, slot[-CT.size:], base + len(slot) - CT.size)
        os.fsync(self.fd)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
