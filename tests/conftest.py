"""Session-wide test setup: Kivy must be configured before anything imports it."""

from __future__ import annotations

import os
import tempfile

# Kivy reads these at import time; set them before any test module imports kivy.
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
# Tests never read the developer's instance folder or environment by accident.
for _name in list(os.environ):
    if _name.startswith("ONSITE_") and _name not in ("ONSITE_TEST_PG_URL",
                                                     "ONSITE_TEST_REQUIRE_PG"):
        del os.environ[_name]
# Dashboard passwords hash at the cheapest Argon2 cost in every app the tests build, in this
# process and in the servers and CLI commands it starts (they inherit the environment). One
# test keeps the production cost (tests/onsite_server/services/test_password_hashing.py).
os.environ["ONSITE_PASSWORD_HASH_COST"] = "test"
