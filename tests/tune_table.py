"""Readers of what `tune` and `modules` print at the prompt (shared by
tests/prompt/test_tune.py and tests/machine/test_disk_write.py)."""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from pgo_image import L  # noqa: E402


def parse_tune(out):
    """{workload: [variant dict]} from tune's table: an op's name, and
    "<op> decode" for a matrix product's one-token workload."""
    table, op = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\w+) \((.*)\)$", line)
        if m:
            op = m.group(1) + (" decode" if m.group(2).startswith("decode, 1 token:") else "")
            table[op] = []
            continue
        f = line.split()
        if op is None or not line.startswith("   ") or len(f) < 5:
            continue
        v = dict(variant=f[0], march=f[1], opt=f[2], hash=f[3], line=line)
        if f[4] == "skipped:":
            v["status"] = "skipped"
        elif f[4] == "same":
            v["status"] = "same"
        else:
            v["status"] = "reference" if f[4] == "reference" else f[4].lower()
            k = 5 if f[4] == "reference" else 6
            v.update(min=int(f[k]), median=int(f[k + 1]), spread=float(f[k + 2].rstrip("%")), reps=int(f[k + 3]))
            v["chosen"] = "<- chosen" in line
            v["default"] = "default" in line
        table[op].append(v)
    return table


def choice_key(c):
    return c["op_name"] + (" decode" if c["phase"] == L.FLUID_CHOICE_DECODE else "")


def modules_rows(out):
    """{op or "<op> decode": fields} of the `modules` table; an op without
    a decode row runs its row's module for one-token calls too."""
    rows, op = {}, None
    for line in out.splitlines():
        f = line.split()
        if len(f) == 8:
            op = f[0]
            rows[op] = rows[op + " decode"] = f
        elif op and line.startswith("  decode ") and "tuned decode choice" in line:
            rows[op + " decode"] = ["decode"] + f[1:6]
    return rows
