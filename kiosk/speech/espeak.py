"""Speech from espeak-ng (Debian's ``espeak-ng``), offline, streamed as it is made.

``espeak-ng --stdout`` writes a WAV header and then the samples as it synthesizes them, so the
first words play while the rest are still being made. The text goes in on stdin (never on the
command line, where any process could read it). ``Speaker`` runs one utterance at a time in a
thread of its own; ``stop`` ends it at once (the kiosk stops speaking on any other tap).
"""

from __future__ import annotations

import io
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from typing import IO, Protocol

from .utterance import Utterance

ESPEAK = "espeak-ng"
SAMPLE_RATE = 22050  # espeak-ng's voices: 22,050 Hz, 16-bit, mono
HEADER_BYTES = 44  # the canonical WAV header espeak-ng writes before the samples
# Words a minute. espeak-ng speaks 175 by default, fast for someone hearing a health question
# for the first time; 130 is the kiosk's default and 110 the slowest the admin may choose
# (slower, espeak-ng's pauses between sentences grow past a second and break the flow).
RATES = (110, 130, 150, 170)
DEFAULT_RATE = 130
# Volume in percent of espeak-ng's loudest clean amplitude (150 of its 0-200 scale; above
# that, loud vowels clip).
VOLUMES = (25, 50, 75, 100)
DEFAULT_VOLUME = 75
_FULL_AMPLITUDE = 150
# SSML shorter than this is written at once (a pipe holds 64 KiB on Linux); longer, from the
# background thread, as espeak-ng reads it.
_PIPE_BYTES = 32 * 1024


class Sink(Protocol):
    """Where samples go: the sound card (aplay), a WAV file, or memory in tests."""

    def write(self, samples: bytes) -> None:
        """Take the next 16-bit little-endian mono samples."""

    def close(self) -> None:
        """The utterance ended (or was stopped): let go of the device or file."""


def amplitude(volume: int) -> int:
    """espeak-ng's ``-a`` for a volume in percent (clamped to 0-100)."""
    return round(_FULL_AMPLITUDE * max(0, min(100, volume)) / 100)


def command(voice: str, rate: int, volume: int, espeak: str = ESPEAK) -> list[str]:
    """The espeak-ng command line: SSML on stdin, a WAV stream on stdout."""
    return [espeak, "-m", "-v", voice, "-s", str(rate), "-a", str(amplitude(volume)),
            "--stdout"]


def synthesize(utterance: Utterance, *, rate: int = DEFAULT_RATE,
               volume: int = DEFAULT_VOLUME, espeak: str = ESPEAK) -> bytes:
    """The whole utterance as samples (16-bit mono at SAMPLE_RATE), synthesized at once."""
    done = subprocess.run(command(utterance.voice, rate, volume, espeak),
                          input=utterance.ssml().encode("utf-8"), capture_output=True,
                          check=True, timeout=120)
    return done.stdout[HEADER_BYTES:]


