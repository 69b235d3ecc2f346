#!/bin/sh
# Debian's headless Chromium for the browser tests (tests/browser): Playwright drives /usr/bin/chromium and
# never downloads browser builds of its own. A fresh machine (or CI) gets the package here; we run as root.
set -eu
CHROMIUM="${SKALDS_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci/chromium.sh: $CHROMIUM is missing; install Debian's 'chromium' package (needs root and apt-get)" >&2
    exit 1
fi
echo "ci/chromium.sh: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version >&2
