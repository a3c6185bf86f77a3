#!/usr/bin/env bash
# Installs the peer of `make bench` and the llama.cpp oracle of `make test`
# (tools/peer/logits.mjs), node-llama-cpp 3.22.1 with ONLY its
# CPU prebuilt binary for linux-x64 (@node-llama-cpp/linux-x64), into
# tools/peer/node_modules, as pinned by tools/peer/package.json and
# package-lock.json.  --ignore-scripts: no postinstall (it would try to
# download or build llama.cpp); --omit=optional: none of the CUDA/Vulkan/
# other-platform binaries (the CPU one is a direct dependency, so it stays).
# A no-op that reads two small files when the pinned versions are present.
# Never fails: without the peer, bench skips it, and the oracle test skips
# (or fails under CI=true) saying why.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/peer"
want=3.22.1
have() { [ -f "$1/package.json" ] && grep -q "\"version\": \"$want\"" "$1/package.json"; }
if have node_modules/node-llama-cpp && have node_modules/@node-llama-cpp/linux-x64; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "peer-deps.sh: npm not found; the peer (bench, llama.cpp oracle test) will be skipped (install Node.js >= 20)" >&2
  exit 0
fi
echo "fluid: installing the peer of bench and the oracle test (node-llama-cpp $want, CPU binary only) into tools/peer" >&2
if ! npm install --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error >&2; then
  echo "peer-deps.sh: npm install failed; the peer (bench, llama.cpp oracle test) will be skipped" >&2
fi
exit 0
