"""A kiosk process for the kill -9 test: queue visits, then drain slowly until killed.

Usage: python kiosk_child.py DATA_DIR KEY_DIR VISITS. Prints "queued <key>" once each item's
write has returned (it is on disk), then "draining", then drains in batches of 2.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from kiosk.service import KioskService
from kiosk.settings import KioskSettings


def main() -> None:
    """Queue the visits, then drain until the parent kills this process."""
    data_dir, key_dir, visits = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    service = KioskService(KioskSettings(data_dir=data_dir, key_dir=key_dir), batch_size=2)
    for n in range(visits):
        answers = {str(i): n % 4 for i in range(1, 10)} | {"9": 0}
        key = str(uuid.uuid4())
        item = {"idempotency_key": key, "instrument_id": "phq9", "instrument_version": "1.0.0",
                "answers": answers}
        service.submit(None, [item], crisis=False)
        print(f"queued {key}", flush=True)
    print("draining", flush=True)
    while service.outbox.depth():
        service.worker.run_once()
    print("drained", flush=True)


if __name__ == "__main__":
    main()
