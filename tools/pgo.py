#!/usr/bin/python3
"""Fluid's profile-guided module loop: profile -> analyze -> apply -> report.

    pgo.py profile [--image build/fluid.img] [--model M.gguf] [--prompt TEXT] [-n N]
    pgo.py analyze [--profile P.json ...] [--profiles-dir profiles]
    pgo.py apply   [--plan P.plan.json] [--image build/fluid.img] [--cache-dir cache]
    pgo.py report  [--before P.json] [--after P.json] [-o report.html]
    pgo.py cache-info [--image build/fluid.img]

profile  boots the image headless (QEMU, test mode), runs a fixed workload:
         `prof reset`, `gen --temp 0 -n N PROMPT` (greedy, so repeatable),
         `prof export`; takes the JSON between the marker lines from COM1
         and saves it as profiles/<model-id>/<cpu-tag>/<timestamp>.json with a
         `latest` link beside it, then powers the machine off.
analyze  reads the latest profile (or merges several: calls and cycles are
         summed per op) and classifies each module by its share of the total
         module cycles:
             ultra-hot  >= 25 %   -> -O3
             hot        >=  5 %   -> -O2
             warm       >= 0.5 %  -> -O1
             cold       <  0.5 %  -> baseline (not rebuilt)
         never below what the image's per-ISA build runs for this CPU
         (-O2): a lower level is raised to it when shape constants are
         added, and left alone (decision "image") otherwise
         all at the -march tag derived from the PROFILED machine's CPUID
         feature list in the profile (never the build host's).  Modules whose
         source uses FLUID_SHAPE_* constants get the model's shapes as
         compile-time constants.  Feedback: when an earlier profile of the
         same model and CPU tag measured that exact variant (-O level, tag)
         at more than 1.05x the baseline's cycles per call (best run of
         each: the minimum over profiles), the same -O
         level for the portable tag (x86-64) is chosen instead, and when that
         was measured slower too, the module stays at baseline
         (--no-feedback turns this off).  Writes
         <profile>.plan.json next to the profile and prints the decision
         table.
apply    compiles each planned module with its flags (the Makefile's
         MOD_CFLAGS/MOD_LDFLAGS, read with `make -s modflags`) into
         cache/<cpu-tag>/, writes cache/<cpu-tag>/registry.json, and writes
         the image's cache region in place: the new generation goes into the
         slot that does not hold the newest valid generation, the commit
         record (trailer) last, after an fsync, so an interrupted apply
         leaves the previous generation in force.  Modules of other tags in
         the current slot are kept, and so are the kernel's tuned choices
         (`tune` at the prompt) but those for ops a module of this apply
         serves.  Nothing outside the cache region is
         touched.  Running it again with the same plan writes nothing.
report   writes an HTML page with SVG charts comparing two profiles
         (default: the two newest of the latest model/tag): per-module
         cycles before/after, prefill/decode tok/s, cycles per decoded
         token, and which variant ran.

Formats: profiles/README.md (profile JSON, plan) and cache/README.md (cache
region); C definitions in modules/module_abi.h.  Python 3 (Debian's
/usr/bin/python3) and its standard library; report uses python3-matplotlib.
"""
import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

PROF_BEGIN = "-----BEGIN FLUID PROFILE-----"
PROF_END = "-----END FLUID PROFILE-----"
SCHEMA_VERSION = 1
PLAN_SCHEMA = "fluid-pgo-plan"

# Share-of-cycles thresholds (fractions of all module cycles), highest first.
THRESHOLDS = [("ultra-hot", 0.25, 3), ("hot", 0.05, 2), ("warm", 0.005, 1)]


# ---- layouts: modules/module_abi.h and kernel/include/fluid/image.h, as
# tools/genlayout.c prints them from the compiler (never copied here) ----

def load_layout():
    """build/gen/fluid_layout.py, which make writes before any target that
    runs this file; a missing or stale one is refused, not guessed at."""
    gen = ROOT / "build" / "gen" / "fluid_layout.py"
    fix = "run `make layout` (make image and make test do it too)"
    why = None
    if not gen.exists():
        why = f"{gen} is missing: {fix}"
    else:
        spec = importlib.util.spec_from_file_location("fluid_layout", gen)
        layout = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(layout)
        stale = [s for s in layout.SOURCES if (ROOT / s).stat().st_mtime > gen.stat().st_mtime]
        if stale:
            why = f"{gen} is older than {', '.join(stale)}: {fix}"
    if why and __name__ == "__main__":
        die(why)
    if why:
        raise ImportError(why)
    return layout


def log(msg):
    print(f"pgo: {msg}", flush=True)


