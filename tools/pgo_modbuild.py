"""Building one cache variant of a compute module, as the Makefile builds
the image's (its MOD_CFLAGS / MOD_LDFLAGS / MOD_HDRS, read with
`make -s modflags`, never restated here), and the fingerprint of what a
build is made from.

    modflags()                         {CC, LD, CC_VERSION, MOD_CFLAGS, MOD_LDFLAGS, MOD_HDRS}
    build_module(name, opt, tag, shapes, outdir, mf)   -> bytes of <outdir>/<name>.fmod
    source_sha256(name, mf)            hex SHA-256 of everything that build reads

A failed compile raises subprocess.CalledProcessError (the compiler has
printed why).
"""
import hashlib
import shlex
import subprocess
import tempfile
from pathlib import Path

from pgo_cputag import march_flags, tag_features

ROOT = Path(__file__).resolve().parent.parent


def modflags():
    out = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "modflags"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def module_inputs(name, mf):
    """The files a build of modules/<name>.c reads: the source, the
    run-time, the linker script and every module header (MOD_HDRS)."""
    files = [f"modules/{name}.c", "modules/modrt.c", "modules/module.ld"]
    return files + sorted(set(shlex.split(mf.get("MOD_HDRS", ""))) - set(files))


def source_sha256(name, mf):
    """SHA-256 (hex) over the inputs of a build of module `name`: each
    file's path and bytes (module_inputs), then the compiler version and
    the module flags.  Equal fingerprints: the same build would come out;
    a different one means the cached build is stale.  A missing source
    hashes as missing (the module was removed)."""
    h = hashlib.sha256()
    for rel in module_inputs(name, mf):
        p = ROOT / rel
        h.update(rel.encode() + b"\0")
        h.update(p.read_bytes() if p.exists() else b"(missing)")
        h.update(b"\0")
    for k in ("CC_VERSION", "MOD_CFLAGS", "MOD_LDFLAGS"):
        h.update(f"{k}={mf.get(k, '')}\0".encode())
    return h.hexdigest()


def build_module(name, opt, tag, shapes, outdir, mf, features_tag=None):
    """Compile modules/<name>.c + modrt.c for `tag` at -O<opt> with the
    shape constants {shape name: value} and pack it into
    <outdir>/<name>.fmod; returns the module file's bytes.  features_tag:
    record that tag's features instead (tests)."""
    (ROOT / "build" / "pgo").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build" / "pgo") as w:
        work = Path(w)
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
