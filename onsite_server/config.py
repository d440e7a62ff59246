"""Configuration layers: defaults, then the instance file, then ONSITE_* environment, then tests.

The merged layers are converted and checked once into a typed object by settings.py.
"""

from __future__ import annotations

import json
import os
from typing import Any

# Every key here can be set in instance/config.py or as an ONSITE_<KEY> environment variable;
# docs/configuration.md lists them with their meaning.
DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,  # generated into the instance folder on first start when unset
    # Earlier secrets, after SECRET_KEY was changed: member references they signed (held in
    # kiosks' offline backlogs) still verify; nothing new is signed with them.
    "SECRET_KEY_FALLBACKS": [],
    "DATABASE_URL": None,  # None means sqlite:///<instance>/onsite.sqlite
    "SITE_SLUG": "demo",
    "SIGNING_KEY_DIR": None,  # None means <instance>/keys (Ed25519 per purpose, made on demand)
    "CENTRAL_URL": "http://127.0.0.1:8701/fhir",  # the emulator's default address
    "CENTRAL_WEB_URL": None,  # None means CENTRAL_URL without its trailing /fhir
    # Plain http:// to central sends the bearer token in clear: refused unless this is set
    # (the local emulator only; scripts/run.sh sets it).
    "CENTRAL_ALLOW_INSECURE_HTTP": False,
    "ADVOCATE_LINK_DAYS": 365,
    "TICKET_GRACE_DAYS": 1,  # a ticket stays valid this long after its slot ends
    "CENTRAL_TOKEN": None,
    "CENTRAL_CLIENT_ID": None,
    "CENTRAL_PRIVATE_KEY_PATH": None,
    # None: the token_endpoint of <CENTRAL_URL>/.well-known/smart-configuration (SMART).
    "CENTRAL_TOKEN_URL": None,
    "CENTRAL_KEY_ID": None,  # None: the RFC 7638 thumbprint of the client's public key
    # Where central may fetch our public JWKS (sent as the assertion's jku); None: not sent.
    "CENTRAL_CLIENT_JWKS_URL": None,
    # Before a link or ticket is signed with a key central does not hold yet, push the keys
    # with this timeout (seconds); 0 leaves it to the sync worker.
    "CENTRAL_KEY_PUSH_TIMEOUT_SECONDS": 5.0,
    # Business identifiers at central live under this base (member, submission, referral...).
    "FHIR_IDENTIFIER_BASE": "https://fhir.onsite-wellness.example/id",
    "FHIR_MEMBER_SYSTEM": None,  # the payer's member-id system; None means <base>/member
    "FHIR_MEMBER_PUBLIC_ID_SYSTEM": "urn:onsite-wellness:member-public-id",
    "FHIR_ADVOCATE_SYSTEM": "urn:onsite-wellness:advocate",
    "SYNC_INTERVAL_SECONDS": 30,
    # Retries to central wait a random time up to BASE * 2^attempts, capped (full jitter).
    "SYNC_BACKOFF_BASE_SECONDS": 5.0,
    "SYNC_BACKOFF_CAP_SECONDS": 600.0,
    # A crisis row retries sooner and more often, so it is first when central is back.
    "SYNC_CRISIS_BACKOFF_BASE_SECONDS": 2.0,
    "SYNC_CRISIS_BACKOFF_CAP_SECONDS": 30.0,
    # Once central answers, rows that waited on it are due again within this spread.
    "SYNC_REVIVE_JITTER_SECONDS": 5.0,
    # A crisis row waiting on central holds the other rows back for at most this long.
    "SYNC_CRISIS_HOLD_SECONDS": 900.0,
    # One request to central: connect, then each read (the sync lease is sized from both).
    "CENTRAL_CONNECT_TIMEOUT_SECONDS": 5.0,
    "CENTRAL_READ_TIMEOUT_SECONDS": 30.0,
    "SYNC_BATCH": 20,  # outbox rows a worker claims at a time (others may claim the rest)
    "REMINDER_HOURS": 24.0,  # a booked member is reminded (through central) this long before
    "RETENTION_DAYS": 90,  # answers kept onsite this long after central has them
    "TLS_CERT": None,
    "TLS_KEY": None,
    # Host names the server answers to; empty means this machine's own (see security.py).
    "TRUSTED_HOSTS": [],
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "MAX_BATCH": 500,
    # Data rows one roster import takes; a longer file is refused before any row is checked.
    "ROSTER_MAX_ROWS": 100_000,
    "PAIRING_CODE_TTL_SECONDS": 15 * 60,
    "PAIRING_FAILURES_PER_ADDRESS": 10,
    "PAIRING_FAILURES_TOTAL": 100,
    "PAIRING_FAILURE_WINDOW_SECONDS": 15 * 60,
    "MEMBER_REF_TTL_SECONDS": 7 * 24 * 3600,
    "IDENTIFY_RATE_PER_MINUTE": 10,
    # Ids typed while a kiosk was offline that are matched on arrival, per kiosk per 24 h;
    # beyond it the items are filed as anonymous (docs/submissions.md).
    "OFFLINE_IDENTIFY_PER_DAY": 300,
    "IDENTIFY_MIN_SECONDS": 0.25,
    "KIOSK_IDLE_TIMEOUT_SECONDS": 90,
    "KIOSK_IDLE_COUNTDOWN_SECONDS": 20,
    "KIOSK_SESSION_CAP_SECONDS": 15 * 60,
    "KIOSK_CRISIS_SCREEN_SECONDS": 5 * 60,
    "KIOSK_SYNC_SECONDS": 30,
    # The oldest kiosk app version still served; an older kiosk is answered 426 and keeps its
    # outbox until it is updated (shared/versions.py).
    "KIOSK_MIN_VERSION": "0.1.0",
    "KIOSK_UNITS": "imperial",  # height and weight first asked in feet, inches and pounds
    # A kiosk timestamp further ahead of, or behind, the server's receive time than this is
    # kept as sent but flagged (clock_suspect); lists of alerts go by the server's time.
    "KIOSK_CLOCK_AHEAD_SECONDS": 300,
    "KIOSK_CLOCK_BEHIND_DAYS": 30,
    "LANGUAGES": ["en", "es"],
    "ENABLED_INSTRUMENTS": [
        "phq2", "phq9", "gad2", "gad7", "who5", "audit_c", "ada_risk", "bmi", "blood_pressure",
    ],
    "BRANDING_NAME": "Onsite Wellness",
    "BRANDING_COLOR": "#0B5FA5",
    "MIN_CELL": 11,
    # Argon2id cost of dashboard passwords: "standard", or "test" (cheap, for test suites only).
    "PASSWORD_HASH_COST": "standard",
    "DASHBOARD_IDLE_MINUTES": 30,
    "DASHBOARD_ABSOLUTE_HOURS": 12,
    # Dashboard session cookie: HTTPS only (browsers also accept it from http://localhost),
    # out of reach of scripts, and not sent on cross-site subrequests.
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SQLITE_BUSY_TIMEOUT_MS": 15000,
    # PostgreSQL: every wait is bounded, so a held lock or a stuck server answers 503 with
    # Retry-After within seconds instead of holding a worker thread (docs/configuration.md).
    "DB_POOL_SIZE": 0,  # connections per worker; 0 means one per WORKER_THREADS
    "DB_POOL_TIMEOUT_MS": 3000,
    "PG_LOCK_TIMEOUT_MS": 3000,
    "PG_STATEMENT_TIMEOUT_MS": 10000,
    "PG_CONNECT_TIMEOUT_SECONDS": 3,
    "WORKER_THREADS": 0,  # set by `onsite-server serve --threads`; 0: not known (CLI, tests)
    "HEALTH_MIN_FREE_MB": 100,
    "HEALTH_CHECK_SECONDS": 1.0,
    "HEALTH_WRITE_WAIT_SECONDS": 2.0,
    # GET /metrics is open to loopback; a scraper elsewhere sends this as a bearer token.
    "METRICS_TOKEN": None,
    # Encrypts `onsite-server backup` files (scrypt + AES-GCM); required to back up or restore.
    "BACKUP_PASSPHRASE": None,
    # The server's own log lines: "text" or "json" (JSON lines, the access log too).
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "INFO",
    # How many reverse proxies in front of this server set X-Forwarded-For/-Proto (0: none,
    # so those headers are ignored; a forged one cannot change the client's address).
    "TRUSTED_PROXIES": 0,
    # One of several nodes behind a proxy: the secret, the signing keys and TLS come from these
    # settings only, never made per node in the instance folder (onsite_server/nodes.py).
    "MULTI_NODE": False,
}

_INT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
_FLOAT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, float)}
_LIST_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, list)}
_BOOL_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, bool)}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """Read ONSITE_* variables into config keys, converting numbers and lists."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("ONSITE_"):
            continue
        key = name.removeprefix("ONSITE_")
        if key not in DEFAULTS:
            continue
        out[key] = _convert(name, key, raw)
    return out


def _convert(name: str, key: str, raw: str) -> Any:
    if key in _BOOL_KEYS:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    try:
        if key in _INT_KEYS:
            return int(raw)
        if key in _FLOAT_KEYS:
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if key in _LIST_KEYS:
        raw = raw.strip()
        if raw.startswith("["):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name} is not valid JSON: {exc}") from exc
            if not isinstance(value, list):
                raise ConfigError(f"{name} must be a JSON list or a comma-separated list")
            return value
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw
