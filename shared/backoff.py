"""Retry pacing shared by the kiosk's sync and the server's: exponential, full jitter.

"Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): wait a random
time between zero and the exponential bound, so clients that failed together do not retry
together. DESIGN.md §6: 30 s syncs, doubling, capped at 10 minutes on kiosks.
"""

from __future__ import annotations

import random

__all__ = ["full_jitter"]


def full_jitter(attempts: int, base: float, cap: float,
                rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failures: uniform in 0..min(cap, base * 2^attempts)."""
    if attempts < 0 or base < 0 or cap < 0:
        raise ValueError("attempts, base and cap must not be negative")
    bound = min(cap, base * (2 ** min(attempts, 62)))
    return (rng or random).uniform(0, bound)
