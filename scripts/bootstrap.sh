#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian/Ubuntu machine: apt packages (as root or
# through sudo), a virtualenv in .venv and the Python packages. Safe to run again: it skips what is done.
# Usage: scripts/bootstrap.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-run}"

apt_packages=(python3-venv python3-dev libmtdev1 libgl1 libegl1 libgl1-mesa-dri)
# Read-aloud (issue 19): espeak-ng speaks offline in English and Spanish; aplay plays it and
# amixer reads the headphone jack and routes the sound (alsa-utils).
apt_packages+=(espeak-ng alsa-utils)
if [ "$purpose" = "test" ]; then
  apt_packages+=(postgresql xvfb xauth)
  # The kiosk's real-window tests: OS-level taps (xdotool) and screenshots of the X screen.
  apt_packages+=(xdotool imagemagick)
  # systemd-analyze checks the units in deploy/; HAProxy runs the two-node drill; cage is
  # the kiosk unit's compositor (checked, not run: there is no display here).
  apt_packages+=(systemd haproxy cage)
  # The dashboard's browser tests: Debian's Chromium (driven by Playwright) and npm for axe-core.
  apt_packages+=(chromium)
  # The employer report's PDF is turned into text and PNG to check it (pdftotext, pdftoppm).
  apt_packages+=(poppler-utils)
  # Some machines carry node and npm from elsewhere; Debian's npm would conflict with those.
  command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing apt packages: ${missing[*]}" >&2
  if as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
     && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    :
  else
    echo "bootstrap: could not install ${missing[*]} (need root or passwordless sudo); continuing" >&2
  fi
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: Python >= 3.11 is required ($PY is $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.stamp-$purpose-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  extras="kiosk"
  [ "$purpose" = "test" ] && extras="kiosk,dev"
  # Some machines' pip configuration names local indexes that may be absent; those warnings
  # are noise, everything else pip prints is kept.
  quiet_pip() {
    .venv/bin/python -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
    return "${PIPESTATUS[0]}"
  }
  quiet_pip install -q --upgrade pip
  quiet_pip install -q -e ".[$extras]"
  touch "$stamp"
fi

if [ "$purpose" = "test" ] && command -v npm >/dev/null 2>&1; then
  # axe-core (accessibility checks in the browser tests) and FHIR.js (npm fhir: the R4 check
  # of every Bundle the FHIR end-to-end test sends) from package-lock.json into
  # ./node_modules; never vendored.
  if [ ! -f node_modules/axe-core/axe.min.js ] || [ ! -f node_modules/fhir/package.json ] \
     || [ package-lock.json -nt node_modules/.stamp ]; then
    npm ci --no-audit --no-fund --silent && touch node_modules/.stamp
  fi
fi
