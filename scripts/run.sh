#!/usr/bin/env bash
# The run command: installs what it needs, then starts the demo on the embedded default (SQLite):
# the scoring demo (a sample check-up scored and triaged), the central emulator (the stand-in for
# the central advocate system) at http://127.0.0.1:8701, a sync worker that forwards the demo's
# referrals to it as FHIR R4, and the onsite server with demo data at https://127.0.0.1:8700/
# (self-signed certificate), then the kiosk window paired with it (or, with no display, the
# kiosk's tour of every screen written to instance/kiosk-tour). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh run
export PATH="$PWD/.venv/bin:$PATH"
export ONSITE_INSTANCE_PATH="${ONSITE_INSTANCE_PATH:-$PWD/instance}"
mkdir -p "$ONSITE_INSTANCE_PATH"
central_port="${CENTRAL_PORT:-8701}"
export ONSITE_CENTRAL_URL="${ONSITE_CENTRAL_URL:-http://127.0.0.1:$central_port/fhir}"
# The local emulator speaks plain http on the loopback. A real central must be https://: without
# this setting the sync refuses http:// (it would send its access token in clear).
export ONSITE_CENTRAL_ALLOW_INSECURE_HTTP="${ONSITE_CENTRAL_ALLOW_INSECURE_HTTP:-true}"

echo "== Scoring demo: a sample check-up, scored and triaged into one referral =="
python -m shared.assessments demo --text
echo
echo "== Onsite server with demo data =="
onsite-server demo-data | tail -n 1 > "$ONSITE_INSTANCE_PATH/demo.json"
python - "$ONSITE_INSTANCE_PATH/demo.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"Site: {d['site']}   kiosk pairing code: {d['pairing_code']} (valid 15 minutes)")
print("Dashboard log-ins (admin and advocate also need a code from an authenticator app")
print("holding the TOTP secret shown; or run: .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\"):")
for role, login in d["logins"].items():
    print(f"  {role:12} {login['email']:28} {login['password']:20} {login.get('totp_secret', '')}")
    if login.get("otpauth_uri"):
        print(f"  {'':12} {login['otpauth_uri']}")
PY

children=()
stop_children() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_children EXIT INT TERM

echo "== Central emulator at http://127.0.0.1:$central_port (FHIR base $ONSITE_CENTRAL_URL) =="
central-emulator --host 127.0.0.1 --port "$central_port" > "$ONSITE_INSTANCE_PATH/central.log" 2>&1 &
children+=("$!")
for _ in $(seq 1 50); do
  python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "$ONSITE_CENTRAL_URL/metadata" >/dev/null 2>&1 && break
  sleep 0.2
done
# The sync worker forwards the demo's referrals now and keeps forwarding every 30 s.
onsite-server sync > "$ONSITE_INSTANCE_PATH/sync.log" 2>&1 &
children+=("$!")
echo "The demo's referrals are forwarded to central; an advocate's list, crisis first:"
echo "  http://127.0.0.1:$central_port/advocates/adv-001/referrals"
echo "Open https://127.0.0.1:${ONSITE_PORT:-8700}/ (accept the self-signed certificate). Ctrl-C stops."
onsite-server serve --host "${ONSITE_HOST:-127.0.0.1}" --port "${ONSITE_PORT:-8700}" &
server_pid=$!
children+=("$server_pid")
server_url="https://127.0.0.1:${ONSITE_PORT:-8700}"
for _ in $(seq 1 150); do
  python -c "import ssl,urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1, context=ssl._create_unverified_context())" \
    "$server_url/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
# The kiosk pairs with a code of its own (the one printed above stays free for a second kiosk).
site=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['site'])" "$ONSITE_INSTANCE_PATH/demo.json")
kiosk_code=$(onsite-server pairing-code --site "$site" | tail -n 1)
export ONSITE_KIOSK_DATA_DIR="${ONSITE_KIOSK_DATA_DIR:-$ONSITE_INSTANCE_PATH/kiosk}"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "== Kiosk window against the demo server (sign in as E1001, birth date 03/14/1985) =="
  onsite-kiosk --server "$server_url" --pairing-code "$kiosk_code" > "$ONSITE_INSTANCE_PATH/kiosk.log" 2>&1 &
  children+=("$!")
else
  tour_dir="$ONSITE_INSTANCE_PATH/kiosk-tour"
  echo "== No display: the kiosk's tour of every screen (EN and ES) goes to $tour_dir =="
  if onsite-kiosk --tour "$tour_dir" --server "$server_url" --pairing-code "$kiosk_code"; then
    echo "Kiosk tour written to $tour_dir (one PNG per screen and language)."
  else
    # Said plainly, and never followed by "written": what is in the folder is not a tour.
    echo "The kiosk tour failed (see above); $tour_dir does not hold a complete tour." >&2
  fi
fi
wait "$server_pid"
