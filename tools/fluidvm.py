#!/usr/bin/env python3
"""The one runner for Fluid's two targets: `make run`, the benchmarks, the
PGO loop and the tests all use it.

- qemu: the unikernel (plat/pc) in QEMU.  Chooses KVM when /dev/kvm is
  usable (-cpu host,-arch-capabilities; plain -cpu host aborts on some
  machines, see REFERENCE.md) and TCG (-cpu max) otherwise; uses every host
  core and 3 GiB unless told.  The image is attached as a virtio disk (or
  AHCI), COM1 is the console.
- hosted: the same image run by build/fluid-hosted (plat/hosted), a Linux
  process at native speed; the terminal is the console.

    fluidvm.py run build/fluid.img [--hosted] [--mem 3G] [--smp N] [--accel kvm|tcg] [-c N]

-c/--ctx-size N: the context size in tokens, as llama.cpp's (0: the
model's context_length): hosted's -c N, QEMU's fw_cfg opt/fluid/ctx-size.

Tests use boot(): a Target driven over pipes, in test mode (QEMU: fw_cfg
opt/fluid/test=1 plus isa-debug-exit; hosted: --test), so on both a clean
poweroff exits with status 1 and a kernel failure with status 3.
"""
import argparse
import atexit
import os
import select
import subprocess
import sys
import time

QEMU = "qemu-system-x86_64"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTED = os.environ.get("FLUID_HOSTED", os.path.join(ROOT, "build", "fluid-hosted"))
TARGETS = ("hosted", "qemu")
EXIT_CLEAN = 1      # isa-debug-exit with value 0: (0 << 1) | 1
EXIT_FAILURE = 3    # isa-debug-exit with value 1: (1 << 1) | 1


def kvm_usable():
    """True when /dev/kvm opens AND the host CPU has hardware virtualisation
    (vmx or svm).  A /dev/kvm without them is a paravirtual backend such as
    PVM (kvm_pvm), which runs only guests written for it: Fluid's kernel
    would fall into its instruction emulator and die on the first SSE
    arithmetic instruction.  FLUID_ACCEL=kvm|tcg overrides the choice."""
    forced = os.environ.get("FLUID_ACCEL")
    if forced:
        return forced == "kvm"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"vmx", "svm"})


