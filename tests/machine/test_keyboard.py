"""The PS/2 keyboard as a person types on it: QEMU's QMP `send-key` presses
real keys (scancodes through the i8042), and the line editor must see what
a serial terminal would send.  Right Ctrl must be released with its key
(it once stayed down, turning every later letter into a control byte), and
Home, End and Delete must edit the line."""
import json
import socket
import time

from conftest import build_image


class QMP:
    def __init__(self, path, timeout=30):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(str(path))
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())                      # greeting
        self.call("qmp_capabilities")

    def call(self, cmd, **args):
        self.f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                assert "error" not in r, r
                return r["return"]

    def keys(self, *qcodes):
        """Press the keys together, then release them (one chord)."""
        self.call("send-key", keys=[{"type": "qcode", "data": q} for q in qcodes])
        time.sleep(0.05)

    def type(self, text):
        for ch in text:
            self.keys("spc" if ch == " " else ch)


def test_right_ctrl_home_end_delete(tmp_path, vm_factory):
    sock = tmp_path / "qmp.sock"
    vm = vm_factory(build_image(tmp_path / "k.img"), extra=["-qmp", f"unix:{sock},server=on,wait=off"])
    q = QMP(sock)
    try:
        q.keys("ctrl_r", "u")          # Ctrl-U with right Ctrl: clears the (empty) line
        q.type("okenize hix")          # with right Ctrl stuck this would be control bytes
        q.keys("delete")               # at the end: nothing to delete
        q.keys("left")
        q.keys("delete")               # removes the x
        q.keys("home")
        q.type("t")                    # -> "tokenize hi"
        q.keys("end")
        q.keys("ret")
        out = vm.wait_for("fluid> ", timeout=60)
        assert "no model is loaded" in out, out     # `tokenize` was recognised ...
        assert "unknown command" not in out, out
        q.type("info")
        q.keys("ret")
        assert "platform:  pc" in vm.wait_for("fluid> ", timeout=60)
    finally:
        q.s.close()
