"""A small stand-in for the central advocate system: a FHIR R4 store plus the member pages.

It is the reference for the onsite server's FHIR output and a test tool, not a product
component: state lives in memory in one process. See docs/central-emulator.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import directory
from .site_keys import SiteKeys
from .smart import Smart
from .store import Store

__all__ = ["create_app", "get_site_keys", "get_smart", "get_store"]

DEFAULTS: dict[str, Any] = {
    "TOKEN": None,  # a static bearer token for /fhir and /_keys; None leaves them open
    "DEMO_DIRECTORY": True,  # preload the demo advocates and assignments
    "MAX_DELAY_SECONDS": 60.0,  # the longest "slow" delay a test may ask for
    "SMART_CLIENTS": {},  # SMART Backend Services clients: {client id: JWK Set}
    # Search pages, as a real server's: the default size, and the most a _count gets.
    "SEARCH_PAGE_SIZE": 20,
    "SEARCH_MAX_PAGE_SIZE": 100,
    # Where sites publish their token keys ({site: jwks url}): fetched on an unknown key id.
    "SITE_JWKS_URLS": {},
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the emulator: defaults, then CENTRAL_EMULATOR_TOKEN, then the given config."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    token = os.environ.get("CENTRAL_EMULATOR_TOKEN")
    if token:
        app.config["TOKEN"] = token
    if config:
        app.config.update(config)
    store = Store()
    if app.config["DEMO_DIRECTORY"]:
        directory.load(store)
    app.extensions["central_emulator"] = store
    smart = Smart()
    for client_id, jwks in dict(app.config["SMART_CLIENTS"]).items():
        smart.register(client_id, jwks)
    app.extensions["central_emulator_smart"] = smart
    sites = SiteKeys()
    for site, url in dict(app.config["SITE_JWKS_URLS"]).items():
        sites.register(str(site), str(url))
    app.extensions["central_emulator_sites"] = sites

    from . import control, fhir_api, pages

    app.register_blueprint(fhir_api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(control.bp)
    return app


def get_store(app: Flask) -> Store:
    """Return the app's in-memory store."""
    store: Store = app.extensions["central_emulator"]
    return store


def get_smart(app: Flask) -> Smart:
    """Return the app's SMART Backend Services registry and issued tokens."""
    smart: Smart = app.extensions["central_emulator_smart"]
    return smart


def get_site_keys(app: Flask) -> SiteKeys:
    """Return the app's registered site JWKS addresses."""
    sites: SiteKeys = app.extensions["central_emulator_sites"]
    return sites
