"""`onsite-server serve`: gunicorn in front of create_app, sized to the database's pool."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask

from . import config as config_module
from . import create_app, migrate
from .app_settings import of as settings_of
from .cli_context import context_app as _app
from .db import get_db
from .settings import pool_size


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--tls/--no-tls", default=True, show_default=True,
              help="Serve HTTPS with ONSITE_TLS_CERT/KEY or a self-signed certificate.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int,
          tls: bool) -> None:
    """Run the server under gunicorn (schema upgraded first)."""
    _share_metrics_between_workers()
    app = _app(ctx)
    try:
        # Each thread holds one database connection while it serves a request: refuse a thread
        # count the pool cannot serve now, rather than answer 503s under load later.
        pool = pool_size(threads, settings_of(app).db_pool_size)
    except config_module.ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--threads") from exc
    if not get_db(app).is_sqlite:
        _check_max_connections(app, workers, pool)
    # The workers build their own app (and pool) from the environment.
    os.environ["ONSITE_WORKER_THREADS"] = str(threads)
    migrate.upgrade(get_db(app))
    get_db(app).dispose()
    options: dict[str, Any] = {
        "bind": f"{host}:{port}", "workers": workers, "threads": threads,
        "worker_class": "gthread", "accesslog": "-", "timeout": 60,
        # Link tokens and check-in searches stay out of the access log (accesslog.py).
        "logger_class": ("onsite_server.logs.JsonAccessLogger"
                         if settings_of(app).log_format == "json"
                         else "onsite_server.accesslog.RedactingGunicornLogger"),
        "limit_request_line": 8190, "child_exit": _worker_exited,
        # The master builds the app once (load_app) and each worker starts as a fork of it:
        # a worker's start, and a crashed worker's replacement, is a fork, not 0.15 s of
        # create_app, and the workers share the start-up heap's pages. Code changes take a
        # restart of the service (a HUP re-forks the workers from the same code).
        "preload_app": True,
    }
    scheme = "http"
    if tls:
        cert, key = settings_of(app).tls_cert, settings_of(app).tls_key
        if (not cert or not key) and settings_of(app).multi_node:
            raise click.UsageError("MULTI_NODE: a self-signed certificate would differ on each "
                                   "node; set ONSITE_TLS_CERT and ONSITE_TLS_KEY to the same pair "
                                   "on every node, or serve with --no-tls behind the proxy")
        if not cert or not key:
            from .tls import ensure_self_signed

            cert_path, key_path = ensure_self_signed(Path(app.instance_path))
            cert, key = str(cert_path), str(key_path)
            os.environ["ONSITE_TLS_CERT"] = cert
            os.environ["ONSITE_TLS_KEY"] = key
        options.update(certfile=cert, keyfile=key)
        scheme = "https"
        from .tls import fingerprint_sha256

        _announce(app, f"TLS certificate SHA-256 fingerprint: {fingerprint_sha256(cert)}")
    _announce(app, f"Onsite server on {scheme}://{host}:{port}/  (dashboard {scheme}://{host}:"
              f"{port}/dashboard/, API {scheme}://{host}:{port}/api/v1/openapi.json)")
    sys.stdout.flush()
    run_gunicorn(options)


def _announce(app: Flask, text: str) -> None:
    """Say a start-up fact: on the console, or as a log line when the logs are JSON lines."""
    if settings_of(app).log_format == "json":
        import logging

        logging.getLogger("onsite_server.serve").info(text)
    else:
        click.echo(text)


def _share_metrics_between_workers() -> None:
    """Give the workers one folder for their request metrics (before prometheus is imported)."""
    import atexit
    import shutil
    import tempfile

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        remove_orphaned_metrics(Path(tempfile.gettempdir()))
        # Named after this process, so that a later start can tell it was left behind.
        folder = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)


_METRICS_PREFIX = "onsite-metrics-"


def remove_orphaned_metrics(parent: Path) -> list[Path]:
    """Remove the metrics folders of this user's servers that are gone; return them."""
    # A server stopped with SIGKILL (a time limit, the OOM killer) runs no atexit, so its
    # folder stayed: the test suite's killed servers had left over a thousand in /tmp.
    import shutil

    removed = []
    for folder in parent.glob(f"{_METRICS_PREFIX}*"):
        pid = folder.name[len(_METRICS_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue  # another user's, or named before folders carried their pid
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except OSError:
            continue  # alive under another user, or the folder went meanwhile
    return removed


def _worker_exited(_server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared metrics (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _check_max_connections(app: Flask, workers: int, pool: int) -> None:
    """Refuse workers x pool beyond what PostgreSQL accepts (docs/deployment.md)."""
    from sqlalchemy import text

    with get_db(app).transaction(write=False) as session:
        limit = int(session.scalar(text("SHOW max_connections")) or 0)
        reserved = int(session.scalar(text("SHOW superuser_reserved_connections")) or 0)
    get_db(app).dispose()
    wanted = workers * pool
    _announce(app, f"PostgreSQL: up to {wanted} connections ({workers} workers x {pool}); "
              f"the server accepts {limit - reserved}")
    if wanted > limit - reserved:
        # Past max_connections new connections are refused: under load, requests would
        # answer 503 although every thread is idle waiting for one.
        raise click.BadParameter(
            f"{workers} workers x {pool} connections = {wanted}, more than PostgreSQL's "
            f"max_connections ({limit}) less its {reserved} reserved connections: use fewer "
            "workers or threads, or raise max_connections", param_hint="--workers/--threads")


def run_gunicorn(options: dict[str, Any]) -> None:
    """Run create_app() under gunicorn with the given settings."""
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Flask:
            return load_app()

    _App().run()


def load_app() -> Flask:
    """Build the app in gunicorn's master, ready to fork: no connection open, heap frozen.

    Every worker is a fork of the master that ran this (``preload_app``). A connection that
    start-up opened is closed first, so that no two workers share one, or the open lock file
    of SQLite's write queue, whose ``flock`` would then be theirs together.
    The imports and create_app leave about 200,000 objects that live as long as the worker.
    Every full collection walked all of them again: 100-500 ms of CPU each, landing on
    whichever request allocated at that moment, a few times a minute under a backlog drain
    (docs/BENCHMARKS.md, issue 20 session 10). ``gc.freeze`` moves them to the permanent
    generation, which collections skip, before the fork: the workers then share those pages
    instead of each copying them when its collector would touch them. Objects made later are
    collected as before.
    """
    app = create_app()
    get_db(app).dispose()
    gc.collect()  # what start-up left as garbage goes now, not into the frozen heap
    gc.freeze()
    return app
