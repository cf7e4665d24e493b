#!/usr/bin/env bash
# The system packages the tests need that pip cannot provide: a Chromium for the browser tests
# (tests/test_browser.py drives it with Playwright; Playwright's own browser download needs the
# internet, a distribution's package does not). Debian / Ubuntu: `apt-get install chromium`, as
# root or through sudo. Idempotent: nothing to do when a Chromium is there (or UGS_CHROMIUM
# names one). Elsewhere, install Chromium with your package manager and set UGS_CHROMIUM.
set -euo pipefail
log() { printf '[system_packages %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
if [ -n "${UGS_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
    log "chromium: $(command -v chromium || echo "$UGS_CHROMIUM") (already there)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    log "no chromium and no apt-get: install Chromium with your package manager and set UGS_CHROMIUM to it"
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    log "installing chromium needs root (or sudo): run 'apt-get install chromium' as root"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log "installing Debian's chromium (about 1 min)"
if ! "${as_root[@]}" apt-get install -y -q chromium >/dev/null; then
    log "apt-get install failed; refreshing the package lists and retrying"
    "${as_root[@]}" apt-get update -q >/dev/null
    "${as_root[@]}" apt-get install -y -q chromium >/dev/null
fi
log "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null | head -n1))"
