#!/usr/bin/env bash
# Installs what the PGO report's test needs and nothing else: Debian's
# chromium, run headless by tests/prompt/test_pgo_report.py to render
# `make pgo-report`'s page and screenshot it.  `make test` calls this; a
# user who only runs `make pgo-report` never needs it (open the page in any
# browser).  A no-op when /usr/bin/chromium exists.  Never fails: without
# chromium that test skips saying why (and fails under CI=true).
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "fluid: installing chromium (headless, for the PGO report's test)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
       { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }; then
  echo "report-deps.sh: could not install chromium; the PGO report's browser test will be skipped" >&2
fi
exit 0
