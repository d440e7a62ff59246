"""Measures on speech samples (16-bit mono): where it is loud, and the longest pause inside."""

from __future__ import annotations

import array
import io
import sys
import wave

# A sample louder than this (about -50 dBFS) is sound; espeak-ng's pauses are exact zeros.
SOUND = 100


def samples_of(data: bytes) -> array.array[int]:
    """The samples of raw 16-bit little-endian mono bytes."""
    found = array.array("h")
    found.frombytes(data[:len(data) // 2 * 2])
    if sys.byteorder == "big":
        found.byteswap()
    return found


def wav_samples(data: bytes) -> tuple[array.array[int], int]:
    """The samples and the sample rate of a WAV file (mono, 16-bit)."""
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return samples_of(wav.readframes(wav.getnframes())), wav.getframerate()


def longest_inner_silence(samples: array.array[int], rate: int) -> float:
    """The longest run of quiet, in seconds, between the first and the last sound."""
    loud = [i for i, s in enumerate(samples) if abs(s) > SOUND]
    assert loud, "no sound at all"
    gaps = [b - a for a, b in zip(loud, loud[1:], strict=False)]
    return max(gaps, default=0) / rate


def sound_seconds(samples: array.array[int], rate: int) -> float:
    """How long there is sound at all (first loud sample to last)."""
    loud = [i for i, s in enumerate(samples) if abs(s) > SOUND]
    return (loud[-1] - loud[0]) / rate if loud else 0.0


def rms(samples: array.array[int]) -> float:
    """The root mean square of the samples (how loud, on average)."""
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5
