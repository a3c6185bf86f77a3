#!/usr/bin/env bash
# fresh-root-check.sh - the README's first command on a machine that has
# nothing installed: a fresh Debian 12 root (debootstrap minbase with only
# make, git and ca-certificates) gets a clone of this repository, and
# `make run` there must install what it needs, build the image and boot it
# to the prompt (then `poweroff`).  CI runs this before the test suite, so
# a build step that only works on a machine where the tools were already
# installed (as `$(shell clang-19 ...)` at Makefile parse time once did)
# fails CI instead of a new user.
#
#   tools/fresh-root-check.sh [REPO]      (root; REPO defaults to this one)
#
# Uses the machine's apt mirror and its extra CA certificates (a proxy's)
# so the root reaches the same registries as the machine.
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/..}" && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh-root-check: needs root (debootstrap, chroot)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /tmp/fluid-fresh-root.XXXXXX)
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    pkill -f "qemu-system-x86_64.*$root" 2>/dev/null || true
    for m in dev sys proc; do umount -R "$root/$m" 2>/dev/null || umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT
trap "exit 1" INT TERM

t0=$(date +%s)
echo "fresh-root-check: debootstrap bookworm (minbase, make git ca-certificates) from $mirror"
debootstrap --variant=minbase --include=make,git,ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -20 "$root.log"; echo "fresh-root-check: debootstrap failed" >&2; exit 1; }
rm -f "$root.log"
# The machine's extra CAs (an egress proxy's), where the tools look for them.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi
for f in "${NODE_EXTRA_CA_CERTS:-}" "${SSL_CERT_FILE:-}"; do
    if [ -n "$f" ] && [ -f "$f" ] && [ ! -e "$root$f" ]; then
        mkdir -p "$root$(dirname "$f")" && cp "$f" "$root$f"
    fi
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
git clone -q "$repo" "$root/root/fluid"

echo "fresh-root-check: make run in the fresh root (installs its dependencies first)"
log="$root/root/make-run.log"
# Type at the prompt only once it is there (a UART drops what comes before
# the kernel reads it): make run's stdin is a FIFO this script writes to.
mkfifo "$root/root/console-in"
chroot "$root" /bin/bash -c 'cd /root/fluid && exec make run < /root/console-in' >"$log" 2>&1 &
pid=$!
exec 3>"$root/root/console-in"
fail() {
    tail -40 "$log"
    echo "fresh-root-check: FAILED: $1" >&2
    kill "$pid" 2>/dev/null || true
    pkill -f "qemu-system-x86_64.*$root" 2>/dev/null || true
    exit 1
}
for _ in $(seq 1800); do
    grep -q "fluid> " "$log" && break
    kill -0 "$pid" 2>/dev/null || fail "make run ended before the prompt"
    sleep 1
done
grep -q "fluid> " "$log" || fail "no prompt after 30 minutes"
printf 'info\r' >&3
sleep 3
printf 'poweroff\r' >&3
for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
kill -0 "$pid" 2>/dev/null && fail "poweroff did not end make run"
exec 3>&-
grep -q "powering off" "$log" || fail "the prompt did not answer"
grep -q "platform:  pc" "$log" || fail "info did not answer"
grep -E "^(model: loaded|boot: )" "$log" | sed 's/^/fresh-root-check:   /'
echo "fresh-root-check: ok: make run reached the prompt and powered off ($(( $(date +%s) - t0 )) s)"
