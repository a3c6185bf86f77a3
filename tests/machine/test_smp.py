"""SMP: the application processors come up, the forward pass split over
them gives the same answers as one core, and an AP's exception is reported.

Bit-identical results are expected, not just close ones: smp_parallel_for()
hands every output element (a block of matrix rows, an attention head) to
exactly one CPU, which computes it with the same code and the same MXCSR
as a single core would; only which CPU does it changes.  So `eval` logits
and greedy `gen` text must match exactly between 1, 2 and 3 cores.

Runs under whatever fluidvm picks (KVM, or TCG with one host thread per
vCPU).  Decode speed with 1 and 2 cores is reported, not asserted: these
machines are shared and noisy.
"""
import json
import re

import pytest

from conftest import build_image, report_figure

# 40 tokens: one full prefill batch of 32 (matrix-matrix products), then 8
# more, so attention also runs over positions cached by an earlier batch.
EVAL_TOKENS = [1, 15043, 3186, 29991] + [(7919 * i) % 31000 + 300 for i in range(36)]


@pytest.fixture(scope="module")
def mini_image(gen_model, tmp_path_factory):
    return build_image(tmp_path_factory.mktemp("smp") / "mini.img", gen_model("mini", "Q4_0"))


def boot(vm_factory, image, cores):
    vm = vm_factory(image, smp=cores)
    assert f"smp: {cores} of {cores} cores online" in vm.text(), vm.text()
    return vm


def eval_rows(vm):
    out = vm.cmd("eval --top 16 " + " ".join(map(str, EVAL_TOKENS)), timeout=600)
    rows = [l for l in out.splitlines() if l.startswith("{")]
    assert len(rows) == len(EVAL_TOKENS), out
    return rows


def test_two_cores_online(vm_factory, empty_image):
    vm = boot(vm_factory, empty_image, 2)
    assert re.search(r"cores:\s+2 found \(ACPI MADT\), 2 online", vm.cmd("info"))


def test_one_core(vm_factory, empty_image):
    vm = boot(vm_factory, empty_image, 1)
    assert re.search(r"cores:\s+1 found \(ACPI MADT\), 1 online", vm.cmd("info"))


def test_eval_identical_across_core_counts(vm_factory, mini_image):
    """Teacher-forced logits (JSON rows of `eval`) from 1, 2 and 3 cores
    are identical, digit for digit."""
    results = {}
    for cores in (1, 2, 3):
        vm = boot(vm_factory, mini_image, cores)
        results[cores] = eval_rows(vm)
        vm.close()
    for cores in (2, 3):
        for pos, (a, b) in enumerate(zip(results[1], results[cores])):
            assert a == b, f"position {pos}: 1 core {a} vs {cores} cores {b}"
    json.loads(results[1][-1])   # well-formed


def gen(vm, n):
    out = vm.cmd(f"gen -n {n} --temp 0 Once upon a time", timeout=600)
    m = re.search(r"\[prompt: (\d+) tokens, ([\d.]+) tok/s \| generated: (\d+) tokens, ([\d.]+) tok/s", out)
    assert m, out
    return out[:m.start()], float(m.group(4))


def test_greedy_gen_identical_and_speed(vm_factory, mini_image):
    """Greedy text is the same with 1 and 2 cores; decode speed reported."""
    text, speed = {}, {}
    for cores in (1, 2):
        vm = boot(vm_factory, mini_image, cores)
        text[cores], _ = gen(vm, 8)
        _, speed[cores] = gen(vm, 64)      # longer run for the figure
        vm.close()
    assert text[1] == text[2]
    report_figure(f"mini Q4_0 decode: 1 core {speed[1]:.2f} tok/s, 2 cores {speed[2]:.2f} tok/s "
                  f"({speed[2] / speed[1]:.2f}x)")


@pytest.mark.parametrize("cpu", [1, 0])
def test_exception_on_any_core_stops_machine(vm_factory, empty_image, cpu):
    """A fault on an AP (or on the BSP while an AP waits) prints the
    register dump with that core's id and stops the machine (QEMU exits
    with the failure status in test mode)."""
    from fluidvm import EXIT_FAILURE
    vm = boot(vm_factory, empty_image, 2)
    vm.send(f"fault pf {cpu}\r")
    assert vm.wait_exit(60) == EXIT_FAILURE
    log = vm.text()
    assert f"*** CPU exception on cpu {cpu}: vector 14, page fault (#PF) ***" in log, log
    assert "CR2 0xffff800000000000" in log and "RFLAGS" in log and "System halted." in log
    assert log.count("*** CPU exception") == 1, log   # the other core stopped quietly
