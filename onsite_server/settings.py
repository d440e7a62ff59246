"""The server's settings as one frozen, typed object, built once by create_app.

The layers (defaults, instance file, ONSITE_* environment, a test's config) are merged in
``app.config`` as before (config.py), where Flask and its extensions read their own keys.
:meth:`Settings.from_config` then converts every key of ``config.DEFAULTS`` once, naming the
key of a value it cannot use, and checks the bounds; code reads ``settings.sync_batch`` and
never casts a raw key. No Flask here: services take these objects (app_settings.py keeps
them on the app).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.assessments import list_instruments
from shared.triage import LANGUAGES
from shared.versions import parse_version

from .config import DEFAULTS, ConfigError

T = TypeVar("T")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class CentralSettings:
    """The CENTRAL_* settings: where central is, how to reach it and how to prove who we are."""

    central_url: str
    central_allow_insecure_http: bool
    central_token: str | None
    central_client_id: str | None
    central_private_key_path: str | None
    central_token_url: str | None
    central_key_id: str | None
    central_client_jwks_url: str | None
    central_connect_timeout_seconds: float
    central_read_timeout_seconds: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CentralSettings:
        """Convert CENTRAL_* keys from a mapping (a missing key takes its default)."""
        return convert(cls, config)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every key of config.DEFAULTS, lower-cased and converted (docs/configuration.md)."""

    secret_key: str
    secret_key_fallbacks: tuple[str, ...]
    database_url: str
    site_slug: str
    signing_key_dir: str
    central_url: str
    central_web_url: str
    central_allow_insecure_http: bool
    advocate_link_days: int
    ticket_grace_days: int
    central_token: str | None
    central_client_id: str | None
    central_private_key_path: str | None
    central_token_url: str | None
    central_key_id: str | None
    central_client_jwks_url: str | None
    central_key_push_timeout_seconds: float
    fhir_identifier_base: str
    fhir_member_system: str | None
    fhir_member_public_id_system: str
    fhir_advocate_system: str
    sync_interval_seconds: float
    sync_backoff_base_seconds: float
    sync_backoff_cap_seconds: float
    sync_crisis_backoff_base_seconds: float
    sync_crisis_backoff_cap_seconds: float
    sync_revive_jitter_seconds: float
    sync_crisis_hold_seconds: float
    central_connect_timeout_seconds: float
    central_read_timeout_seconds: float
    sync_batch: int
    reminder_hours: float
    retention_days: int
    tls_cert: str | None
    tls_key: str | None
    trusted_hosts: tuple[str, ...]
    max_content_length: int
    max_batch: int
    roster_max_rows: int
    pairing_code_ttl_seconds: int
    pairing_failures_per_address: int
    pairing_failures_total: int
    pairing_failure_window_seconds: int
    member_ref_ttl_seconds: int
    identify_rate_per_minute: int
    offline_identify_per_day: int
    identify_min_seconds: float
    kiosk_idle_timeout_seconds: int
    kiosk_idle_countdown_seconds: int
    kiosk_session_cap_seconds: int
    kiosk_crisis_screen_seconds: int
    kiosk_sync_seconds: int
    kiosk_min_version: str
    kiosk_units: str
    kiosk_clock_ahead_seconds: int
    kiosk_clock_behind_days: int
    languages: tuple[str, ...]
    enabled_instruments: tuple[str, ...]
    branding_name: str
    branding_color: str
    min_cell: int
    password_hash_cost: str
    dashboard_idle_minutes: int
    dashboard_absolute_hours: int
    session_cookie_secure: bool
    session_cookie_httponly: bool
    session_cookie_samesite: str
    sqlite_busy_timeout_ms: int
    db_pool_size: int
    db_pool_timeout_ms: int
    pg_lock_timeout_ms: int
    pg_statement_timeout_ms: int
    pg_connect_timeout_seconds: int
    worker_threads: int
    health_min_free_mb: int
    health_check_seconds: float
    health_write_wait_seconds: float
    metrics_token: str | None
    backup_passphrase: str | None
    log_format: str
    log_level: str
    trusted_proxies: int
    multi_node: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Convert the merged layers; a value that cannot be used raises naming its key."""
        settings = convert(cls, config)
        validate(settings)
        return settings

    @property
    def central(self) -> CentralSettings:
        """What the client to central needs (central.py)."""
        return convert(CentralSettings, {f.name.upper(): getattr(self, f.name)
                                         for f in dataclasses.fields(CentralSettings)})

    def pool_size(self) -> int:
        """The PostgreSQL pool size per worker (see :func:`pool_size`)."""
        return pool_size(self.worker_threads, self.db_pool_size)


def convert(cls: type[T], config: Mapping[str, Any]) -> T:
    """Build a settings dataclass from raw keys (missing ones take config.DEFAULTS)."""
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = field.name.upper()
        values[field.name] = _convert(key, str(field.type), config.get(key, DEFAULTS.get(key)))
    return cls(**values)


def _convert(key: str, kind: str, value: Any) -> Any:
    """One value as its field's type; the message names the key (env values are checked first)."""
    if kind == "str | None":
        return None if value is None or value == "" else str(value)
    if value is None:
        if kind == "str":
            # Filled in by create_app before this runs (secret, database, key folder, web URL).
            raise ConfigError(f"{key} must be set")
        if kind.startswith("tuple"):
            return ()
        raise ConfigError(f"{key} must be set")
    if kind == "str":
        return str(value)
    if kind == "bool":
        return boolean(key, value)
    if kind.startswith("tuple"):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if not isinstance(value, list | tuple | set | frozenset):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(str(item) for item in value)
    try:
        return int(value) if kind == "int" else float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None


