"""The kiosk's start with its backend deferred, one case per process (Kivy's App is a singleton).

    python -m tests.kiosk.ui.start_journeys NAME ARTIFACT_DIR DATA_DIR

``DATA_DIR`` holds what the real backend would find on disk: ``catalog.json`` as
``CatalogCache`` stores it (written by the test, so this process has not imported pydantic
when the app starts) and, where the case needs it, ``pairing.json``. ``test_start.py`` runs
each case in its own subprocess.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.kiosk.ui.runner import run

WIDTH, HEIGHT = 540, 960
HEAVY = ("pydantic", "shared.schemas", "kiosk.visit", "kiosk.service")


def _heavy_loaded() -> list[str]:
    """The modules of the backend's side that are imported now."""
    return sorted(m for m in sys.modules if m.split(".")[0] == "pydantic"
                  or any(m == h or m.startswith(h + ".") for h in HEAVY[1:]))


def _app(data: Path, backend: Any = None, *, tap_guard: float = 0.05,
         require_setup: bool = False, pin: str | None = None) -> Any:
    """A kiosk over a DeferredBackend that builds the tests' fake (or ``backend()``)."""
    from kiosk.admin import AdminLock
    from kiosk.backend import DeferredBackend
    from kiosk.ui.app import KioskApp

    def build() -> Any:
        from tests.kiosk.ui.fakes import FakeBackend

        return backend() if backend is not None else FakeBackend()

    admin = AdminLock(Path(tempfile.mkdtemp(prefix="kiosk-admin-")))
    if pin:
        admin.set_pin(pin)
    deferred = DeferredBackend(build, catalog_path=data / "catalog.json",
                               pairing_path=data / "pairing.json")
    return KioskApp(backend=deferred, admin=admin, require_setup=require_setup,
                    tap_guard=tap_guard)


def _first_frame(app: Any) -> dict[str, Any]:
    """Build the app, draw its first frame; what was loaded and shown when it was flipped."""
    from kivy.core.window import Window

    seen: dict[str, Any] = {}

    def flipped(*_args: Any) -> None:
        if not seen:
            seen.update(heavy=_heavy_loaded(), screen=app.manager.current,
                        site_name=app.manager.current_screen.site_name
                        if app.manager.current == "attract" else None,
                        built=app._visit is not None)

    Window.bind(on_flip=flipped)
    app._run_prepare()
    from kiosk.ui.driver import Driver

    driver = Driver(app)
    while not seen:
        driver.pump(1)
    seen["driver"] = driver
    return seen


def _service(data: Path) -> Any:
    """The real backend over the data folder (its sync worker not started: no server here)."""
    from kiosk.service import build_backend
    from kiosk.settings import KioskSettings

    return build_backend(KioskSettings(data_dir=data), start=False)


def deferred_first_frame(out: Path, data: str) -> None:
    """The first frame shows the cached branding with no pydantic loaded; the real backend
    follows, and its catalog's settings apply."""
    app = _app(Path(data), backend=lambda: _service(Path(data)))
    first = _first_frame(app)
    assert first["screen"] == "attract", first
    assert first["heavy"] == [], f"imported before the first frame: {first['heavy']}"
    assert first["site_name"] == "Riverside Wellness", first
    assert not first["built"], "the backend was built before the first frame"
    driver = first["driver"]
    driver.pump(3)  # the frame after: the backend, the visit and the other screens
    assert app._visit is not None, "the backend was not built after the first frame"
    assert "pydantic" in sys.modules and "kiosk.ui.screens.questions" in sys.modules
    assert app.manager.current_screen.site_name == "Riverside Wellness"  # now the catalog's
    assert app.visit.journey.timeouts.idle == 61  # the cached catalog's, not the default
    driver.screenshot(out / "start-attract-deferred.png")
    driver.tap_id("start")
    assert driver.screen().name == "privacy", driver.screen().name
    app.stop()
    app.backend.close()


def tap_before_ready(out: Path, data: str) -> None:
    """A tap on Start before the backend is built builds it at once, and then acts."""
    from kiosk.ui.driver import touch

    app = _app(Path(data), tap_guard=0)  # no tap guard: a tap may act on the very first frame
    first = _first_frame(app)
    assert first["heavy"] == [] and not first["built"], first
    assert app._visit is None  # the deferred build runs at the next frame's clock: not yet
    start = app.manager.current_screen.ids.start
    finger = touch(*start.to_window(*start.center))
    finger.touch_down()  # dispatched now, before any further frame runs the clock
    finger.touch_up()
    assert app._visit is not None, "the tap did not build the backend"
    assert app.manager.current == "privacy", app.manager.current
    app.stop()


def no_catalog(out: Path, data: str) -> None:
    """Nothing cached yet: the attract screen names no site, before and after the build."""
    app = _app(Path(data), backend=_unpaired)
    first = _first_frame(app)
    assert first["heavy"] == [] and first["site_name"] == "", first
    first["driver"].pump(3)
    assert app._visit is not None and app.visit.catalog() is None
    assert app.manager.current_screen.site_name == ""
    app.stop()


def _unpaired() -> Any:
    from tests.kiosk.ui.fakes import FakeBackend

    return FakeBackend(paired=False)


def pairing_refused_after_start(out: Path, data: str) -> None:
    """A pairing file the backend does not accept: setup opens once the backend says so."""
    app = _app(Path(data), backend=_unpaired, require_setup=True, pin="2468")
    first = _first_frame(app)
    assert first["screen"] == "attract" and first["heavy"] == [], first
    first["driver"].pump(3)
    assert app.manager.current == "setup", app.manager.current
    app.stop()


def not_paired(out: Path, data: str) -> None:
    """No pairing stored: the backend is built before the first frame and setup shows, as
    before the deferred start."""
    app = _app(Path(data), backend=_unpaired, require_setup=True, pin="2468")
    first = _first_frame(app)
    assert first["screen"] == "setup" and first["built"], first
    app.stop()


def broken_catalog(out: Path, data: str) -> None:
    """A cached catalog that does not validate stops the start with pydantic's error naming
    the field, as it did when the app was made (the real backend reads the file)."""
    from pydantic import ValidationError

    app = _app(Path(data), backend=lambda: _service(Path(data)))
    try:
        app.run()
    except ValidationError as exc:
        assert "settings.branding.name" in str(exc), str(exc)
        print(f"broken_catalog: {str(exc).splitlines()[0]}", file=sys.__stdout__)
    else:
        raise AssertionError("the kiosk started over a catalog that does not validate")
    finally:
        built = app._deferred.built
        if built is not None:
            built.close()


JOURNEYS = {f.__name__: f for f in (deferred_first_frame, tap_before_ready, no_catalog,
                                    pairing_refused_after_start, not_paired, broken_catalog)}


def main(argv: list[str]) -> int:
    """Run one case by name."""
    return run(JOURNEYS, argv, lambda _name: (WIDTH, HEIGHT))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
