#!/usr/bin/env bash
# Installs the Debian packages Fluid needs to build, run and test.
# Costs well under a second when everything is present: it only calls
# apt-get when a required command or file is missing.
set -euo pipefail

PKGS=(qemu-system-x86 qemu-utils qemu-user clang-19 lld-19 llvm-19 libllvmlibc-19-dev
      libclang-rt-19-dev python3-numpy python3-pytest python3-matplotlib)

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
need=0
for c in clang-19 ld.lld-19 llvm-objcopy-19 qemu-system-x86_64 qemu-x86_64; do
  command -v "$c" >/dev/null 2>&1 || need=1
done
[ -f /usr/lib/llvm-19/lib/libllvmlibc.a ] || need=1
ls /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need=1
/usr/bin/python3 -c 'import numpy, pytest, matplotlib' >/dev/null 2>&1 || need=1

if [ "$need" = 1 ]; then
  echo "fluid: installing build dependencies (${PKGS[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
fi
# Node.js (with npm) runs the independent tokenizer and the llama.cpp peer.
# Some machines ship a Node.js that bundles npm; Debian's splits them.
if ! command -v npm >/dev/null 2>&1; then
  command -v node >/dev/null 2>&1 || { $SUDO apt-get install -y -qq nodejs >/dev/null; }
  command -v npm >/dev/null 2>&1 || $SUDO apt-get install -y -qq npm >/dev/null
fi