def die(msg):
    print(f"pgo: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


L = load_layout()
IH, RG, MH, MS, ME = L.IMAGE_HEADER, L.REGION, L.MOD_HEADER, L.MOD_SHAPE, L.MOD_ENTRY
CS, CE, CT, CC = L.CACHE_SLOT, L.CACHE_ENTRY, L.CACHE_TRAILER, L.CACHE_CHOICE
SECTOR = L.FLUID_SECTOR_BYTES
IMAGE_MAGIC = L.FLUID_IMAGE_MAGIC
REGION_CACHE, REGION_MODEL = L.FLUID_REGION_CACHE, L.FLUID_REGION_MODEL
CACHE_SLOT_BYTES = L.FLUID_CACHE_SLOT_BYTES
MOD_MAGIC = L.FLUID_MOD_MAGIC
MOD_HEADER_BYTES = L.FLUID_MOD_HEADER_BYTES
MOD_FILE_ALIGN = L.FLUID_MOD_FILE_ALIGN
CACHE_MAGIC = L.FLUID_CACHE_MAGIC
CACHE_END_MAGIC = L.FLUID_CACHE_END_MAGIC
CACHE_VERSION = L.FLUID_CACHE_VERSION
WRITER = "fluid pgo.py 1"


def cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


# ---- CPU features and tags (from kernel/include/fluid/cpufeat.h) ----

def cpufeat():
    """{name: bit} and {level: set(names)} parsed from cpufeat.h."""
    text = (ROOT / "kernel/include/fluid/cpufeat.h").read_text()
    bits = {m.group(1): int(m.group(2)) for m in re.finditer(r"X\((\w+),\s*(\d+),", text)}
    levels = {}
    for lv in (2, 3, 4):
        body = text[text.index(f"#define FLUID_LEVEL_V{lv}"):]
        lines = []
        for line in body.splitlines():   # the macro ends at the first line without a backslash
            lines.append(line)
            if not line.rstrip().endswith("\\"):
                break
        levels[lv] = set(re.findall(r"FEAT_BIT\((\w+)\)", "\n".join(lines)))
    return bits, levels


def tag_features(tag):
    """Feature names a CPU tag implies (as modfmt_tag_features in the kernel)."""
    _, levels = cpufeat()
    m = re.fullmatch(r"x86-64(?:-v([234]))?((?:\+vnni|\+bf16)*)", tag)
    if not m:
        raise ValueError(f"unknown CPU tag {tag!r}")
    level = int(m.group(1) or 1)
    feats = {"SSE", "SSE2"}
    for lv in (2, 3, 4):
        if level >= lv:
            feats |= levels[lv]
    extras = m.group(2)
    if extras and level < 4:
        raise ValueError(f"tag {tag!r}: +vnni/+bf16 need x86-64-v4")
    if "+vnni" in extras:
        feats.add("AVX512VNNI")
    if "+bf16" in extras:
        feats.add("AVX512BF16")
    return feats


def tag_from_features(features):
    """The -march tag for a CPUID feature list, by the rules of
    kernel/arch/x86/cpu.c (derive_level)."""
    _, levels = cpufeat()
    f = set(features)
    level = 1
    for lv in (2, 3, 4):
        if levels[lv] <= f:
            level = lv
        else:
            break
    tag = "x86-64" if level == 1 else f"x86-64-v{level}"
    if level == 4 and "AVX512VNNI" in f:
        tag += "+vnni"
    if level == 4 and "AVX512BF16" in f:
        tag += "+bf16"
    return tag


def march_flags(tag):
    """clang flags for a tag: -march=<level> plus the extension flags."""
    m = re.fullmatch(r"(x86-64(?:-v[234])?)((?:\+vnni|\+bf16)*)", tag)
    if not m:
        raise ValueError(f"unknown CPU tag {tag!r}")
    flags = [f"-march={m.group(1)}"]
    if "+vnni" in m.group(2):
        flags.append("-mavx512vnni")
    if "+bf16" in m.group(2):
        flags.append("-mavx512bf16")
    return flags


# ---- image and cache region ----

def read_image_header(path):
    with open(path, "rb") as f:
        f.seek(L.FLUID_HEADER_LBA * SECTOR)
        h = f.read(IH.size)
    if len(h) < IH.size or IH.get(h, "magic") != IMAGE_MAGIC:
        die(f"{path}: not a Fluid image")
    if IH.get(h, "header_crc") != zlib.crc32(h[:IH.off("header_crc")]):
        die(f"{path}: image header checksum mismatch")
    regions = []
    for i in range(L.FLUID_REGION_COUNT):
        base = IH.off("region") + RG.size * i
        regions.append({f: RG.get(h, f, base) for f in ("lba", "bytes", "sectors", "crc32", "flags")})
    return dict(regions=regions, model_name=cstr(IH.get(h, "model_name")))


def parse_module(buf, off=0, avail=None):
    """Check a module file (as the kernel's modfmt_check); returns a dict or
    raises ValueError with the reason."""
    avail = len(buf) - off if avail is None else avail
    if avail < MOD_HEADER_BYTES:
        raise ValueError("truncated module header")
    h = bytes(buf[off:off + MOD_HEADER_BYTES])
    if MH.get(h, "magic") != MOD_MAGIC:
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
    for i in range(min(MH.get(h, "n_entries"), L.FLUID_MOD_MAX_ENTRIES)):
        base = MH.off("entry") + ME.size * i
        entries.append((ME.get(h, "op", base), ME.get(h, "offset", base)))
    return dict(name=cstr(MH.get(h, "name")), march=cstr(MH.get(h, "march")), compiler=cstr(MH.get(h, "compiler")),
                features=MH.get(h, "features"), opt=MH.get(h, "opt_level"), flags=MH.get(h, "flags"),
                body_bytes=body_bytes, sha256=sha, file=bytes(buf[off:off + MOD_HEADER_BYTES + body_bytes]),
                shapes=shapes, entries=entries, abi=MH.get(h, "abi_version"),
                header_bytes=MH.get(h, "header_bytes"), text_bytes=MH.get(h, "text_bytes"))


def parse_slot(data):
    """Check one cache slot (bytes from its start); returns (state, why, info).
    Mirrors kernel/core/mod/modfmt.c; state is 'valid' or a reason class."""
    if len(data) < CS.size:
        return "unreadable", "short", None
    h = data[:CS.size]
    if h == bytes(CS.size):
        return "empty", "never written (all zeros)", None
    if CS.get(h, "magic") != CACHE_MAGIC:
        return "bad-magic", "bad magic", None
    version, hbytes, gen, slot_bytes, n_entries, reg_off, reg_bytes, hcrc = (CS.get(h, f) for f in (
        "version", "header_bytes", "generation", "slot_bytes", "n_entries", "registry_offset", "registry_bytes",
        "header_crc"))
    if version != CACHE_VERSION or hbytes != CS.size:
        return "bad-version", f"version {version}", None
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
    if CT.get(t, "magic") != CACHE_END_MAGIC or CT.get(t, "trailer_crc") != zlib.crc32(t[:CT.off("trailer_crc")]):
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
                writer=cstr(CS.get(h, "writer")), model_id=cstr(CS.get(h, "model_id")))
    info["choices"], info["choices_error"] = parse_choices(data, h)
    info["choice_meta"] = {f: (CS.get(h, f) if f == "choice_tsc_hz" else cstr(CS.get(h, f)))
                           for f in ("choice_tag", "choice_cpu", "choice_model_id", "choice_tsc_hz")}
    return "valid", "", info


