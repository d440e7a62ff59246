"""The results screen and the crisis screen: findings in plain words, what staff were told,
the guidance for each crisis and the site's own resources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.i18n import pick
from shared.triage import CRISIS_TRIGGERS, crisis_guidance, skipped_item_notice

from ..backend import Offline
from .words import CrisisSummary, Finding, _number, _result_levels, _result_words, _texts

if TYPE_CHECKING:
    from .base import VisitCore


class Results:
    """What the visit's answers mean, read from the journey in the visit's language."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit

    def findings(self) -> list[Finding]:
        """The results as plain findings, one per question asked (issue 15).

        A short screener followed by its full form (PHQ-2 then PHQ-9) shows the full form
        only. An instrument whose crisis item was positive is never "healthy": its finding is
        the crisis's own words and step, whatever its total.
        """
        words = _result_words()
        taken = self.visit.journey.results
        crisis_by_instrument = {t.instrument: t.trigger for t in CRISIS_TRIGGERS
                                if t.trigger in self.visit.journey.crisis_triggers}
        return [self._finding(iid, result, crisis_by_instrument.get(iid))
                for iid, result in taken.items() if words["replaced_by"].get(iid) not in taken]

    def _finding(self, iid: str, result: Any, trigger: str | None) -> Finding:
        """One instrument's finding: its number, what it means and one next step."""
        words = _result_words()
        lang = self.visit.language
        texts = _texts(iid, result.version if result else None)
        title = pick(texts.get("title"), lang)
        entry = words["findings"].get(iid, {})
        measure = ""
        if result is None:
            level = "not_scored"
            said = pick(words["not_scored"]["said"], lang)
            step = pick(words["not_scored"]["step"], lang)
        else:
            level = _result_levels().get(iid, {}).get(result.band, "watch")
            numbers = {"total": _number(result.total, lang),
                       **{k: _number(v, lang) for k, v in result.details.items()
                          if isinstance(v, int | float)}}
            measure = pick(entry.get("measure"), lang).format(**numbers) \
                if entry.get("measure") else ""
            band = entry.get("bands", {}).get(result.band)
            if band is not None:
                said, step = pick(band["said"], lang), pick(band["step"], lang)
            else:  # an instrument the wording does not cover: its own band label
                label = texts.get("bands", {}).get(result.band)
                said, step = (pick(label, lang) if label else result.band), ""
            said = f"{measure} {said}".strip()
        if trigger is not None:
            level = "act"
            item = words["crisis"]["item"][trigger]
            said = f"{measure} {pick(item['said'], lang)}".strip()
            step = pick(item["step"], lang)
        return Finding(iid, title, level, pick(words["levels"][level], lang), said, step,
                       trigger is not None)

    def crisis_summary(self) -> CrisisSummary | None:
        """What was seen, whether staff were told, 988/911; None when no crisis was raised."""
        triggers = self.visit.journey.crisis_triggers
        if not triggers:
            return None
        words = _result_words()["crisis"]
        lang = self.visit.language
        staff = "staff_told" if self.staff_told() else "staff_not_told"
        return CrisisSummary(pick(words["heading"], lang),
                             [pick(words["seen"][t], lang) for t in triggers],
                             pick(words[staff], lang), pick(words["lines"], lang))

    def crisis_reminder(self) -> str:
        """The 988 line the done screen repeats after a visit that raised a crisis (or '')."""
        if not self.visit.journey.crisis_triggers:
            return ""
        return str(pick(_result_words()["crisis"]["done"], self.visit.language))

    def next_step_words(self) -> str:
        """The words before each finding's next step ("Next step:")."""
        return str(pick(_result_words()["next_step"], self.visit.language))

    def results_legend(self) -> str:
        """What the colours of the results mean, in words."""
        return str(pick(_result_words()["legend"], self.visit.language))

    def staff_told(self) -> bool:
        """Tell whether the crisis has surely reached the site server (so staff were alerted).

        Said only when the kiosk is online with nothing left to send: the crisis travels first,
        so an empty outbox means it arrived. Otherwise the member is asked to tell staff.
        """
        try:
            status = self.visit.backend.status()
        except (Offline, OSError):
            return False
        return status.online and status.outbox_depth == 0

    def notices(self) -> list[str]:
        """Gentle notices owed for skipped questions (the 988 line for PHQ-9 item 9)."""
        found = []
        for iid, links in self.visit.journey.skipped.items():
            for link in links:
                notice = skipped_item_notice(iid, link)
                if notice is not None:
                    found.append(pick(notice.text, self.visit.language))
        return found

    def crisis(self) -> list[dict[str, Any]]:
        """The guidance for each crisis this visit raised, in the visit's language."""
        lang = self.visit.language
        shown = []
        for trigger in self.visit.journey.crisis_triggers:
            guidance = crisis_guidance(trigger)
            shown.append({
                "trigger": trigger,
                "title": pick(guidance.title, lang),
                "text": pick(guidance.text, lang),
                "resources": [{"label": pick(r["label"], lang),
                               "phone": r.get("phone"), "sms": r.get("sms"), "url": r.get("url")}
                              for r in guidance.resources],
            })
        return shown

    def local_crisis_resources(self) -> list[str]:
        """The site's own crisis resources, one line each ("name: number"), shown after the
        fixed 988/911 guidance and never instead of it (empty before pairing)."""
        catalog = self.visit.backend.catalog()
        if catalog is None:
            return []
        lines = []
        for res in catalog.settings.local_crisis_resources:
            ways = [w for w in (res.phone, res.sms, res.url) if w]
            label = pick(res.label, self.visit.language)
            lines.append(f"{label}: {', '.join(ways)}" if ways else label)
        return lines

    def close_crisis(self, *, confirm: bool) -> str:
        """The two-step close of the crisis screen (a follow-up offer may show next)."""
        screen = self.visit.journey.close_crisis(self.visit.clock(), confirm=confirm)
        self.visit.questions.queue_finished()
        return screen

    def after_results(self) -> str:
        """Continue from the results: the referral offer, or the menu when anonymous."""
        return self.visit.fire("continue")
