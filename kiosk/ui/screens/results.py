"""What the answers showed: the results, the crisis guidance, and the thank-you."""

from __future__ import annotations

from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty
from kivy.utils import escape_markup

from ..base import KioskScreen
from ..lang import tr


class ResultsScreen(KioskScreen):
    """A crisis first when there was one; then each finding in plain words with the member's
    own numbers and one next step; colours explained and never alone; not a diagnosis."""

    kv_name = "results"
    next_text = StringProperty("")

    def refresh(self) -> None:
        """Build the crisis card (if any), the colour legend and one card per finding."""
        visit = self.visit
        box = self.ids.rows
        box.clear_widgets()
        crisis = visit.crisis_summary()
        if crisis is not None:
            lines = [f"[b]{escape_markup(crisis.heading)}[/b]",
                     *(escape_markup(seen) for seen in crisis.seen),
                     f"[b]{escape_markup(crisis.staff)}[/b]",
                     f"[b]{escape_markup(crisis.lines)}[/b]"]
            card = Factory.ResultCard(text="\n".join(lines), fs=40)
            card.level = "act"
            box.add_widget(card)
        box.add_widget(Factory.KLabel(text=visit.results_legend(), fs=32))
        for finding in visit.findings():
            lines = [f"[b]{escape_markup(finding.title)}: {escape_markup(finding.level_words)}[/b]",
                     escape_markup(finding.said)]
            if finding.step:
                lines.append(f"[b]{escape_markup(visit.next_step_words())}[/b] "
                             f"{escape_markup(finding.step)}")
            card = Factory.ResultCard(text="\n".join(lines))
            card.level = finding.level  # a kv-declared property: set after building
            box.add_widget(card)
        for notice in visit.notices():
            box.add_widget(Factory.Notice(text=notice))
        self.next_text = tr._("Next") if visit.identified else tr._("Back to the menu")


class CrisisScreen(KioskScreen):
    """Guidance for the trigger; closes in two steps, or after its own long time."""

    kv_name = "crisis"
    armed = BooleanProperty(False)
    ready = BooleanProperty(False)  # the second step may be taken (a moment after the first)

    def refresh(self) -> None:
        """Show the guidance for every crisis this visit raised."""
        journey = self.visit.journey
        self.armed = journey.crisis_close_armed
        self.ready = journey.crisis_confirm_ready(self.visit.clock())
        if self.armed and not self.ready:
            Clock.schedule_once(lambda _dt: self._check_ready(), 0.1)
        box = self.ids.guidance
        box.clear_widgets()
        for shown in self.visit.crisis():
            box.add_widget(Factory.Title(text=shown["title"], halign="left"))
            box.add_widget(Factory.KLabel(text=shown["text"], fs=40))
            for res in shown["resources"]:
                # Each resource's label already says how to reach it ("call or text 988").
                box.add_widget(Factory.KLabel(text=f"[b]{res['label']}[/b]", markup=True, fs=42))
        local = self.visit.local_crisis_resources()
        if local:
            box.add_widget(Factory.Title(text=tr._("Help near you"), halign="left"))
            for line in local:
                box.add_widget(Factory.KLabel(text=f"[b]{escape_markup(line)}[/b]", markup=True,
                                              fs=42))

    def _check_ready(self) -> None:
        """Offer the second step once its moment has come (while this screen still shows)."""
        if self.manager is None or self.manager.current != self.name:
            return
        journey = self.visit.journey
        if not journey.crisis_close_armed:
            return
        self.ready = journey.crisis_confirm_ready(self.visit.clock())
        if not self.ready:
            Clock.schedule_once(lambda _dt: self._check_ready(), 0.1)
        else:
            self.app.hold_input()  # the button just woke up under a finger, maybe

    def close(self, confirm: bool) -> None:
        """First tap asks; the second, elsewhere and a moment later, closes."""
        self.app.do(self.visit.results.close_crisis, confirm=confirm)


class DoneScreen(KioskScreen):
    """Thank you; back to the start on its own (988 again after a visit that raised a crisis)."""

    kv_name = "done"
    crisis_line = StringProperty("")

    def refresh(self) -> None:
        """Repeat the crisis line when this visit raised a crisis."""
        self.crisis_line = self.visit.crisis_reminder()
