#!/usr/bin/env bash
# The run command: installs what it needs, then starts the demo on the embedded default (SQLite).
# Today: the scoring demo (a sample check-up scored and triaged), then the onsite server with demo
# data at https://127.0.0.1:8700/ (self-signed certificate).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh run
export PATH="$PWD/.venv/bin:$PATH"
export ONSITE_INSTANCE_PATH="${ONSITE_INSTANCE_PATH:-$PWD/instance}"
mkdir -p "$ONSITE_INSTANCE_PATH"

echo "== Scoring demo: a sample check-up, scored and triaged into one referral =="
python -m shared.assessments demo --text
echo
echo "== Onsite server with demo data =="
onsite-server demo-data | tail -n 1 > "$ONSITE_INSTANCE_PATH/demo.json"
python - "$ONSITE_INSTANCE_PATH/demo.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"Site: {d['site']}   kiosk pairing code: {d['pairing_code']} (valid 15 minutes)")
for role, login in d["logins"].items():
    print(f"  {role:12} {login['email']:28} {login['password']}")
PY
echo "Open https://127.0.0.1:${ONSITE_PORT:-8700}/ (accept the self-signed certificate). Ctrl-C stops."
exec onsite-server serve --host "${ONSITE_HOST:-127.0.0.1}" --port "${ONSITE_PORT:-8700}"
