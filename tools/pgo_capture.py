"""Taking a profile from a running Fluid: the same code for every console.

    con = fluidvm.boot(image, ...)      QEMU's COM1 or the hosted process
    con = SerialConsole(dev, baud)      a real machine's COM1 through a tty
    prof, text = run_workload(con, prompt, n)   prof reset; gen; prof export
    prof = export(con)                  just `prof export`
    prof = wait_export(con, timeout)    nothing sent: the user types it
    prof = extract_profile(log_text)    a captured console log

The kernel prints the profile between two marker lines (PROF_BEGIN/PROF_END
in kernel/core/shell/cmd_mod.c; profiles/README.md); everything between
them, with "\\r" removed, is one JSON document.  Every failure raises
ProfileError saying what is wrong (no marker, a cut-off export, bytes lost
on the line, another schema), or fluidvm.BootError when the machine stops
answering; nothing waits forever.
"""
import codecs
import datetime
import json
import os
import re
import select
import sys
import termios
import time
from pathlib import Path

from fluidvm import BootError, Target

PROF_BEGIN = "-----BEGIN FLUID PROFILE-----"
PROF_END = "-----END FLUID PROFILE-----"
SCHEMA = "fluid-profile"
SCHEMA_VERSION = 1
PROMPT = b"fluid> "
STATS_RE = re.compile(r"\[prompt: \d+ tokens, [0-9.]+ tok/s \| generated: \d+ tokens")


class ProfileError(Exception):
    """No usable profile in what the console printed; str() says why."""


def extract_profile(text, where="the console output"):
    """The LAST profile in `text` (a log may hold several exports),
    parsed and schema-checked; a last one that is cut off is an error, not
    a reason to take an older one.  Raises ProfileError."""
    i = text.rfind(PROF_BEGIN)
    j = text.find(PROF_END, i + 1) if i >= 0 else -1
    if i < 0:
        raise ProfileError(f"no profile in {where}: no {PROF_BEGIN} line (type `prof export` at the prompt)")
    if j < 0:
        raise ProfileError(f"the profile in {where} is cut off: {PROF_BEGIN} has no {PROF_END} line after it")
    body = text[i + len(PROF_BEGIN):j].replace("\r", "")
    try:
        prof = json.loads(body)
    except ValueError as e:
        raise ProfileError(f"the profile in {where} is not valid JSON ({e}): bytes were lost or changed on "
                           "the line; export it again (a lower baud rate helps on a poor cable)") from None
    if not isinstance(prof, dict) or prof.get("schema") != SCHEMA or prof.get("schema_version") != SCHEMA_VERSION:
        got = prof.get("schema") if isinstance(prof, dict) else type(prof).__name__
        ver = prof.get("schema_version") if isinstance(prof, dict) else None
        raise ProfileError(f"the document in {where} is {got!r} version {ver}, not {SCHEMA!r} version "
                           f"{SCHEMA_VERSION}")
    for key in ("cpu", "modules", "workload", "total_cycles"):
        if key not in prof:
            raise ProfileError(f"the profile in {where} has no {key!r}")
    return prof


def last_gen_output(text):
    """(command, generated text) of the last `gen` whose statistics line
    is in a console log, or (None, None)."""
    found = None
    for m in re.finditer(r"fluid> (gen [^\r\n]*)\r?\n(.*?)\r?\n?(?=\[prompt: \d+ tokens)", text, re.S):
        found = (m.group(1), m.group(2).replace("\r", "").strip("\n"))
    return found or (None, None)


# ---- a real machine's serial line ----

