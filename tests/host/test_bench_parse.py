"""Tests of tools/bench.py's parsing and BENCH-line formatting on canned
output (no VM, no peer).

    /usr/bin/python3 -m pytest -q tests/host/test_bench_parse.py
"""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402

# What Fluid's `bench -p 128 -n 64 -r 3` prints (serial line endings kept).
FLUID_OUT = (
    "| model | size | cores | test | t/s |\r\n"
    "|---|---|---|---|---|\r\n"
    "| tinyllama-shaped-random | 0.59 GiB | 2 | pp128 | 11.04 +- 4.62 |\r\n"
    "| tinyllama-shaped-random | 0.59 GiB | 2 | tg64 | 3.49 +- 0.75 |\r\n"
    "memory read bandwidth 12.50 GB/s (1 core); decode moves 2.21 GB/s of weights (18% of it)\r\n"
)

BOOT_LOG = (
    "Fluid kernel\r\n"
    "cpu: AuthenticAMD family 0xf model 0x6b, x86-64-v3, tag x86-64-v3, 2 cores, TSC 2253 MHz\r\n"
    "memory: 3071 MiB usable, 3023 MiB free\r\n"
)

PEER_OUT = (
    "some stray log line\n"
    '{"ok":true,"peer":"node-llama-cpp","version":"3.22.1","threads":2,"model_bytes":635990016,'
    '"pp":{"n":128,"mean":96.5,"sd":1.25,"runs":[95,97,97.5]},'
    '"tg":{"n":64,"mean":42.2,"sd":0.5,"runs":[42,42.2,42.4]}}\n'
)


def test_parse_fluid_table_and_bandwidth():
    r = bench.parse_fluid_bench(FLUID_OUT)
    assert r["model"] == "tinyllama-shaped-random"
    assert r["size_gib"] == pytest.approx(0.59)
    assert r["cores"] == 2
    assert r["pp"] == {"n": 128, "mean": pytest.approx(11.04), "sd": pytest.approx(4.62)}
    assert r["tg"] == {"n": 64, "mean": pytest.approx(3.49), "sd": pytest.approx(0.75)}
    assert r["bw_gbs"] == pytest.approx(12.50)
    assert r["bw_cores"] == 1
    assert r["decode_gbs"] == pytest.approx(2.21)
    assert r["decode_pct"] == pytest.approx(18.0)


def test_parse_fluid_only_tg_and_no_bandwidth_line():
    text = "| mini-random | 0.01 GiB | 1 | tg16 | 3.49 +- 0.75 |\n"
    r = bench.parse_fluid_bench(text)
    assert r["pp"] is None
    assert r["tg"]["n"] == 16 and r["tg"]["mean"] == pytest.approx(3.49)
    assert r["cores"] == 1
    assert r["bw_gbs"] is None and r["decode_pct"] is None


def test_parse_fluid_errors():
    with pytest.raises(ValueError, match="bench failed"):
        bench.parse_fluid_bench("error: need 0 <= -p, -n <= 2048 (context), not both 0\n")
    with pytest.raises(ValueError, match="no pp/tg row"):
        bench.parse_fluid_bench("| model | size | cores | test | t/s |\n|---|---|---|---|---|\n")


def test_parse_cpu_line():
    line, cores = bench.parse_cpu_line(BOOT_LOG)
    assert cores == 2
    assert line.startswith("AuthenticAMD family 0xf") and line.endswith("TSC 2253 MHz")
    assert bench.parse_cpu_line("nothing here") == (None, None)


def test_parse_peer_json():
    d = bench.parse_peer_json(PEER_OUT)
    assert d["ok"] is True
    assert d["pp"]["mean"] == pytest.approx(96.5)
    assert d["tg"]["n"] == 64 and d["tg"]["mean"] == pytest.approx(42.2)
    err = bench.parse_peer_json('{"ok":false,"error":"cannot import node-llama-cpp"}\n')
    assert err["ok"] is False and "node-llama-cpp" in err["error"]
    with pytest.raises(ValueError):
        bench.parse_peer_json("Segmentation fault\n")


def test_ratio():
    assert bench.ratio(11.04, 96.5) == pytest.approx(0.114404, rel=1e-5)
    assert bench.ratio(None, 1.0) is None
    assert bench.ratio(1.0, None) is None
    assert bench.ratio(1.0, 0.0) is None


def test_bench_line_full():
    f = bench.parse_fluid_bench(FLUID_OUT)
    p = bench.parse_peer_json(PEER_OUT)
    line = bench.bench_line("models/tinyllama-shaped-Q4_0.gguf", 2, f["pp"]["mean"], f["tg"]["mean"],
                            p["pp"]["mean"], p["tg"]["mean"])
    assert line == ("BENCH model=models/tinyllama-shaped-Q4_0.gguf threads=2 fluid_pp=11.04 fluid_tg=3.49 "
                    "peer_pp=96.50 peer_tg=42.20 pp_ratio=0.114 tg_ratio=0.083")
    # Machine-readable: key=value pairs that parse back to the numbers.
    kv = dict(tok.split("=", 1) for tok in line.split()[1:])
    assert float(kv["fluid_pp"]) == pytest.approx(11.04)
    assert float(kv["tg_ratio"]) == pytest.approx(3.49 / 42.2, abs=5e-4)
    assert int(kv["threads"]) == 2


def test_bench_line_without_peer():
    line = bench.bench_line("m.gguf", 4, 0.13, 0.07, None, None)
    assert line == ("BENCH model=m.gguf threads=4 fluid_pp=0.13 fluid_tg=0.07 peer_pp=null peer_tg=null "
                    "pp_ratio=null tg_ratio=null")
    nan = float("nan")
    line = bench.bench_line("a b.gguf", 1, nan, None, 5.0, 2.0)
    assert line == ("BENCH model=a%20b.gguf threads=1 fluid_pp=null fluid_tg=null peer_pp=5.00 peer_tg=2.00 "
                    "pp_ratio=null tg_ratio=null")