def parse_choices(data, h):
    """The tuned choices of a checked slot (as modfmt_slot_choices in the
    kernel): ([dict(op, op_name, module, march, opt, flags, sha256, cycles,
    default_cycles)], None), or ([], reason) when the table is damaged (the
    slot's modules stay usable)."""
    off, n = CS.get(h, "choice_offset"), CS.get(h, "n_choices")
    table = data[off:off + n * CC.size]
    if n and hashlib.sha256(table).digest() != CS.get(h, "choice_sha256"):
        return [], "tuned-choice table SHA-256 mismatch"
    out = []
    for i in range(n):
        b = table[i * CC.size:(i + 1) * CC.size]
        op = CC.get(b, "op")
        if op >= L.OP_COUNT or any(c["op"] == op for c in out):
            return [], f"tuned choice {i}: op {op} unknown or repeated"
        out.append(dict(op=op, op_name=L.OPS[op], module=cstr(CC.get(b, "module")), march=cstr(CC.get(b, "march")),
                        opt=CC.get(b, "opt_level"), flags=CC.get(b, "flags"), sha256=CC.get(b, "sha256"),
                        cycles=CC.get(b, "cycles"), default_cycles=CC.get(b, "default_cycles")))
    return out, None


def read_cache_region(image):
    hdr = read_image_header(image)
    r = hdr["regions"][REGION_CACHE]
    if r["sectors"] * SECTOR < 2 * CACHE_SLOT_BYTES:
        die(f"{image}: the image has no cache region (rebuild it with `make image`)")
    slots = []
    with open(image, "rb") as f:
        for s in range(2):
            f.seek(r["lba"] * SECTOR + s * CACHE_SLOT_BYTES)
            data = f.read(CACHE_SLOT_BYTES)
            state, why, info = parse_slot(data)
            slots.append(dict(state=state, why=why, info=info))
    return r, slots


def newest_slot(slots):
    valid = [(s["info"]["generation"], i) for i, s in enumerate(slots) if s["state"] == "valid"]
    return max(valid)[1] if valid else None