class SerialConsole(Target):
    """A machine's COM1 through a host tty (USB serial adapter, /dev/ttyS0,
    or a pty in the tests), opened raw at `baud`, 8N1, no flow control, no
    modem lines (CLOCAL): the same interface as fluidvm's targets (send,
    wait_for, cmd, log).  Raises ProfileError for a path that is not a
    terminal or a baud rate termios does not know.  The tty's settings are
    restored by close()."""

    name = "the machine on the serial line"

    def __init__(self, dev, baud=115200):
        speed = getattr(termios, f"B{baud}", None)
        if speed is None:
            raise ProfileError(f"--baud {baud}: not a baud rate this host's termios knows")
        self.dev, self.baud = dev, baud
        self.log = bytearray()
        self._mark = 0
        try:
            self.fd = os.open(dev, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise ProfileError(f"{dev}: cannot open: {e.strerror}"
                               + (" (add yourself to the dialout group)" if e.errno == 13 else "")) from None
        try:
            self.saved = termios.tcgetattr(self.fd)
        except termios.error:
            os.close(self.fd)
            raise ProfileError(f"{dev} is not a terminal (a serial device such as /dev/ttyUSB0 or /dev/ttyS0)") \
                from None
        iflag, oflag, cflag, lflag, _, _, cc = self.saved
        iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR |
                   termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF | termios.IXANY)
        oflag &= ~termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | termios.CRTSCTS)
        cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
        cc = list(cc)
        cc[termios.VMIN], cc[termios.VTIME] = 0, 0
        termios.tcsetattr(self.fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
        termios.tcflush(self.fd, termios.TCIFLUSH)     # what came before we listened is stale

    def _read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        except OSError as e:
            raise BootError(self._fail_text(f"{self.dev}: the line hung up ({e.strerror})")) from None
        if not data:
            raise BootError(self._fail_text(f"{self.dev}: the line hung up"))
        self.log += data
        return True

    def send(self, text):
        """Write paced: 8 bytes, then as long as they take on the wire, so
        the kernel's polled 16-byte UART FIFO (kernel/plat/pc/dev/serial.c)
        never overflows while it echoes."""
        if isinstance(text, str):
            text = text.encode()
        per_byte = 10.0 / self.baud                      # start + 8 data + stop bits
        for k in range(0, len(text), 8):
            chunk = text[k:k + 8]
            while chunk:
                select.select([], [self.fd], [], 1.0)
                try:
                    chunk = chunk[os.write(self.fd, chunk):]
                except BlockingIOError:
                    continue
            termios.tcdrain(self.fd)
            time.sleep(8 * per_byte)

    def sync(self, timeout):
        """Press Enter and wait for the prompt, then for the line to fall
        quiet, so the next command's output starts after every prompt
        already on its way.  Raises BootError after `timeout` s."""
        self.send("\r")
        self.wait_for(PROMPT, timeout)
        while self._read_some(0.3):
            pass
        self._mark = len(self.log)

    def close(self):
        if getattr(self, "fd", -1) >= 0:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
            os.close(self.fd)
            self.fd = -1


# ---- the workload, on any console ----

def run_cmd_streaming(con, line, timeout, echo):
    """Type a command and wait for the prompt, echoing output as it comes;
    returns the output without the echoed command line."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")   # a character may span two reads
    con.send(line + "\r")
    start = len(con.log)
    shown = start
    deadline = time.monotonic() + timeout
    while True:
        i = con.log.find(PROMPT, start)
        if echo and len(con.log) > shown:
            end = i if i >= 0 else len(con.log)
            sys.stdout.write(dec.decode(bytes(con.log[shown:end])))
            sys.stdout.flush()
            shown = end
        if i >= 0:
            out = bytes(con.log[start:i]).decode("utf-8", "replace")
            con._mark = i + len(PROMPT)
            nl = out.find("\n")
            return out[nl + 1:] if nl >= 0 else out
        if b"*** CPU exception" in con.log[start:]:
            raise BootError(con._fail_text("kernel panic"))
        if time.monotonic() > deadline:
            raise BootError(con._fail_text(f"timed out after {timeout}s running {line!r}"))
        con._read_some(0.2)


def export(con, timeout=120):
    """Send `prof export` and return the profile it prints."""
    start = len(con.log)
    con.send("prof export\r")
    con.wait_for(PROF_END, timeout)
    con.wait_for(PROMPT, 30)
    return extract_profile(bytes(con.log[start:]).decode("utf-8", "replace"), "the export")


def wait_export(con, timeout):
    """Send nothing; return the profile of the first `prof export` someone
    types at the machine.  Raises BootError after `timeout` s."""
    start = len(con.log)
    con.wait_for(PROF_END, timeout)
    return extract_profile(bytes(con.log[start:]).decode("utf-8", "replace"), "the export")


def run_workload(con, prompt, n, warmup=0, timeout=1800, echo=True, log=print):
    """The fixed workload at the prompt: `prof reset`, [`gen -n warmup`,
    `prof reset`], `gen -n N --temp 0 --seed 1 PROMPT` (greedy: repeatable),
    `prof export`.  Returns (profile, generated text)."""
    if "no model is loaded" in con.cmd("model"):
        raise ProfileError("the machine has no usable model; build the image with `make image MODEL=...`")
    con.cmd("prof reset")
    if warmup:
        log(f"warm-up: gen -n {warmup}")
        con.cmd(f"gen -n {warmup} --temp 0 {prompt}", timeout=timeout)
        con.cmd("prof reset")
    log(f"workload: prompt {prompt!r}, {n} decode tokens (greedy)")
    out = run_cmd_streaming(con, f"gen -n {n} --temp 0 --seed 1 {prompt}", timeout, echo)
    if echo:
        print(flush=True)
    log("exporting the profile")
    prof = export(con)
    m = STATS_RE.search(out)
    return prof, (out[:m.start()] if m else out).strip("\r\n")


# ---- saving ----

def save_profile(prof, capture, profiles_dir):
    """Write prof (with `capture` added) as
    <profiles_dir>/<model-id>/<cpu-tag>/<UTC timestamp>.json and point the
    `latest` link beside it at it (atomically: rename).  Returns the path."""
    now = datetime.datetime.now(datetime.timezone.utc)
    prof["capture"] = dict(time=now.isoformat(timespec="seconds"), host=os.uname().nodename, **capture)
    model_id = (prof.get("model") or {}).get("id", "none")
    d = Path(profiles_dir) / model_id / prof["cpu"]["tag"]
    d.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = d / f"{stamp}.json"
    k = 1
    while path.exists():
        path = d / f"{stamp}-{k}.json"
        k += 1
    path.write_text(json.dumps(prof, indent=1) + "\n")
    tmp = d / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(path.name)
    os.replace(tmp, d / "latest")
    return path