def qemu_args(image, mem="3G", smp=None, accel=None, test=False, extra=(), disk="virtio", drive_opts="",
              device_opts=""):
    """QEMU's argument list.  disk="virtio": i440fx machine with the image as
    a virtio-blk disk; disk="ahci": q35 machine with the image as a SATA
    disk on its AHCI controller (the bare-metal path); disk="usb": q35 with
    the image as a USB stick (xHCI) the firmware boots from, which the
    kernel has no driver for (README "Bare metal").  Tests: drive_opts
    (",throttling.bps-write=10") extend the -drive, device_opts
    (",queue-size=4") the virtio-blk-pci device; `image` may name a QEMU
    protocol ("blkdebug:RULES:IMG")."""
    accel = accel or ("kvm" if kvm_usable() else "tcg")
    cpu = "host,-arch-capabilities" if accel == "kvm" else "max"
    smp = smp or os.cpu_count() or 1
    if disk == "ahci":
        drive = ["-machine", "q35", "-drive", f"file={image},format=raw,if=none,id=d0{drive_opts}",
                 "-device", "ide-hd,drive=d0,bus=ide.0"]
    elif disk == "usb":
        drive = ["-machine", "q35", "-device", "qemu-xhci", "-drive", f"file={image},format=raw,if=none,id=d0",
                 "-device", "usb-storage,drive=d0,bootindex=0"]
    elif device_opts:
        drive = ["-machine", "pc", "-drive", f"file={image},format=raw,if=none,id=d0{drive_opts}",
                 "-device", f"virtio-blk-pci,drive=d0{device_opts}"]
    else:
        drive = ["-machine", "pc", "-drive", f"file={image},format=raw,if=virtio{drive_opts}"]
    args = [QEMU, *drive, "-accel", accel, "-cpu", cpu,
            "-m", str(mem), "-smp", str(smp),
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-display", "none"]
    if test:
        # A triple fault ends QEMU instead of rebooting into a loop.
        args += ["-no-reboot", "-fw_cfg", "name=opt/fluid/test,string=1"]
    return args + list(extra)


class BootError(Exception):
    """The kernel panicked, QEMU died, or an expected output never came."""


def hosted_args(image, mem=None, smp=None, test=False, stay=False, extra=()):
    """fluid-hosted's argument list (mem: "3G"-style budget; smp: threads)."""
    args = [HOSTED]
    if mem:
        args += ["--mem", str(mem)]
    if smp:
        args += ["--threads", str(smp)]
    if test:
        args.append("--test")
    if stay:
        args.append("--stay")
    return args + list(extra) + [str(image)]


class Target:
    """A booted Fluid in test mode, driven over its console on pipes: COM1
    for QEMU, stdin/stdout for hosted.  Same methods for both."""

    name = "?"

    def _start(self, args, boot_timeout, wait_prompt=True):
        self.log = bytearray()
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, bufsize=0)
        self._mark = 0
        _live.add(self)
        if not wait_prompt:
            return
        try:
            self.wait_for(b"fluid> ", boot_timeout)
        except BaseException:
            self.close()   # never leave a QEMU (or a process) behind a failed boot
            raise

    def _read_some(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return False
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            raise BootError(self._fail_text("%s exited (status %s)" % (self.name, self.proc.wait())))
        self.log += data
        return True

    def _fail_text(self, why):
        tail = self.log[-6000:].decode("utf-8", "replace")
        return f"{why}\n----- serial log (last 6000 bytes) -----\n{tail}"

    def wait_for(self, needle, timeout=60):
        """Wait until `needle` appears after the last mark; return the text
        from the mark to the end of the needle and move the mark past it."""
        if isinstance(needle, str):
            needle = needle.encode()
        deadline = time.monotonic() + timeout
        while True:
            i = self.log.find(needle, self._mark)
            if i >= 0:
                out = bytes(self.log[self._mark:i + len(needle)])
                self._mark = i + len(needle)
                return out.decode("utf-8", "replace")
            if b"*** CPU exception" in self.log[self._mark:] or b"System halted" in self.log[self._mark:]:
                self._drain(1.0)
                raise BootError(self._fail_text("kernel panic"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise BootError(self._fail_text(f"timed out after {timeout}s waiting for {needle!r}"))
            self._read_some(min(left, 0.5))

    def _drain(self, seconds):
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end and self._read_some(0.1):
                pass
        except BootError:
            pass

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def cmd(self, line, timeout=60):
        """Type a command line and return its output (echo removed, up to
        the next prompt)."""
        self.send(line + "\r")
        out = self.wait_for("fluid> ", timeout)
        out = out[:-len("fluid> ")]
        # Drop the echoed command line (up to the first newline).
        nl = out.find("\n")
        return out[nl + 1:] if nl >= 0 else out

    def text(self):
        return self.log.decode("utf-8", "replace")

    def wait_exit(self, timeout=30):
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            try:
                self._read_some(0.2)
            except BootError:
                break
        try:
            status = self.proc.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BootError(self._fail_text(f"{self.name} did not exit"))
        # What it wrote just before it exited may still be in the pipe: the
        # loop above stops as soon as poll() sees the exit.
        self._drain(2.0)
        return status

    def close(self):
        _live.discard(self)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class FluidVM(Target):
    """The unikernel in QEMU (plat/pc).  wait_prompt=False for images that
    must stop before the prompt (a boot stage halts after its message)."""

    name = "QEMU"

    def __init__(self, image, mem="3G", smp=None, accel=None, extra=(), boot_timeout=120, disk="virtio",
                 drive_opts="", device_opts="", wait_prompt=True):
        args = qemu_args(image, mem, smp, accel, test=True, extra=extra, disk=disk, drive_opts=drive_opts,
                         device_opts=device_opts)
        args += ["-serial", "stdio", "-monitor", "none"]
        self.accel = accel or ("kvm" if kvm_usable() else "tcg")
        self._start(args, boot_timeout, wait_prompt)


class FluidHosted(Target):
    """The same image as a Linux process (plat/hosted, build/fluid-hosted).
    stay: keep the prompt when the model fails to load (as the unikernel
    does); wait_prompt=False for images that must fail before it."""

    name = "fluid-hosted"
    accel = "native"

    def __init__(self, image, mem="3G", smp=None, extra=(), boot_timeout=60, stay=True, wait_prompt=True,
                 **_ignored):
        if not os.path.exists(HOSTED):
            raise BootError(f"{HOSTED} does not exist (run `make hosted`)")
        self._start(hosted_args(image, mem, smp, test=True, stay=stay, extra=extra), boot_timeout, wait_prompt)


def boot(image, target="hosted", **kw):
    """Boot `image` on `target` ("hosted" or "qemu") in test mode."""
    if target == "qemu":
        kw.pop("stay", None)
        return FluidVM(str(image), **kw)
    if target == "hosted":
        for k in ("accel", "disk", "drive_opts", "device_opts"):
            kw.pop(k, None)
        return FluidHosted(str(image), **kw)
    raise ValueError(f"unknown target {target!r} (one of {TARGETS})")


_live = set()


@atexit.register
def _kill_all():
    """An interrupted test run must not leave QEMUs (or processes) spinning."""
    for vm in list(_live):
        vm.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot an image with its console on this terminal")
    r.add_argument("image")
    r.add_argument("--hosted", action="store_true", help="run it as a Linux process (build/fluid-hosted)")
    r.add_argument("--mem", default="3G")
    r.add_argument("--smp", type=int)
    r.add_argument("--accel", choices=["kvm", "tcg"])
    r.add_argument("--disk", choices=["virtio", "ahci", "usb"], default="virtio")
    r.add_argument("-c", "--ctx-size", type=int, help="context size in tokens (0: the model's context_length)")
    a = ap.parse_args()
    ctx = [] if a.ctx_size is None else [str(a.ctx_size)]
    if not os.path.exists(a.image):
        sys.exit(f"fluidvm: {a.image} does not exist (run `make image`)")
    if a.hosted:
        args = hosted_args(a.image, a.mem, a.smp, extra=["-c", *ctx] if ctx else ())
        print("fluidvm: " + " ".join(args), file=sys.stderr)
        print("fluidvm: leave with poweroff or Ctrl-D", file=sys.stderr)
        os.execv(args[0], args)
    args = qemu_args(a.image, a.mem, a.smp, a.accel, disk=a.disk,
                     extra=["-fw_cfg", f"name=opt/fluid/ctx-size,string={ctx[0]}"] if ctx else ())
    args += ["-serial", "mon:stdio"]
    print("fluidvm: " + " ".join(args), file=sys.stderr)
    print("fluidvm: leave QEMU with Ctrl-A then X", file=sys.stderr)
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