def build_slot(generation, entries, model_id, choices=(), choice_meta=None):
    """Bytes of a slot: header, registry, module files, tuned choices,
    trailer.  entries: [dict(tag, name, file, opt, flags)] (file = whole
    module file); choices: parse_choices() records to carry, with
    choice_meta (the slot info's "choice_meta": tag, CPU, model, TSC rate
    they were measured with)."""
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
            die(f"tag or module name too long: {e['tag']} {m['name']}")
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
            for f, v in (("op", c["op"]), ("opt_level", c["opt"]), ("module", c["module"].encode()),
                         ("march", c["march"].encode()), ("sha256", c["sha256"]), ("flags", c["flags"]),
                         ("cycles", c["cycles"]), ("default_cycles", c["default_cycles"])):
                CC.put(r, f, v)
            table += r
        body += table
        end = choice_off + len(table)
    slot_bytes = (end + SECTOR - 1) // SECTOR * SECTOR + CT.size
    if slot_bytes > CACHE_SLOT_BYTES:
        die(f"the cache slot would need {slot_bytes} bytes; a slot holds {CACHE_SLOT_BYTES}")
    h = bytearray(CS.size)
    for f, v in (("magic", CACHE_MAGIC), ("version", CACHE_VERSION), ("header_bytes", CS.size),
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
    for f, v in (("magic", CACHE_END_MAGIC), ("generation", generation), ("header_crc", CS.get(h, "header_crc")),
                 ("slot_bytes", slot_bytes)):
        CT.put(t, f, v)
    CT.put(t, "trailer_crc", zlib.crc32(bytes(t[:CT.off("trailer_crc")])))
    slot[slot_bytes - CT.size:] = t
    return bytes(slot)


def write_slot(image, region, index, slot, stop_after=None):
    """Write `slot` into slot `index`: everything but the trailer, fsync,
    then the trailer, fsync.  stop_after (tests): write only that many
    bytes from the slot's start and return, as a killed writer would."""
    base = region["lba"] * SECTOR + index * CACHE_SLOT_BYTES
    fd = os.open(image, os.O_WRONLY)
    try:
        if stop_after is not None:
            os.pwrite(fd, slot[:stop_after], base)
            os.fsync(fd)
            return
        os.pwrite(fd, slot[:-CT.size], base)
        os.fsync(fd)
        os.pwrite(fd, slot[-CT.size:], base + len(slot) - CT.size)
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- profile ----

def model_differs(image, model):
    try:
        hdr = read_image_header(image)
    except SystemExit:
        return True
    r = hdr["regions"][REGION_MODEL]
    return r["bytes"] != os.path.getsize(model) or hdr["model_name"] != os.path.basename(model)[:63]


def run_cmd_streaming(vm, line, timeout, echo):
    """Type a command and wait for the prompt, echoing output as it comes."""
    from fluidvm import BootError
    import codecs
    dec = codecs.getincrementaldecoder("utf-8")("replace")   # a character may span two reads
    vm.send(line + "\r")
    start = len(vm.log)
    shown = start
    deadline = time.monotonic() + timeout
    while True:
        i = vm.log.find(b"fluid> ", start)
        if echo and len(vm.log) > shown:
            end = i if i >= 0 else len(vm.log)
            sys.stdout.write(dec.decode(bytes(vm.log[shown:end])))
            sys.stdout.flush()
            shown = end
        if i >= 0:
            out = bytes(vm.log[start:i]).decode("utf-8", "replace")
            vm._mark = i + len(b"fluid> ")
            nl = out.find("\n")
            return out[nl + 1:] if nl >= 0 else out
        if b"*** CPU exception" in vm.log[start:]:
            raise BootError(vm._fail_text("kernel panic"))
        if time.monotonic() > deadline:
            raise BootError(vm._fail_text(f"timed out after {timeout}s running {line!r}"))
        vm._read_some(0.2)


def extract_profile(text):
    i = text.find(PROF_BEGIN)
    j = text.find(PROF_END, i + 1)
    if i < 0 or j < 0:
        raise ValueError("no profile between the marker lines in the serial output")
    body = text[i + len(PROF_BEGIN):j].replace("\r", "")
    return json.loads(body)


def cmd_profile(a):
    from fluidvm import BootError, boot, kvm_usable
    image = Path(a.image)
    if a.model and (not image.exists() or model_differs(image, a.model)):
        log(f"building {image} with model {a.model} (its cache region starts empty)")
        b = ROOT / "build"
        pieces = [b / "tools/mkimage", b / "bootloader/stage1.bin", b / "bootloader/stage2.bin", b / "kernel.bin",
                  b / "modules.bin"]
        subprocess.run(["make", "-s", "-C", str(ROOT), *[str(p.relative_to(ROOT)) for p in pieces]], check=True)
        subprocess.run([str(pieces[0]), "-o", str(image), "--stage1", str(pieces[1]), "--stage2", str(pieces[2]),
                        "--kernel", str(pieces[3]), "--modules", str(pieces[4]), "--model", str(a.model)],
                       check=True)
    if not image.exists():
        die(f"{image} does not exist (run `make image MODEL=...` first)")
    if a.target == "hosted":
        accel = "native"
        log(f"running {image} hosted (native, {a.mem}, {a.smp or os.cpu_count()} threads)")
    else:
        accel = a.accel or ("kvm" if kvm_usable() else "tcg")
        log(f"booting {image} headless ({accel}, {a.mem}, {a.smp or os.cpu_count()} cpus)")
    t0 = time.monotonic()
    try:
        vm = boot(image, target=a.target, mem=a.mem, smp=a.smp, accel=accel, boot_timeout=a.timeout)
    except BootError as e:
        die(f"boot failed: {e}")
    try:
        boot_log = vm.text()
        log(f"prompt after {time.monotonic() - t0:.1f} s")
        for line in boot_log.splitlines():
            if line.startswith(("cache:", "modules:", "model: '")):
                log("  " + line.strip())
        if "no model is loaded" in vm.cmd("model"):
            die("the image has no usable model; build one with `make image MODEL=...`")
        vm.cmd("prof reset")
        if a.warmup:
            log(f"warm-up: gen -n {a.warmup}")
            vm.cmd(f"gen -n {a.warmup} --temp 0 {a.prompt}", timeout=a.timeout)
            vm.cmd("prof reset")
        log(f"workload: prompt {a.prompt!r}, {a.n} decode tokens (greedy)")
        out = run_cmd_streaming(vm, f"gen -n {a.n} --temp 0 --seed 1 {a.prompt}", a.timeout, echo=not a.quiet)
        if not a.quiet:
            print(flush=True)
        log("exporting the profile")
        vm.send("prof export\r")
        vm.wait_for(PROF_END, timeout=120)
        vm.wait_for("fluid> ", timeout=30)
        prof = extract_profile(vm.text()[len(boot_log):])
        vm.send("poweroff\r")
        vm.wait_exit(30)
    finally:
        vm.close()
    if prof.get("schema") != "fluid-profile" or prof.get("schema_version") != SCHEMA_VERSION:
        die(f"unexpected profile schema {prof.get('schema')!r} v{prof.get('schema_version')}")
    m = re.search(r"\[prompt: \d+ tokens, [0-9.]+ tok/s \| generated: \d+ tokens", out)
    text = out[:m.start()] if m else out
    now = datetime.datetime.now(datetime.timezone.utc)
    prof["capture"] = dict(time=now.isoformat(timespec="seconds"), image=str(image), accel=accel,
                           host=os.uname().nodename, prompt=a.prompt, n_predict=a.n,
                           output=text.strip("\r\n"), tool=WRITER)
    model_id = (prof.get("model") or {}).get("id", "none")
    tag = prof["cpu"]["tag"]
    d = Path(a.profiles_dir) / model_id / tag
    d.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = d / f"{stamp}.json"
    k = 1
    while path.exists():
        path = d / f"{stamp}-{k}.json"
        k += 1
    path.write_text(json.dumps(prof, indent=1) + "\n")
    latest = d / "latest"
    tmp = d / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(path.name)
    os.replace(tmp, latest)
    w = prof["workload"]
    log(f"saved {path} (latest -> {path.name})")
    log(f"prefill {w['prefill_tok_s']:.2f} tok/s, decode {w['decode_tok_s']:.2f} tok/s, "
        f"{prof['total_cycles'] / max(1, w['prompt_tokens'] + w['generated_tokens']):.0f} module cycles/token")
    print(path)
    return path


# ---- analyze ----

def latest_profile(profiles_dir):
    links = [p for p in Path(profiles_dir).glob("*/*/latest") if p.exists()]
    if not links:
        die(f"no profile under {profiles_dir}/ (run `make pgo-profile` first)")
    return max(links, key=lambda p: p.resolve().stat().st_mtime).resolve()


def merge_profiles(paths):
    profs = [json.loads(Path(p).read_text()) for p in paths]
    base = profs[0]
    for p in profs[1:]:
        if p["cpu"]["tag"] != base["cpu"]["tag"] or (p.get("model") or {}).get("id") != (base.get("model") or {}).get("id"):
            die("cannot merge profiles of different CPUs tags or models")
    ops = {}
    for p in profs:
        for m in p["modules"]:
            o = ops.setdefault(m["op"], dict(op=m["op"], module=m["module"], calls=0, cycles=0,
                                             ran=(m.get("variant"), m.get("opt_level", 1), m.get("march"))))
            o["calls"] += m["calls"]
            o["cycles"] += m["cycles"]
    return base, list(ops.values()), profs


def module_sources():
    return {p.stem: p for p in (ROOT / "modules").glob("*.c") if p.stem != "modrt"}


def declared_shapes(src):
    """Shape constants a module source declares it can use (FLUID_SHAPE_<NAME>)."""
    abi = (ROOT / "modules/module_abi.h").read_text()
    known = {m.group(1): m.group(2) for m in re.finditer(r'X\((\w+),\s*\d+,\s*"(\w+)"\)', abi)}
    used = set(re.findall(r"FLUID_SHAPE_([A-Z_]+)\b", Path(src).read_text()))
    return sorted(known[u] for u in used if u in known)


REGRESSION_MARGIN = 1.05   # a cached variant measured > 5 % slower per call than the baseline is dropped


def variant_history(paths):
    """{(module, variant, opt_level, march): best cycles per call} over
    profiles: per profile, the module's cycles / calls; over profiles, the
    minimum (the run least disturbed by anything else on the host)."""
    hist = {}
    for p in paths:
        try:
            prof = json.loads(Path(p).read_text())
        except (OSError, ValueError):
            continue
        per = {}
        for o in prof.get("modules", []):
            if not o.get("calls"):
                continue
            k = (o.get("module"), o.get("variant", "baseline"), o.get("opt_level", 1), o.get("march", "x86-64"))
            h = per.setdefault(k, [0, 0])
            h[0] += o["cycles"]
            h[1] += o["calls"]
        for k, (cyc, calls) in per.items():
            cpc = cyc / calls
            hist[k] = min(hist.get(k, cpc), cpc)
    return hist


def classify(share, calls):
    if calls == 0:
        return "cold", 0, "never called"
    for name, thr, opt in THRESHOLDS:
        if share >= thr:
            return name, opt, f"{share * 100:.1f}% of cycles >= {thr * 100:g}%"
    return "cold", 0, f"{share * 100:.2f}% of cycles < {THRESHOLDS[-1][1] * 100:g}%"


def cmd_analyze(a):
    paths = [Path(p) for p in a.profile] if a.profile else [latest_profile(a.profiles_dir)]
    prof, ops, profs = merge_profiles(paths)
    features = prof["cpu"]["features"]
    tag = tag_from_features(features)
    if tag != prof["cpu"]["tag"]:
        log(f"note: the kernel reported tag {prof['cpu']['tag']}, the feature list gives {tag}; using {tag}")
    model = prof.get("model") or {}
    shapes = model.get("shapes", {})
    total = sum(o["cycles"] for o in ops) or 1
    by_mod = {}
    for o in ops:
        m = by_mod.setdefault(o["module"] or "?", dict(calls=0, cycles=0, ops=[]))
        m["calls"] += o["calls"]
        m["cycles"] += o["cycles"]
        m["ops"].append(o["op"])
    sources = module_sources()
    # Feedback from earlier runs of this model on this CPU tag: a variant
    # that was measured slower than the baseline is not built again.
    history_paths = sorted(set(paths) | {p for p in paths[-1].parent.glob("*.json")
                                         if not p.name.endswith(".plan.json")})
    hist = variant_history(history_paths)
    plan_mods = []
    for name, m in sorted(by_mod.items(), key=lambda kv: -kv[1]["cycles"]):
        share = m["cycles"] / total
        cls, opt, reason = classify(share, m["calls"])
        entry = dict(module=name, ops=m["ops"], calls=m["calls"], cycles=m["cycles"], share=round(share, 6),
                     cycles_per_call=m["cycles"] // m["calls"] if m["calls"] else 0, class_=cls,
                     decision="baseline" if opt == 0 else f"-O{opt}", opt_level=opt, reason=reason)
        if name not in sources:
            entry.update(decision="baseline", opt_level=0, reason="no source in modules/")
        entry["march"] = tag
        base_h = hist.get((name, "baseline", 1, "x86-64"))
        if opt and name in sources and base_h and not a.no_feedback:
            # Candidates: the CPU's tag, then the portable tag at the same -O
            # (-O1 x86-64 is the baseline itself).  A candidate measured
            # > REGRESSION_MARGIN x the baseline's cycles per call is skipped.
            cands = [(opt, tag)] + ([(opt, "x86-64")] if tag != "x86-64" and opt > 1 else [])
            notes, chosen = [], None
            for o, t in cands:
                h = hist.get((name, "cache", o, t))
                if h:
                    ratio = h / max(1e-9, base_h)
                    notes.append(f"-O{o} {t} was measured at {ratio:.2f}x the baseline's cycles per call")
                    if ratio > REGRESSION_MARGIN:
                        continue
                    entry["measured_ratio"] = round(ratio, 4)
                chosen = (o, t)
                break
            if chosen is None:
                entry.update(decision="baseline", opt_level=0, march="x86-64",
                             reason=f"{reason}, but {'; '.join(notes)}: kept at baseline")
            else:
                entry.update(decision=f"-O{chosen[0]}", opt_level=chosen[0], march=chosen[1])
                if notes:
                    entry["reason"] += "; " + "; ".join(notes)
        if opt and name in sources:
            want = declared_shapes(sources[name])
            sh = {s: shapes[s] for s in want if s in shapes}
            if sh and not a.no_shapes:
                entry["shapes"] = sh
                entry["reason"] += "; shapes " + ", ".join(f"{k}={v}" for k, v in sh.items())
        # Never below what the image already runs for this CPU (its per-ISA
        # -O2 builds): a lower -O level is raised to it, and the same build
        # without shape constants to add is not rebuilt at all.
        ran = next((o["ran"] for o in ops if o["module"] == name and o.get("ran")), (None, 0, None))
        if entry["opt_level"] and ran[0] == "image" and ran[2] == entry["march"] and entry["opt_level"] <= ran[1]:
            if entry.get("shapes"):
                if entry["opt_level"] < ran[1]:
                    entry.update(decision=f"-O{ran[1]}", opt_level=ran[1])
                    entry["reason"] += f"; raised to -O{ran[1]}, what the image runs"
            else:
                entry.update(decision="image", opt_level=0,
                             reason=f"{entry['reason']}; the image already runs -O{ran[1]} {ran[2]}: not rebuilt")
        entry["class"] = entry.pop("class_")
        plan_mods.append(entry)
    plan = dict(schema=PLAN_SCHEMA, schema_version=1, created=datetime.datetime.now(datetime.timezone.utc)
                .isoformat(timespec="seconds"), profiles=[str(p) for p in paths], model_id=model.get("id", "none"),
                tag=tag, march_flags=march_flags(tag), features=sorted(tag_features(tag)),
                thresholds={n: t for n, t, _ in THRESHOLDS}, total_cycles=total, modules=plan_mods)
    out = Path(a.out) if a.out else paths[-1].with_suffix(".plan.json")
    out.write_text(json.dumps(plan, indent=1) + "\n")
    latest = out.parent / "latest.plan"
    tmp = out.parent / ".latest.plan.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(out.name)
    os.replace(tmp, latest)
    print(f"profile: {', '.join(map(str, paths))}")
    print(f"model {plan['model_id']}, CPU tag {tag} (from the profiled CPU's CPUID), "
          f"{total} module cycles")
    print(f"{'module':<12} {'share':>7} {'calls':>9} {'cyc/call':>11}  {'decision':<22} reason")
    for e in plan_mods:
        dec = e["decision"] if e["opt_level"] == 0 else f"{e['decision']} {e['march']}"
        print(f"{e['module']:<12} {e['share'] * 100:6.2f}% {e['calls']:>9} {e['cycles_per_call']:>11}  "
              f"{dec:<22} {e['class']}: {e['reason']}")
    print(f"plan: {out}")
    return out


# ---- apply ----

def modflags():
    out = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "modflags"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def build_module(name, opt, tag, shapes, outdir, mf, features_tag=None):
    """Compile modules/<name>.c + modrt.c for tag at -O<opt> and pack it.
    Returns the module file's bytes."""
    (ROOT / "build" / "pgo").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build" / "pgo") as w:
        return _build_module(Path(w), name, opt, tag, shapes, outdir, mf, features_tag)


def _build_module(work, name, opt, tag, shapes, outdir, mf, features_tag):
    cflags = shlex.split(mf["MOD_CFLAGS"]) + [f"-O{opt}"] + march_flags(tag)
    defs = [f"-DFLUID_SHAPE_{k.upper()}={v}" for k, v in sorted(shapes.items())]
    suffix = f"{name}-O{opt}" + ("-shaped" if shapes else "")
    objs = []
    for src in (ROOT / "modules" / f"{name}.c", ROOT / "modules" / "modrt.c"):
        obj = work / f"{suffix}.{src.stem}.o"
        subprocess.run([mf["CC"], *cflags, *defs, "-c", str(src), "-o", str(obj)], check=True, cwd=ROOT)
        objs.append(str(obj))
    elf = work / f"{suffix}.elf"
    subprocess.run([mf["LD"], *shlex.split(mf["MOD_LDFLAGS"]), *objs, "-o", str(elf)], check=True, cwd=ROOT)
    feats = " ".join(sorted(tag_features(features_tag or tag)))
    outdir.mkdir(parents=True, exist_ok=True)
    fmod = outdir / f"{name}.fmod"
    cmd = [str(ROOT / "build/tools/modpack"), "module", "-o", str(fmod), "--elf", str(elf), "--name", name,
           "--march", tag, "--opt", str(opt), "--features", feats, "--compiler", mf["CC_VERSION"]]
    for k, v in sorted(shapes.items()):
        cmd += ["--shape", f"{k}={v}"]
    subprocess.run(cmd, check=True)
    return fmod.read_bytes()


def latest_plan(profiles_dir):
    links = [p for p in Path(profiles_dir).glob("*/*/latest.plan") if p.exists()]
    if not links:
        die(f"no plan under {profiles_dir}/ (run `make pgo-analyze` first)")
    return max(links, key=lambda p: p.resolve().stat().st_mtime).resolve()


def cmd_apply(a):
    plan_path = Path(a.plan) if a.plan else latest_plan(a.profiles_dir)
    plan = json.loads(plan_path.read_text())
    if plan.get("schema") != PLAN_SCHEMA:
        die(f"{plan_path} is not a PGO plan")
    tag = a.tag or plan["tag"]
    reg_tag = a.register_as or tag
    image = Path(a.image)
    if not image.exists():
        die(f"{image} does not exist (run `make image` first)")
    if not (ROOT / "build/tools/modpack").exists():
        subprocess.run(["make", "-s", "-C", str(ROOT), "build/tools/modpack"], check=True)
    mf = modflags()
    log(f"plan {plan_path} (model {plan['model_id']}), tag {tag}" +
        (f", registered as {reg_tag}" if reg_tag != tag else ""))
    outdir = Path(a.cache_dir) / reg_tag
    if outdir.exists():
        for old in outdir.glob("*.fmod"):
            old.unlink()
    built = []
    todo = [m for m in plan["modules"] if m["opt_level"] > 0]
    for i, m in enumerate(todo, 1):
        shapes = {} if a.no_shapes else m.get("shapes", {})
        mtag = a.tag or m.get("march", tag)     # the plan may pick the portable tag for a module
        log(f"[{i}/{len(todo)}] {m['module']}: -O{m['opt_level']} {' '.join(march_flags(mtag))}"
            + (" " + " ".join(f"{k}={v}" for k, v in shapes.items()) if shapes else ""))
        data = build_module(m["module"], m["opt_level"], mtag, shapes, outdir, mf)
        info = parse_module(data)
        built.append(dict(tag=reg_tag, name=m["module"], file=data, opt=info["opt"], flags=info["flags"],
                          sha=info["sha256"].hex(), shapes=shapes, march=mtag))
    registry = dict(tag=reg_tag, model_id=plan["model_id"], plan=str(plan_path),
                    modules=[dict(name=b["name"], opt_level=b["opt"], march=b["march"],
                                  march_flags=march_flags(b["march"]), sha256=b["sha"], shapes=b["shapes"],
                                  file=f"{b['name']}.fmod") for b in built])
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "registry.json").write_text(json.dumps(registry, indent=1) + "\n")
    log(f"{len(built)} modules in {outdir}/ (registry.json)")

    region, slots = read_cache_region(image)
    cur = newest_slot(slots)
    keep = []
    if cur is not None:
        for e in slots[cur]["info"]["entries"]:
            if e["tag"] != reg_tag:
                try:
                    parse_module(e["file"])
                except ValueError as err:
                    log(f"dropping damaged cached module {e['tag']}/{e['name']}: {err}")
                    continue
                keep.append(dict(tag=e["tag"], name=e["name"], file=e["file"], opt=e["opt"], flags=e["flags"]))
    entries = keep + built
    cur_gen = slots[cur]["info"]["generation"] if cur is not None else 0
    choices, choice_meta = carried_choices(slots[cur]["info"] if cur is not None else None, built)
    if cur is not None:
        same = sorted((e["tag"], e["file"]) for e in slots[cur]["info"]["entries"]) == \
            sorted((e["tag"], e["file"]) for e in entries) and slots[cur]["info"]["model_id"] == plan["model_id"]
        if same and a.stop_after is None:
            log(f"cache up to date: generation {cur_gen} in slot {cur} already holds these modules; nothing written")
            return
    target = 1 - cur if cur is not None else 0
    gen = cur_gen + 1
    slot = build_slot(gen, entries, plan["model_id"], choices, choice_meta)
    if a.stop_after is not None:
        n = int(a.stop_after * len(slot)) if a.stop_after <= 1 else int(a.stop_after)
        log(f"SIMULATED CRASH: writing only {n} of {len(slot)} bytes of generation {gen} to slot {target}")
        write_slot(str(image), region, target, slot, stop_after=n)
        return
    write_slot(str(image), region, target, slot)
    tags = sorted({e["tag"] for e in entries})
    log(f"wrote generation {gen} to slot {target} of {image}: {len(entries)} modules, tags {' '.join(tags)} "
        f"({len(slot)} bytes); slot {1 - target} keeps generation {cur_gen or 'none'}")


