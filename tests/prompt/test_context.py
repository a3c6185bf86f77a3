"""The context size (issue 11 part 4): one limit, the session's n_ctx,
picked as llama.cpp users pick it (-c/--ctx-size N at start, 0 = the
model's context_length; `set ctx N` at the prompt), up to context_length
and within memory: the KV cache is sized from it.  Default: context_length,
at most 2048 (model.h FLUID_CTX_DEFAULT).  Prompts longer than n_ctx and
generation that fills it end with a clear message."""
import re
import subprocess

from conftest import build_image
from fluidvm import HOSTED

TINY_CTX = 128   # the tiny preset's llama.context_length


def ctx_of(vm):
    return int(re.search(r"ctx (\d+) \(trained (\d+)\)", vm.cmd("model")).group(1))


def test_set_ctx_bounds_and_memory(tmp_path, gen_model, vm_factory):
    vm = vm_factory(build_image(tmp_path / "c.img", gen_model("tiny", "Q8_0")))
    assert ctx_of(vm) == TINY_CTX                        # default: context_length (< 2048)
    out = vm.cmd("set ctx 48")
    assert "ctx 48 tokens" in out and ctx_of(vm) == 48
    assert "ctx       48 (context_length 128)" in vm.cmd("set")
    out = vm.cmd(f"set ctx {TINY_CTX + 1}")
    assert "error: a context of 129 tokens: this model's context_length is 128" in out
    assert "the context stays at 48 tokens" in out and ctx_of(vm) == 48
    assert "error: set ctx takes a number" in vm.cmd("set ctx lots")
    assert "ctx 128 tokens" in vm.cmd("set ctx 0")     # 0: context_length, as llama.cpp's -c 0
    assert "generated: 2 tokens" in vm.cmd("gen -n 2 --temp 0 Hello")


def test_prompt_and_generation_against_a_chosen_context(tmp_path, gen_model, vm_factory):
    vm = vm_factory(build_image(tmp_path / "p.img", gen_model("tiny", "Q8_0")))
    assert "error" not in vm.cmd("set ctx 40")
    words = lambda n: " ".join(["word"] * n)   # n tokens, and BOS
    out = vm.cmd("gen -n 4 " + words(50))
    assert "error: the prompt is too long: 51 tokens, but the context holds 40" in out, out
    assert len(vm.cmd("tokenize " + words(50)).split(",")) == 51   # tokenize feeds nothing: no limit
    out = vm.cmd("gen -n 100 --temp 0 " + words(29))
    assert "[context full: 40 tokens; generation stopped]" in out, out
    # 10 positions left: 10 tokens fed back, and the 11th sampled from the last logits.
    assert re.search(r"prompt: 30 tokens.*generated: 11 tokens", out), out
    ids = " ".join(["1"] + ["306"] * 40)
    assert "error: more tokens than the context holds (40)" in vm.cmd(f"eval --top 1 {ids}")
    assert "error: need 0 <= -p, -n <= 40 (context)" in vm.cmd("bench -p 41 -n 1 -r 1")


def test_ctx_larger_than_memory_is_refused_with_the_figures(tmp_path, gen_model, vm_factory, target):
    """A model trained for 2^20 positions: its full KV cache (K and V, 2
    blocks x 32 KV dims x 2^20 positions, F16 as llama.cpp's default cache
    type: 256 MiB) does not fit in a 256 MiB budget."""
    big = gen_model("tiny", "Q8_0", 1, extra=["--set", "llama.context_length=1048576"])
    img = build_image(tmp_path / "m.img", big)
    vm = vm_factory(img, mem="256M")
    assert ctx_of(vm) == 2048                              # the default cap
    out = vm.cmd("set ctx 0")
    m = re.search(r"error: a context of 1048576 tokens needs (\d+) MiB \(KV cache (\d+) MiB, activations \d+ MiB\); "
                  r"only (\d+) MiB are free; the context stays at 2048 tokens", out)
    kv_mib = 2 * 2 * 32 * (1 << 20) * 2 >> 20
    assert m and int(m.group(2)) == kv_mib and int(m.group(1)) > int(m.group(3)), out
    assert "generated: 2 tokens" in vm.cmd("gen -n 2 --temp 0 Hello")   # the old context still works
    if target == "hosted":
        # At start, llama.cpp-style: -c too large ends in the same message and status 3.
        p = subprocess.run([HOSTED, "--test", "--mem", "256M", "-c", "0", str(img)], input=b"info\r",
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode()
        assert p.returncode == 3 and "a context of 1048576 tokens needs" in out, out


def test_ctx_size_at_start(tmp_path, gen_model, vm_factory, target):
    img = build_image(tmp_path / "s.img", gen_model("tiny", "Q8_0"))
    extra = ["-c", "64"] if target == "hosted" else ["-fw_cfg", "name=opt/fluid/ctx-size,string=64"]
    vm = vm_factory(img, extra=extra)
    assert re.search(r"model: 'tiny-random': .* ctx 64\n", vm.text().replace("\r", "")), vm.text()[-800:]
    assert ctx_of(vm) == 64
    if target == "hosted":
        p = subprocess.run([HOSTED, "--test", "-c", str(TINY_CTX + 1), str(img)], input=b"info\r",
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode()
        assert p.returncode == 3 and "this model's context_length is 128" in out, out
        p = subprocess.run([HOSTED, "-c", "many", str(img)], capture_output=True, timeout=60)
        assert p.returncode == 2 and b"-c takes a number of tokens" in p.stderr


def test_chat_fills_a_chosen_context(tmp_path, gen_model, vm_factory):
    vm = vm_factory(build_image(tmp_path / "c.img", gen_model("tiny", "Q8_0")))
    for line in ("set ctx 32", "set system none", "set n_predict 100"):
        assert "error" not in vm.cmd(line)
    vm.send("chat\r")
    vm.wait_for("you> ")
    vm.send("Hi\r")                    # 12 tokens of Zephyr turn: 20 positions left
    out = vm.wait_for("you> ", timeout=120)
    assert "[context full: 32 tokens; generation stopped]" in out, out
    vm.send("And more\r")
    out = vm.wait_for("you> ", timeout=60)
    assert re.search(r"error: the turn is too long: \d+ tokens, but the context has room for 0 more \(of 32\)", out)
    assert "/reset" in out
    vm.send("/reset\r")
    vm.wait_for("you> ")
    vm.send("Hi\r")
    assert "assistant> " in vm.wait_for("you> ", timeout=120)   # room again
    vm.send("/exit\r")
    vm.wait_for("fluid> ")
