"""Text bound to the current language: one observable that every label's text depends on.

In kv, ``text: tr._("Start")`` makes Kivy bind the label to ``tr``'s ``_`` (through
``fbind``); ``tr.switch(language)`` then re-evaluates every such rule, so no screen refreshes
its words by hand. Translations are the gettext catalogs of ``shared.i18n``.
"""

from __future__ import annotations

from typing import Any

from kivy.event import Observable

from shared.i18n import DEFAULT_LANGUAGE, check_language, translations


class Translator(Observable):  # type: ignore[misc]
    """The current language, and ``_`` that kv rules bind to."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        super().__init__()
        self.language = check_language(language)
        self._observers: list[tuple[Any, Any, Any]] = []
        self._gettext = translations(self.language).gettext

    def _(self, text: str) -> str:
        """Translate an English msgid into the current language."""
        return self._gettext(text) if text else ""

    def fbind(self, name: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Kivy binds kv rules that read ``tr._`` here: remember them for switch()."""
        if name == "_":
            self._observers.append((func, args, kwargs))
            return None
        return super().fbind(name, func, *args, **kwargs)

    def funbind(self, name: str, func: Any, *args: Any, **kwargs: Any) -> None:
        """Forget a binding made through fbind."""
        if name == "_":
            key = (func, args, kwargs)
            if key in self._observers:
                self._observers.remove(key)
            return
        super().funbind(name, func, *args, **kwargs)

    def switch(self, language: str) -> None:
        """Change the language and re-evaluate every rule bound to ``_``."""
        self.language = check_language(language)
        self._gettext = translations(self.language).gettext
        alive = []
        for observer in self._observers:
            func, args, _kwargs = observer
            try:
                func(*args, None, None)  # kv's call_fn(args, instance, value)
            except ReferenceError:
                continue  # its widget is gone (a closed pop-up): forget the binding
            alive.append(observer)
        self._observers = alive


tr = Translator()