def wav_bytes(samples: bytes, *, comment: str = "", software: str = "") -> bytes:
    """A WAV file of the samples; with a RIFF INFO list holding what was said and by which
    voice (ICMT, ISFT), so a file from the tour names its own words."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples)
    data = out.getvalue()
    info = b""
    for tag, value in ((b"ICMT", comment), (b"ISFT", software)):
        if value:
            raw = value.encode("utf-8") + b"\0"
            raw += b"\0" * (len(raw) % 2)
            info += tag + len(raw).to_bytes(4, "little") + raw
    if not info:
        return data
    chunk = b"LIST" + (len(info) + 4).to_bytes(4, "little") + b"INFO" + info
    body = data[12:] + chunk
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body


def read_info(data: bytes) -> dict[str, str]:
    """The INFO tags of a WAV file (what ``wav_bytes`` wrote): {"ICMT": ..., "ISFT": ...}."""
    found: dict[str, str] = {}
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        body = data[at + 8:at + 8 + size]
        if kind == b"LIST" and body[:4] == b"INFO":
            pos = 4
            while pos + 8 <= len(body):
                tag, length = body[pos:pos + 4], int.from_bytes(body[pos + 4:pos + 8], "little")
                found[tag.decode("ascii")] = body[pos + 8:pos + 8 + length].rstrip(b"\0") \
                    .decode("utf-8")
                pos += 8 + length + (length % 2)
        at += 8 + size + (size % 2)
    return found


class Player(Protocol):
    """A player process that reads espeak-ng's WAV stream itself (aplay): no Python between
    espeak-ng and the sound card, so a busy screen (its drawing holds the interpreter) can
    neither delay the first sound nor break it up."""

    stdin: IO[bytes] | None

    def drain(self) -> None:
        """Wait until everything was played (or the player was closed)."""

    def close(self) -> None:
        """Stop playing now."""


class Speaker:
    """Speaks one utterance at a time in the background; a new one or ``stop`` ends the last.

    ``sink`` makes a fresh Sink or Player for each utterance (the sound card, chosen as it
    starts: headphones may have been plugged in since). A Player gets espeak-ng's output
    directly; a Sink gets the samples relayed, and ``on_first_samples`` is told when the first
    arrive (tests, the tour's files).
    """

    def __init__(self, sink: Callable[[], Sink | Player], *, rate: Callable[[], int] = lambda:
                 DEFAULT_RATE, volume: Callable[[], int] = lambda: DEFAULT_VOLUME,
                 espeak: str = ESPEAK,
                 on_first_samples: Callable[[float], None] | None = None) -> None:
        self.sink = sink
        self.rate = rate
        self.volume = volume
        self.espeak = espeak
        self.on_first_samples = on_first_samples
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._sink: Sink | Player | None = None
        self.last: Utterance | None = None

    @property
    def speaking(self) -> bool:
        """True while an utterance is being made or played."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def say(self, utterance: Utterance) -> None:
        """Stop whatever is being said and start saying this; returns once espeak-ng runs.

        espeak-ng and the player are started here, on the caller's (UI) thread, in a few
        milliseconds: started from the background thread, they waited for the interpreter
        while the screen drew its next frame (about 50 ms more to the first sound, measured
        with bench/read_aloud.py). The thread then only waits for the end, or relays samples
        to a Sink that is not a player.
        """
        self.stop()
        if not utterance:
            return
        self.last = utterance
        ssml = utterance.ssml().encode("utf-8")
        sink = self.sink()
        direct = getattr(sink, "stdin", None)
        try:
            process = subprocess.Popen(
                command(utterance.voice, self.rate(), self.volume(), self.espeak),
                stdin=subprocess.PIPE, stdout=direct if direct is not None else subprocess.PIPE,
                stderr=subprocess.DEVNULL)
        except OSError:
            sink.close()  # no espeak-ng: nothing to say
            return
        if direct is not None:
            direct.close()  # espeak-ng holds the player's input now: its end ends the player
        assert process.stdin is not None
        if len(ssml) < _PIPE_BYTES:  # fits in the pipe: never blocks
            process.stdin.write(ssml)
            process.stdin.close()
            ssml = b""
        stopped = threading.Event()
        thread = threading.Thread(target=self._run, name="read-aloud", daemon=True,
                                  args=(process, sink, direct is not None, ssml, stopped))
        with self._lock:
            self._stopped, self._thread = stopped, thread
            self._process, self._sink = process, sink
        thread.start()

    def stop(self) -> None:
        """Stop speaking now (nothing happens when silent)."""
        with self._lock:
            process, thread, sink = self._process, self._thread, self._sink
            self._stopped.set()
            self._process = self._sink = None
        if process is not None and process.poll() is None:
            process.kill()  # our own espeak-ng child
        if sink is not None:
            # The sound card may still hold a second of samples: silence it now (a write
            # blocked on it then fails, and the thread ends).
            sink.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def wait(self, timeout: float = 60.0) -> None:
        """Wait until the utterance ends (tests and the tour)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, process: subprocess.Popen[bytes], sink: Sink | Player, direct: bool,
             ssml: bytes, stopped: threading.Event) -> None:
        assert process.stdin is not None
        try:
            if ssml:
                process.stdin.write(ssml)
                process.stdin.close()
            if direct:
                process.wait()
                sink.drain()  # type: ignore[union-attr]
            else:
                self._relay(process, sink, stopped)  # type: ignore[arg-type]
        except (BrokenPipeError, ValueError, OSError):
            pass  # stopped mid-way: a pipe was closed under us
        finally:
            sink.close()
            if process.poll() is None:
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None and not pipe.closed:
                    try:
                        pipe.close()
                    except BrokenPipeError:
                        pass  # espeak-ng is gone: what was left to write goes nowhere

    def _relay(self, process: subprocess.Popen[bytes], sink: Sink,
               stopped: threading.Event) -> None:
        assert process.stdout is not None
        header = process.stdout.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            return
        # read1: hand on what espeak-ng has made so far, not wait for a full buffer.
        read = process.stdout.read1  # type: ignore[attr-defined]
        first = True
        while not stopped.is_set():
            chunk = read(4096)
            if not chunk:
                break
            if first and self.on_first_samples is not None:
                self.on_first_samples(time.perf_counter())
            first = False
            sink.write(chunk)