def carried_choices(info, built):
    """The tuned choices (kernel `tune`) of the newest slot that a new
    generation keeps: all but those for ops a module of this apply serves
    (the plan asked for that module; run `tune` again to compare it).
    Returns (choices, choice_meta)."""
    if not info or not info.get("choices"):
        if info and info.get("choices_error"):
            log(f"tuned choices of generation {info['generation']} dropped: {info['choices_error']}")
        return [], None
    served = {op for b in built for op, _ in parse_module(b["file"])["entries"]}
    keep = [c for c in info["choices"] if c["op"] not in served]
    for c in info["choices"]:
        if c["op"] in served:
            log(f"tuned choice for {c['op_name']} ({c['march']} -O{c['opt']}) dropped: this apply builds a new "
                f"module for it (run `tune` at the prompt to compare them)")
    if keep:
        log(f"{len(keep)} tuned choices (measured on {info['choice_meta']['choice_tag']}) carried over")
    return keep, info["choice_meta"]


def cmd_cache_info(a):
    region, slots = read_cache_region(a.image)
    cur = newest_slot(slots)
    print(f"cache region: sector {region['lba']}, {region['sectors']} sectors")
    for i, s in enumerate(slots):
        if s["state"] == "valid":
            inf = s["info"]
            tags = sorted({e["tag"] for e in inf["entries"]})
            print(f"slot {i}: valid, generation {inf['generation']}, {len(inf['entries'])} modules, "
                  f"tags {' '.join(tags) or '(none)'}, model {inf['model_id']}{'  [newest]' if i == cur else ''}")
            for e in inf["entries"]:
                print(f"    {e['tag']:<18} {e['name']:<12} -O{e['opt']} sha256 {e['sha256'].hex()[:16]}")
            if inf["choices_error"]:
                print(f"    tuned choices: ignored: {inf['choices_error']}")
            elif inf["choices"]:
                m = inf["choice_meta"]
                print(f"    tuned choices: {len(inf['choices'])}, measured on {m['choice_tag']} ({m['choice_cpu']}), "
                      f"model {m['choice_model_id']}")
                for c in inf["choices"]:
                    print(f"    tuned {c['op_name']:<14} {c['module']:<12} {c['march']:<16} -O{c['opt']} "
                          f"sha256 {c['sha256'].hex()[:16]} {c['cycles']} cycles (default {c['default_cycles']})")
        else:
            print(f"slot {i}: {s['state']}: {s['why']}")


