"""The two hard-wired crisis triggers of DESIGN.md section 3.6 and their fixed guidance.

They are code on purpose: no rules file, setting or edit can remove them, lower their priority
or change their guidance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.i18n import bilingual_text


def _resource(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return an immutable copy of a crisis resource: label {en, es}, phone/sms/url strings."""
    out: dict[str, Any] = {"label": bilingual_text(data.get("label"), "resource label")}
    for key in ("phone", "sms", "url"):
        value = data.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"resource {key} must be text")
            out[key] = value
    if not any(key in out for key in ("phone", "sms", "url")):
        raise ValueError("a crisis resource needs a phone, sms or url")
    return MappingProxyType(out)


@dataclass(frozen=True)
class CrisisGuidance:
    """What the kiosk must show for one crisis trigger, in EN and ES."""

    trigger: str
    severity: str
    title: Mapping[str, str]
    text: Mapping[str, str]
    resources: tuple[Mapping[str, Any], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", bilingual_text(self.title, "crisis title"))
        object.__setattr__(self, "text", bilingual_text(self.text, "crisis text"))
        object.__setattr__(self, "resources", tuple(_resource(r) for r in self.resources))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        resources = []
        for res in self.resources:
            item = dict(res)
            item["label"] = dict(res["label"])
            resources.append(item)
        return {
            "trigger": self.trigger,
            "severity": self.severity,
            "title": dict(self.title),
            "text": dict(self.text),
            "resources": resources,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrisisGuidance:
        """Rebuild guidance from as_dict() output."""
        return cls(
            trigger=str(data["trigger"]),
            severity=str(data["severity"]),
            title=data["title"],
            text=data["text"],
            resources=tuple(data.get("resources", ())),
        )


@dataclass(frozen=True)
class Notice:
    """A gentle information message for the member (not crisis guidance)."""

    code: str
    text: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", bilingual_text(self.text, f"notice {self.code} text"))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {"code": self.code, "text": dict(self.text)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        """Rebuild a Notice from as_dict() output."""
        return cls(code=str(data["code"]), text=data["text"])


_LIFELINE_988 = {
    "label": {
        "en": "988 Suicide & Crisis Lifeline: call or text 988, or chat at 988lifeline.org",
        "es": "988 Línea de Prevención del Suicidio y Crisis: llame al 988 y oprima 2 para "
        "español, o envíe AYUDA por mensaje de texto al 988",
    },
    "phone": "988",
    "sms": "988",
    "url": "https://988lifeline.org",
}
_EMERGENCY_911 = {
    "label": {
        "en": "Emergency services: call 911",
        "es": "Servicios de emergencia: llame al 911",
    },
    "phone": "911",
}

# Wording: DESIGN.md 3.6. 988: 988lifeline.org ("Spanish-language (Press 2)"; text AYUDA to 988,
# https://988lifeline.org/get-help/what-to-expect). Hypertensive crisis: American Heart
# Association, "Hypertensive Crisis: When You Should Call 911 for High Blood Pressure"
# (heart.org): 180/120 or greater, wait about five minutes and measure again; with chest pain,
# shortness of breath, back pain, numbness/weakness, change in vision or difficulty speaking,
# call 911.
_CRISIS_GUIDANCE: dict[str, CrisisGuidance] = {
    "phq9_item9": CrisisGuidance(
        trigger="phq9_item9",
        severity="crisis",
        title={
            "en": "You don't have to go through this alone",
            "es": "No tiene que pasar por esto a solas",
        },
        text={
            "en": "Your answers say you have had thoughts that you would be better off dead, "
            "or of hurting yourself. Help is available right now, free and confidential, "
            "24 hours a day: call or text 988 to reach the 988 Suicide & Crisis Lifeline. "
            "If you are in immediate danger, call 911.",
            "es": "Sus respuestas indican que ha tenido pensamientos de que estaría mejor "
            "muerto(a) o de hacerse daño. Hay ayuda disponible ahora mismo, gratuita y "
            "confidencial, las 24 horas: llame o envíe un mensaje de texto al 988, la 988 "
            "Línea de Prevención del Suicidio y Crisis. 988 Lifeline ofrece ayuda en "
            "español: llame al 988 y oprima 2. Si está en peligro inmediato, llame al 911.",
        },
        resources=(_LIFELINE_988, _EMERGENCY_911),
    ),
    "hypertensive_crisis": CrisisGuidance(
        trigger="hypertensive_crisis",
        severity="crisis",
        title={
            "en": "Your blood pressure reading is very high",
            "es": "Su lectura de presión arterial es muy alta",
        },
        text={
            "en": "Your reading is in the hypertensive crisis range (top number above 180 "
            "and/or bottom number above 120). Call 911 now if you have chest pain, shortness "
            "of breath, back pain, numbness or weakness, a change in vision or difficulty "
            "speaking; otherwise rest 5 minutes, measure again, and contact a doctor today.",
            "es": "Su lectura está en el rango de crisis hipertensiva (número superior mayor "
            "de 180 y/o número inferior mayor de 120). Llame al 911 ahora si tiene dolor en "
            "el pecho, falta de aire, dolor de espalda, entumecimiento o debilidad, un cambio "
            "en la visión o dificultad para hablar; si no, descanse 5 minutos, vuelva a "
            "medirse la presión y comuníquese hoy mismo con un médico.",
        },
        resources=(_EMERGENCY_911,),
    ),
}


@dataclass(frozen=True)
class CrisisTrigger:
    """One hard-wired trigger: the result flag that fires it and the reason it records."""

    trigger: str
    instrument: str
    flag: str
    program: str
    domain: str
    reason: Mapping[str, str]


CRISIS_TRIGGERS: tuple[CrisisTrigger, ...] = (
    CrisisTrigger(
        trigger="phq9_item9",
        instrument="phq9",
        flag="item9_positive",
        program="behavioral_health",
        domain="behavioral",
        reason=MappingProxyType(
            {
                "en": "PHQ-9 item 9 answered above 'Not at all': thoughts of being better off "
                "dead or of self-harm. Crisis guidance (988 Lifeline, 911) was shown with this "
                "result. Contact the member today and assess safety, whatever the total score.",
                "es": "Ítem 9 del PHQ-9 respondido por encima de 'Para nada': pensamientos de "
                "que estaría mejor muerto(a) o de hacerse daño. Se mostró la guía de crisis "
                "(988 Lifeline, 911) con este resultado. Comuníquese hoy con la persona y "
                "evalúe su seguridad, sea cual sea la puntuación total.",
            }
        ),
    ),
    CrisisTrigger(
        trigger="hypertensive_crisis",
        instrument="blood_pressure",
        flag="hypertensive_crisis",
        program="disease_management",
        domain="physical",
        reason=MappingProxyType(
            {
                "en": "Blood pressure reading in the hypertensive crisis range (systolic above "
                "180 and/or diastolic above 120). The member was told to call 911 for chest "
                "pain, shortness of breath, back pain, numbness or weakness, vision change or "
                "difficulty speaking, otherwise to rest 5 minutes, re-measure and contact a "
                "doctor today. Follow up today.",
                "es": "Lectura de presión arterial en el rango de crisis hipertensiva (sistólica "
                "mayor de 180 y/o diastólica mayor de 120). Se indicó a la persona llamar al 911 "
                "si tiene dolor en el pecho, falta de aire, dolor de espalda, entumecimiento o "
                "debilidad, cambios en la visión o dificultad para hablar; si no, descansar 5 "
                "minutos, volver a medirse y comunicarse hoy con un médico. Haga seguimiento hoy.",
            }
        ),
    ),
)


def crisis_guidance(trigger: str) -> CrisisGuidance:
    """Return the fixed guidance for a crisis trigger ("phq9_item9" or "hypertensive_crisis")."""
    return _CRISIS_GUIDANCE[trigger]


# Skipping item 9 is not a disclosure, so it gets the 988 information gently: no crisis screen,
# no crisis priority (DESIGN.md 3.6).
_SKIPPED_ITEM_NOTICES: dict[tuple[str, str], Notice] = {
    ("phq9", "9"): Notice(
        code="phq9_item9_skipped",
        text={
            "en": "If you are ever going through a hard time, or have thoughts of hurting "
            "yourself, you can call or text 988 (the 988 Suicide & Crisis Lifeline) at any "
            "time. It is free and confidential.",
            "es": "Si alguna vez está pasando por un momento difícil, o tiene pensamientos de "
            "hacerse daño, puede llamar o enviar un mensaje de texto al 988 (la 988 Línea de "
            "Prevención del Suicidio y Crisis) en cualquier momento. Es gratuito y "
            "confidencial. 988 Lifeline ofrece ayuda en español: llame al 988 y oprima 2.",
        },
    ),
}


def skipped_item_notice(instrument_id: str, link_id: str) -> Notice | None:
    """Return the gentle notice owed when this item is skipped, or None."""
    return _SKIPPED_ITEM_NOTICES.get((instrument_id, str(link_id)))