def boolean(key: str, value: Any) -> bool:
    """A yes/no setting: a bool, or one of the words the environment accepts."""
    if isinstance(value, str):
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return bool(value)


def pool_size(threads: int, size: int) -> int:
    """Return the PostgreSQL pool size per worker; refuse one that cannot serve every thread."""
    if threads < 0 or size < 0:
        raise ConfigError("WORKER_THREADS and DB_POOL_SIZE cannot be negative")
    if threads == 0:
        # Not serving threads (a CLI command, a test): a few connections are plenty.
        return size or 5
    if size == 0:
        # A request holds at most one connection (its session; /healthz opens its own only
        # where there is no request session), so one per thread means no thread ever waits.
        return threads
    if size < threads:
        # A thread that finds the pool empty waits DB_POOL_TIMEOUT_MS and then answers 503:
        # with fewer connections than threads that would happen under ordinary load.
        raise ConfigError(
            f"DB_POOL_SIZE ({size}) is smaller than the threads per worker ({threads}): "
            "set it to at least the thread count, or to 0 to size it from the threads")
    return size


def validate(settings: Settings) -> None:
    """Reject settings that would make the server unsafe or broken (checked in this order)."""
    _check_bounds(settings)
    _check_choices(settings)
    _check_content(settings)


def _check_bounds(s: Settings) -> None:
    """Pool, waits, batch sizes and timers within their bounds."""
    s.pool_size()
    for key in ("DB_POOL_TIMEOUT_MS", "PG_LOCK_TIMEOUT_MS", "PG_STATEMENT_TIMEOUT_MS",
                "PG_CONNECT_TIMEOUT_SECONDS"):
        # 0 would mean "wait forever" to PostgreSQL: the very thing these settings prevent.
        if getattr(s, key.lower()) <= 0:
            raise ConfigError(f"{key} must be a positive number")
    if s.roster_max_rows < 1:
        raise ConfigError("ROSTER_MAX_ROWS must be at least 1")
    if s.sync_batch < 1:
        raise ConfigError("SYNC_BATCH must be at least 1")
    for key in ("SYNC_BACKOFF_BASE_SECONDS", "SYNC_BACKOFF_CAP_SECONDS",
                "SYNC_CRISIS_BACKOFF_BASE_SECONDS", "SYNC_CRISIS_BACKOFF_CAP_SECONDS",
                "SYNC_REVIVE_JITTER_SECONDS", "SYNC_CRISIS_HOLD_SECONDS",
                "CENTRAL_KEY_PUSH_TIMEOUT_SECONDS"):
        if getattr(s, key.lower()) < 0:
            raise ConfigError(f"{key} must not be negative")
    for key in ("CENTRAL_CONNECT_TIMEOUT_SECONDS", "CENTRAL_READ_TIMEOUT_SECONDS"):
        if getattr(s, key.lower()) <= 0:
            raise ConfigError(f"{key} must be a positive number of seconds")
    if not 0 <= s.reminder_hours <= 24 * 14:
        raise ConfigError("REMINDER_HOURS must be between 0 (no reminders) and 336 (two weeks)")


def _check_choices(s: Settings) -> None:
    """Settings that name one of a few choices: hash cost, proxies, logging, kiosk version."""
    if s.password_hash_cost not in ("standard", "test"):
        raise ConfigError(f"PASSWORD_HASH_COST must be standard or test, got "
                          f"{s.password_hash_cost!r}")
    if not 0 <= s.trusted_proxies <= 5:
        raise ConfigError("TRUSTED_PROXIES must be between 0 (no proxy) and 5")
    if s.log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be text or json, got {s.log_format!r}")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got "
                          f"{s.log_level!r}")
    try:
        parse_version(s.kiosk_min_version, "KIOSK_MIN_VERSION")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_content(s: Settings) -> None:
    """What the reports, kiosks and catalog offer: cell minimum, languages, instruments."""
    if s.min_cell < 5:
        raise ConfigError("MIN_CELL must be at least 5 (small-cell suppression cannot go lower)")
    for lang in s.languages:
        if lang not in LANGUAGES:
            raise ConfigError(f"LANGUAGES: unsupported language {lang!r}")
    known = {instrument_id for instrument_id, _version in list_instruments()}
    for instrument_id in s.enabled_instruments:
        # Caught at start: otherwise every kiosk's catalog poll would fail on the typo.
        if instrument_id not in known:
            raise ConfigError(f"ENABLED_INSTRUMENTS: unknown instrument {instrument_id!r}")