# ---- report ----

def svg_bars(title, labels, series, ylabel):
    """A grouped bar chart as inline SVG (matplotlib, Agg backend)."""
    import io
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(labels) + 2), 3.6))
    n = len(series)
    width = 0.8 / max(1, n)
    for k, (name, values) in enumerate(series):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def per_token(p):
    w = p["workload"]
    gen = max(1, w["generated_tokens"])
    return dict(decode_cycles_per_token=w["decode_cycles"] / gen,
                module_cycles_per_token=p["total_cycles"] / max(1, w["prompt_tokens"] + w["generated_tokens"]))


def cmd_report(a):
    if a.before and a.after:
        before, after = Path(a.before), Path(a.after)
    else:
        latest = latest_profile(a.profiles_dir)
        runs = sorted((p for p in latest.parent.glob("*.json") if not p.name.endswith(".plan.json")),
                      key=lambda p: p.stat().st_mtime)
        if len(runs) < 2:
            die(f"{latest.parent} has only {len(runs)} profile(s); a report compares two "
                "(profile, apply, profile again)")
        before, after = Path(a.before) if a.before else runs[-2], Path(a.after) if a.after else runs[-1]
    pb, pa = json.loads(before.read_text()), json.loads(after.read_text())
    import html
    mods = {}
    for tagname, p in (("before", pb), ("after", pa)):
        for m in p["modules"]:
            d = mods.setdefault(m["module"] or m["op"], dict(before=0, after=0, vb=set(), va=set(), calls_b=0, calls_a=0))
            d[tagname] += m["cycles"]
            if m["calls"]:
                (d["vb"] if tagname == "before" else d["va"]).add(
                    f"{m['variant']} -O{m['opt_level']} {m['march']}")
            d["calls_b" if tagname == "before" else "calls_a"] += m["calls"]
    names = sorted((n for n in mods if mods[n]["before"] or mods[n]["after"]), key=lambda n: -mods[n]["before"])
    tb, ta = per_token(pb), per_token(pa)
    wb, wa = pb["workload"], pa["workload"]
    chart1 = svg_bars("Module cycles (all calls of the workload)", names,
                      [("before", [mods[n]["before"] for n in names]), ("after", [mods[n]["after"] for n in names])],
                      "TSC cycles")
    chart2 = svg_bars("Throughput", ["prefill tok/s", "decode tok/s"],
                      [("before", [wb["prefill_tok_s"], wb["decode_tok_s"]]),
                       ("after", [wa["prefill_tok_s"], wa["decode_tok_s"]])], "tokens/s")
    rows = []
    for n in names:
        d = mods[n]
        ratio = d["before"] / d["after"] if d["after"] else float("nan")
        rows.append(f"<tr><td>{html.escape(n)}</td><td>{d['calls_b']}</td><td>{d['before']}</td>"
                    f"<td>{html.escape(', '.join(sorted(d['vb'])) or '-')}</td><td>{d['calls_a']}</td>"
                    f"<td>{d['after']}</td><td>{html.escape(', '.join(sorted(d['va'])) or '-')}</td>"
                    f"<td>{ratio:.2f}x</td></tr>")

    def same_output():
        ob = (pb.get("capture") or {}).get("output")
        oa = (pa.get("capture") or {}).get("output")
        if ob is None or oa is None:
            return "unknown (profiles lack the captured output)"
        return "identical" if ob == oa else "DIFFERENT"

    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Fluid PGO report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:3px 8px;text-align:right}} td:first-child{{text-align:left}}</style></head>
<body><h1>Fluid PGO report</h1>
<p>model <b>{html.escape(str((pa.get('model') or {}).get('id')))}</b>, CPU tag <b>{html.escape(pa['cpu']['tag'])}</b>
({html.escape(pa['cpu'].get('brand', ''))}); pmu: {html.escape(json.dumps(pa.get('pmu')))}</p>
<p>before: {html.escape(str(before))}<br>after: {html.escape(str(after))}</p>
<table><tr><th></th><th>before</th><th>after</th><th>after/before</th></tr>
<tr><td>prefill tok/s</td><td>{wb['prefill_tok_s']:.2f}</td><td>{wa['prefill_tok_s']:.2f}</td><td>{wa['prefill_tok_s'] / max(1e-9, wb['prefill_tok_s']):.2f}</td></tr>
<tr><td>decode tok/s</td><td>{wb['decode_tok_s']:.2f}</td><td>{wa['decode_tok_s']:.2f}</td><td>{wa['decode_tok_s'] / max(1e-9, wb['decode_tok_s']):.2f}</td></tr>
<tr><td>decode cycles / token</td><td>{tb['decode_cycles_per_token']:.0f}</td><td>{ta['decode_cycles_per_token']:.0f}</td><td>{ta['decode_cycles_per_token'] / max(1e-9, tb['decode_cycles_per_token']):.2f}</td></tr>
<tr><td>module cycles / token</td><td>{tb['module_cycles_per_token']:.0f}</td><td>{ta['module_cycles_per_token']:.0f}</td><td>{ta['module_cycles_per_token'] / max(1e-9, tb['module_cycles_per_token']):.2f}</td></tr>
<tr><td>cache generation</td><td>{pb['cache']['generation']}</td><td>{pa['cache']['generation']}</td><td></td></tr>
</table>
<p>generated text: {same_output()}</p>
<h2>Per module</h2>
<table><tr><th>module</th><th>calls before</th><th>cycles before</th><th>variant before</th>
<th>calls after</th><th>cycles after</th><th>variant after</th><th>speed-up</th></tr>
{''.join(rows)}</table>
<h2>Charts</h2>
{chart1}
{chart2}
</body></html>
"""
    out = Path(a.out) if a.out else after.parent / "report.html"
    out.write_text(page)
    log(f"report: {out}")
    log(f"decode cycles/token {tb['decode_cycles_per_token']:.0f} -> {ta['decode_cycles_per_token']:.0f}; "
        f"module cycles/token {tb['module_cycles_per_token']:.0f} -> {ta['module_cycles_per_token']:.0f}")
    print(out)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile", help="boot, run the workload, save the exported profile")
    p.add_argument("--image", default=str(ROOT / "build/fluid.img"))
    p.add_argument("--model", help="GGUF file; the image is (re)built with it when it differs")
    p.add_argument("--prompt", default="Once upon a time, in a small village by the sea,")
    p.add_argument("-n", type=int, default=32, help="decode tokens (default 32)")
    p.add_argument("--warmup", type=int, default=0, help="tokens generated before the counters are cleared")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("--mem", default="3G")
    p.add_argument("--smp", type=int)
    p.add_argument("--accel", choices=["kvm", "tcg"])
    p.add_argument("--target", choices=["qemu", "hosted"], default="qemu",
                   help="qemu: the unikernel; hosted: build/fluid-hosted at native speed (make HOSTED=1)")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--quiet", action="store_true", help="do not echo the generated text")
    p = sub.add_parser("analyze", help="classify modules and write a plan")
    p.add_argument("--profile", action="append", help="profile JSON (repeat to merge); default: the latest")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("--out", help="plan path (default: next to the profile)")
    p.add_argument("--no-shapes", action="store_true", help="do not offer model shapes as constants")
    p.add_argument("--no-feedback", action="store_true",
                   help="ignore earlier profiles' measurements of cached variants")
    p = sub.add_parser("apply", help="build the planned modules and write the image's cache region")
    p.add_argument("--plan", help="plan JSON (default: the latest)")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("--image", default=str(ROOT / "build/fluid.img"))
    p.add_argument("--cache-dir", default=str(ROOT / "cache"))
    p.add_argument("--tag", help="build for this CPU tag instead of the plan's (tests)")
    p.add_argument("--register-as", help="register the modules under this tag (tests: a module "
                   "whose features the CPU of that tag lacks)")
    p.add_argument("--no-shapes", action="store_true")
    p.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)   # tests: simulated crash
    p = sub.add_parser("report", help="HTML comparison of two profiles")
    p.add_argument("--before")
    p.add_argument("--after")
    p.add_argument("--profiles-dir", default=str(ROOT / "profiles"))
    p.add_argument("-o", "--out")
    p = sub.add_parser("cache-info", help="print the cache region of an image")
    p.add_argument("--image", default=str(ROOT / "build/fluid.img"))
    a = ap.parse_args(argv)
    return {"profile": cmd_profile, "analyze": cmd_analyze, "apply": cmd_apply, "report": cmd_report,
            "cache-info": cmd_cache_info}[a.cmd](a)


if __name__ == "__main__":
    main()
