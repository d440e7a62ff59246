"""Kiosk cold start: process start to the first drawn frame of the attract screen, and RSS.

In the same run, the same is measured for a minimal Kivy app with one Label (the baseline),
and the ratios are reported. Each start is a fresh process (a cold start is a process start);
runs alternate kiosk and baseline so drift hits both alike. The child records the time it
started (before importing Kivy) and the time the first frame with its screen was flipped, and
its peak RSS once that frame is done. Offscreen SDL on Mesa's software GL, portrait
1080x1920. The kiosk gets an in-memory backend (tests/kiosk/ui/fakes.py): this measures the
screens, not the network or the outbox. It is handed over as ``onsite-kiosk`` hands over its
real one, a ``DeferredBackend`` built after the first frame, with the catalog the fake serves
cached as the real backend caches it; ``--eager-backend`` (and any commit from before the
deferred start) builds it before the app. Prints ONE JSON line (milliseconds, MiB).
Usage: python bench/kiosk_cold_start.py [--runs 5] [--width 1080 --height 1920] [--eager-backend]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(kind: str, width: int, height: int, catalog: Path | None = None) -> None:
    """Start an app and report when its first frame was drawn (run in a fresh process)."""
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from kiosk.ui.driver import configure_window, headless_environment

    headless_environment(tempfile.mkdtemp(prefix="kivy-bench-"))
    configure_window(width, height, synthetic_input_only=True)
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window

    flipped: list[float] = []

    def report(*_args: object) -> None:
        """Print when the first frame was drawn, and the peak RSS so far."""
        import resource

        drawn = flipped[0]
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        screen = app.manager.current if kind == "kiosk" else "label"
        print(json.dumps({"ms": (drawn - started) * 1000, "rss_mib": rss_mib,
                          "screen": screen, "backend": handed}), file=sys.__stdout__, flush=True)
        app.stop()

    def first_flip(*_args: object) -> None:
        """The first frame is on screen: report once the frame is done."""
        flipped.append(time.perf_counter())  # on the glass now, whatever runs next
        if os.environ.get("BENCH_MARK_FLIP"):  # for -X importtime: what came before the frame
            print("first frame flipped", file=sys.__stderr__, flush=True)
        Window.unbind(on_flip=first_flip)
        Clock.schedule_once(report, 0)  # after the flip that drew the first frame

    if kind == "kiosk":
        from kiosk.admin import AdminLock
        from kiosk.ui.app import KioskApp

        def fake() -> Any:
            """The tests' in-memory backend (it imports pydantic and builds its catalog)."""
            from tests.kiosk.ui.fakes import FakeBackend

            return FakeBackend()

        backend: Any
        handed = "deferred"
        try:
            from kiosk.backend import DeferredBackend
        except ImportError:  # a commit from before the deferred start
            backend, handed = fake(), "eager"
        else:
            if catalog is None:
                backend, handed = fake(), "eager"
            else:
                backend = DeferredBackend(fake, catalog_path=catalog)
        admin = AdminLock(Path(tempfile.mkdtemp(prefix="kiosk-bench-admin-")))
        app = KioskApp(backend=backend, admin=admin, require_setup=False)
    else:
        from kivy.uix.label import Label

        class OneLabel(App):  # type: ignore[misc]
            """The baseline: a Kivy app with one Label."""

            def build(self) -> Label:
                """One Label."""
                return Label(text="Hello")

        app = OneLabel()
        handed = "none"
    Window.bind(on_flip=first_flip)
    app.run()


def _cached_catalog() -> Path:
    """The fake's catalog, stored as the real backend caches what the server sent."""
    sys.path.insert(0, str(ROOT))
    from kiosk.sync import CatalogCache
    from tests.kiosk.ui.fakes import fake_catalog

    path = Path(tempfile.mkdtemp(prefix="kiosk-bench-catalog-")) / "catalog.json"
    CatalogCache(path).store('"bench"', fake_catalog().model_dump(mode="json"))
    return path


def _run(kind: str, width: int, height: int,
         catalog: Path | None) -> dict[str, float | str]:
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    extra = ["--catalog", str(catalog)] if catalog is not None else []
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--width", str(width),
                           "--height", str(height), *extra], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Alternate kiosk and baseline starts; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--eager-backend", action="store_true",
                        help="build the backend before the app, as before the deferred start")
    parser.add_argument("--child", choices=("kiosk", "label"))
    parser.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.width, args.height, args.catalog)
        return
    catalog = None if args.eager_backend else _cached_catalog()
    runs: dict[str, list[dict[str, float | str]]] = {"kiosk": [], "label": []}
    for _ in range(args.runs):
        for kind in ("label", "kiosk"):
            runs[kind].append(_run(kind, args.width, args.height, catalog))
    assert all(r["screen"] == "attract" for r in runs["kiosk"]), runs["kiosk"]

    def median(kind: str, key: str) -> float:
        """The median of one figure over the runs."""
        return round(statistics.median(float(r[key]) for r in runs[kind]), 1)

    out = {
        "bench": "kiosk_cold_start", "runs": args.runs, "window": f"{args.width}x{args.height}",
        "kiosk_first_frame_ms": median("kiosk", "ms"), "kiosk_rss_mib": median("kiosk", "rss_mib"),
        "label_first_frame_ms": median("label", "ms"), "label_rss_mib": median("label", "rss_mib"),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "backend": "/".join(sorted({str(r["backend"]) for r in runs["kiosk"]})),
        "load_average": round(os.getloadavg()[0], 2),
    }
    out["start_ratio"] = round(out["kiosk_first_frame_ms"] / out["label_first_frame_ms"], 2)
    out["rss_ratio"] = round(out["kiosk_rss_mib"] / out["label_rss_mib"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
