"""QR speed: minting a signed token and rendering its code, against a plain QR of a URL.

Measures, in one process: minting an advocate-link token (Ed25519), verifying it, rendering
the link as a PNG (kiosk) and as an SVG (web), and the whole "mint + PNG" step a kiosk waits
for. The baseline is TESTING.md's: a qrcode PNG of an 80-character URL, measured in the same
run, so the ratios hold on a noisy machine. Prints ONE JSON line (milliseconds).
Usage: python bench/qr_speed.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from shared.qr import qr_png, qr_svg
from shared.tokens import KeyRing, Purpose, SigningKey, mint, verify


def _times(fn: Callable[[], object], n: int) -> dict[str, float]:
    fn()  # warm caches (fonts, imports, key loading)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50": round(statistics.median(samples), 3),
            "p95": round(samples[int(len(samples) * 0.95) - 1], 3)}


def main() -> None:
    """Run the measurements and print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n
    key = SigningKey.generate(Purpose.ADVOCATE_LINK)
    ring = KeyRing()
    ring.add(key.public, key.purpose)
    fields = {"subject": "5d1c2e7a-0b4f-4c3e-8a9d-1f2e3d4c5b6a", "advocate": "adv-001"}
    token = mint(key, fields, lifetime=timedelta(days=365))
    url = "http://127.0.0.1:8701/connect/" + token
    baseline_url = "https://central.example.org/connect/" + "x" * (80 - 36)

    result = {
        "bench": "qr_speed", "n": n, "python": platform.python_version(),
        "machine": platform.machine(), "link_url_chars": len(url),
        "baseline_png_80_chars_ms": _times(lambda: qr_png(baseline_url), n),
        "mint_ms": _times(lambda: mint(key, fields, lifetime=timedelta(days=365)), n),
        "verify_ms": _times(lambda: verify(token, ring, purpose=Purpose.ADVOCATE_LINK), n),
        "png_ms": _times(lambda: qr_png(url), n),
        "svg_ms": _times(lambda: qr_svg(url), n),
        "mint_and_png_ms": _times(
            lambda: qr_png("http://127.0.0.1:8701/connect/" +
                           mint(key, fields, lifetime=timedelta(days=365))), n),
    }
    base = result["baseline_png_80_chars_ms"]["p50"]  # type: ignore[index]
    result["mint_and_png_vs_baseline_p50"] = round(
        result["mint_and_png_ms"]["p50"] / base, 2)  # type: ignore[index]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
