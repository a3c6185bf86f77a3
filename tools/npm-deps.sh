#!/usr/bin/env bash
# Installs the host tools' npm dependencies (tools/package.json, pinned by
# tools/package-lock.json) into tools/node_modules. A no-op that only reads one
# small file when the pinned versions are already installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
want=1.2.2
pj=node_modules/llama-tokenizer-js/package.json
if [ -f "$pj" ] && grep -q "\"version\": \"$want\"" "$pj"; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm-deps.sh: npm not found (run tools/install-deps.sh)" >&2; exit 1; }
echo "fluid: installing npm dependencies of tools/ (llama-tokenizer-js $want)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
