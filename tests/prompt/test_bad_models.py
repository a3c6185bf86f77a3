"""Bad models end in one clear message and a live prompt (issue 3).

Each malformed GGUF from tests/host/make_bad_gguf.py is put in an image's
model region and booted: the boot log must carry the parser's message for
that case, the prompt must answer, and `gen` must say no model is loaded.
Also: a disk image truncated inside the model region, and a model larger
than the machine's memory.
"""
import subprocess
import sys

import pytest

from conftest import ROOT, build_image

GEN = ROOT / "tests" / "host" / "make_bad_gguf.py"
CASES = ["trunc_header", "trunc_kv_array", "trunc_data", "bad_magic", "version_2",
         "huge_tensor_count", "huge_kv_count", "huge_array_count", "string_past_eof",
         "tokens_wrong_array_type", "dims_overflow", "offset_outside", "misaligned_offset",
         "unsupported_type", "missing_tensor", "wrong_shape", "bad_byte_token", "rope_scaling_linear"]


def expect(case):
    return subprocess.run([sys.executable, str(GEN), "--expect", case], capture_output=True,
                          text=True, check=True).stdout.strip()


def write_case(case, path):
    subprocess.run([sys.executable, str(GEN), case, str(path)], check=True)
    return path


@pytest.mark.parametrize("case", CASES)
def test_malformed_model_is_rejected(case, tmp_path, vm_factory):
    vm = vm_factory(build_image(tmp_path / "b.img", write_case(case, tmp_path / "b.gguf")))
    msg = expect(case)
    assert msg in vm.text(), f"expected {msg!r} in the boot log"
    out = vm.cmd("gen hello")
    assert "no model is loaded" in out and msg in out
    assert "CPU:" in vm.cmd("info")


def test_valid_small_model_loads(tmp_path, vm_factory):
    vm = vm_factory(build_image(tmp_path / "ok.img", write_case("valid", tmp_path / "ok.gguf")))
    assert "model: loaded" in vm.text()
    assert vm.cmd("tokenize \\x01").strip().startswith("[1, ")


def test_truncated_disk_image(tmp_path, gen_model, vm_factory):
    img = build_image(tmp_path / "t.img", gen_model("tiny", "Q8_0"))
    size = img.stat().st_size
    with open(img, "r+b") as f:
        f.truncate(size - 64 * 1024)
    vm = vm_factory(img)
    assert "the disk image is truncated" in vm.text()
    assert "no model is loaded" in vm.cmd("gen hello")


def test_damaged_model_bytes(tmp_path, gen_model, vm_factory):
    img = build_image(tmp_path / "d.img", gen_model("tiny", "Q8_0"))
    out = subprocess.run([str(ROOT / "build" / "tools" / "mkimage"), "--info", str(img)],
                         capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("model")][0].split()
    lba, nbytes = int(line[2]), int(line[4])
    with open(img, "r+b") as f:   # one bit of the last tensor's data
        f.seek(lba * 512 + nbytes - 10)
        b = f.read(1)
        f.seek(lba * 512 + nbytes - 10)
        f.write(bytes([b[0] ^ 0x40]))
    vm = vm_factory(img)
    assert "model region checksum mismatch" in vm.text()


def test_model_larger_than_memory(tmp_path, gen_model, vm_factory, target):
    img = build_image(tmp_path / "big.img", gen_model("mini", "Q8_0"))   # 20 MiB
    # QEMU's 64 MiB leave ~16 MiB above the kernel's reserved low memory;
    # the hosted budget is all for the model.
    vm = vm_factory(img, mem="64M" if target == "qemu" else "16M")
    assert "does not fit in memory" in vm.text()
    assert "no model is loaded" in vm.cmd("gen hello")


def _free_mib(vm):
    line = next(l for l in vm.cmd("info").splitlines() if l.startswith("memory:"))
    return int(line.split("MiB free")[0].split(",")[-1])


def test_failed_load_gives_memory_back(tmp_path, vm_factory):
    """A model refused after it was read (here by the Llama validator) holds
    no memory afterwards: as much is free as with no model at all (the file
    buffer and the 8 MiB parse arena came back)."""
    none = vm_factory(build_image(tmp_path / "none.img"))
    bad = vm_factory(build_image(tmp_path / "bad.img", write_case("wrong_shape", tmp_path / "b.gguf")))
    assert expect("wrong_shape") in bad.text()
    assert _free_mib(bad) == _free_mib(none)


def test_tokenizer_failure_names_itself_once(tmp_path, vm_factory):
    """A vocabulary the tokenizer refuses (make_bad_gguf's tiny preset has 8
    of the 256 byte tokens) gives one "tokenizer: ..." message, not
    "tokenizer: tokenizer: ..." (found by the load-path fuzzer's check)."""
    gguf = tmp_path / "tiny.gguf"
    subprocess.run([sys.executable, str(GEN), "--preset", "tiny", "valid", str(gguf)], check=True)
    vm = vm_factory(build_image(tmp_path / "t.img", gguf))
    assert "model: tokenizer: no byte token <0x08> in the vocabulary" in vm.text()
    assert "tokenizer: tokenizer:" not in vm.text()


def test_model_file_name_is_printed_safely(tmp_path, vm_factory):
    """The image header's model name comes from the disk: control bytes in
    it (a file name with an escape sequence) print as '?', never raw to the
    terminal (found by the load-path fuzzer's console check)."""
    gguf = write_case("wrong_shape", tmp_path / "\x1b[2Jx.gguf")
    vm = vm_factory(build_image(tmp_path / "n.img", gguf))
    assert "model: ?[2Jx.gguf, 1 MiB on " in vm.text()
    assert "\x1b" not in vm.text()
