"""Read-aloud (issue 19): what each screen says, espeak-ng speech, and where it is heard.

``words`` (what a screen says) and ``utterance`` are pure; ``espeak`` makes the sound;
``output`` picks headphones or the speaker; ``reader`` decides when to speak. Nothing here
imports Kivy: the app (kiosk/ui) wires it to the speaker button and the screens.
"""
