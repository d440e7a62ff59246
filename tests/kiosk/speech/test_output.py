"""Where speech is heard: headphones when a jack is connected (the private default), else the
speaker. Jacks as ALSA reports them (``amixer -c 0 contents``, alsa-utils 1.2 on an Intel HDA
card with a Realtek codec: these are its lines)."""

from __future__ import annotations

import pytest

from kiosk.speech.output import apply_route, headphones_in, jacks, mixer_commands, route

AMIXER = """numid=17,iface=CARD,name='Headphone Jack'
  ; type=BOOLEAN,access=r-------,values=1
  : values={headphone}
numid=16,iface=CARD,name='Mic Jack'
  ; type=BOOLEAN,access=r-------,values=1
  : values=on
numid=18,iface=CARD,name='Speaker Phantom Jack'
  ; type=BOOLEAN,access=r-------,values=1
  : values=on
numid=2,iface=MIXER,name='Master Playback Switch'
  ; type=BOOLEAN,access=rw------,values=1
  : values=on
"""


def test_jacks_are_read_from_amixer() -> None:
    found = jacks(AMIXER.format(headphone="off"))
    assert found == {"Headphone Jack": False, "Mic Jack": True, "Speaker Phantom Jack": True}


@pytest.mark.parametrize(("state", "expected"), [("on", "headphones"), ("off", "speaker")])
def test_headphones_when_plugged_in_else_the_speaker(state: str, expected: str) -> None:
    assert route(headphones_in(jacks(AMIXER.format(headphone=state)))) == expected


def test_a_card_with_no_headphone_jack_uses_the_speaker() -> None:
    assert headphones_in({"Mic Jack": True}) is None
    assert route(None) == "speaker"


def test_the_route_mutes_the_other_output() -> None:
    assert mixer_commands("headphones") == [
        ["amixer", "-q", "-c", "0", "sset", "Headphone", "unmute"],
        ["amixer", "-q", "-c", "0", "sset", "Speaker", "mute"]]
    assert mixer_commands("speaker")[1][-2:] == ["Headphone", "mute"]


def test_applying_the_route_reads_the_jack_then_sets_the_mixer() -> None:
    ran: list[list[str]] = []

    def run(cmd: list[str]) -> str:
        ran.append(cmd)
        return AMIXER.format(headphone="on") if "contents" in cmd else ""

    assert apply_route("0", run) == "headphones"
    assert ran[1:] == mixer_commands("headphones")


def test_no_sound_card_is_not_an_error() -> None:
    def run(cmd: list[str]) -> str:
        raise FileNotFoundError("amixer")

    assert apply_route("0", run) == "speaker"
