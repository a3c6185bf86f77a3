"""Compile host-side C test programs with clang-19 into build/host/.

Tests call build(name, sources, flags) and get the path of an executable;
it is rebuilt only when a source or header under the repository is newer.
"""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "host"
CC = os.environ.get("HOST_CC", "clang-19")
BASE_FLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
              "-I", str(ROOT / "kernel" / "include"), "-I", str(ROOT / "modules"),
              "-I", str(ROOT / "kernel"), "-I", str(ROOT / "kernel" / "core"),
              "-I", str(ROOT / "kernel" / "plat" / "pc")]


def _newest_input(sources):
    newest = max(os.path.getmtime(s) for s in sources)
    for d in ("kernel", "modules", "tests"):
        for p in (ROOT / d).rglob("*.h"):
            newest = max(newest, p.stat().st_mtime)
    return newest


def build(name, sources, flags=(), libs=("-lm",)):
    """Build sources (paths relative to the repo root) into build/host/name."""
    OUT.mkdir(parents=True, exist_ok=True)
    exe = OUT / name
    srcs = [str(ROOT / s) for s in sources]
    if exe.exists() and exe.stat().st_mtime >= _newest_input(srcs):
        return exe
    cmd = [CC, *BASE_FLAGS, *flags, "-o", str(exe), *srcs, *libs]
    subprocess.run(cmd, check=True)
    return exe
