"""The earthquake subscription as a form, shared by a tenant admin's page and the operator console.

The form posts text; the API's `EarthquakeSettings` schema decides what is valid, so a code the
service would not match (a municipality code is 5 digits, a seismic intensity area 3) is refused
here with the same rule, and each refusal is said in Japanese next to its field.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import SelectChoice, SelectField, StringField, TextAreaField

from admin_ui.schema_forms import integer_or_text, localise
from schemas.earthquakes import EarthquakeSettings
from tenants import jma

FIELDS = {"city_codes": "quake_city_codes", "area_codes": "quake_area_codes",
          "min_intensity": "quake_min_intensity", "hold_minutes": "quake_hold_minutes",
          "fold_minutes": "quake_fold_minutes"}
_SEPARATORS = re.compile(r"[\s,、]+")


# The scale's steps as the JMA names them in each language (5弱 is "5 Lower" in its English).
SHINDO = {"1": _l("震度1"), "2": _l("震度2"), "3": _l("震度3"), "4": _l("震度4"),
          "5-": _l("震度5弱"), "5+": _l("震度5強"), "6-": _l("震度6弱"), "6+": _l("震度6強"),
          "7": _l("震度7")}


def shindo(intensity: str | None) -> str:
    """A JMA intensity as people write it: "5-" → 震度5弱."""
    if not intensity:
        return "—"
    return str(SHINDO[intensity]) if intensity in SHINDO else _("震度%(n)s", n=jma.label(intensity))


def intensity_choices() -> list[SelectChoice]:
    return [SelectChoice(code, SHINDO[code]) for code in jma.INTENSITIES]


class EarthquakeFields(FlaskForm):
    """Which areas are the tenant's, how strong a shake starts a round, how long to wait."""

    quake_city_codes = TextAreaField(_l("市区町村コード"), render_kw={"rows": 2})
    quake_area_codes = TextAreaField(_l("細分区域コード(地震情報)"), render_kw={"rows": 2})
    # The schema refuses an unknown intensity with the page's own message.
    quake_min_intensity = SelectField(_l("一斉安否確認を始める震度"), choices=intensity_choices,
                                      default="5-", validate_choice=False)
    quake_hold_minutes = StringField(_l("開始までの待ち時間(分)"), default="10",
                                     render_kw={"inputmode": "numeric"})
    quake_fold_minutes = StringField(_l("余震をまとめる時間(分)"), default="60",
                                     render_kw={"inputmode": "numeric"})


def form_data(settings: dict[str, Any]) -> dict[str, Any]:
    """The stored settings (`earthquakes.settings`) as the form's initial data."""
    return {"quake_city_codes": " ".join(settings["city_codes"]),
            "quake_area_codes": " ".join(settings["area_codes"]),
            "quake_min_intensity": settings["min_intensity"],
            "quake_hold_minutes": str(settings["hold_minutes"]),
            "quake_fold_minutes": str(settings["fold_minutes"])}


def _codes(text: str | None) -> list[str]:
    """Codes as staff paste them: spaces, new lines or commas between, full-width digits too."""
    return [c for c in _SEPARATORS.split(unicodedata.normalize("NFKC", text or "")) if c]


def payload(form: EarthquakeFields) -> dict[str, Any]:
    """What the form says, shaped for `EarthquakeSettings` (and TenantIn's `earthquake`)."""
    return {"city_codes": _codes(form.quake_city_codes.data),
            "area_codes": _codes(form.quake_area_codes.data),
            "min_intensity": form.quake_min_intensity.data or "",
            "hold_minutes": integer_or_text(form.quake_hold_minutes.data),
            "fold_minutes": integer_or_text(form.quake_fold_minutes.data)}


def _refused_codes(codes: list[str], messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [codes[i] for i in sorted(messages) if isinstance(i, int) and i < len(codes)]
    return []


def show_errors(form: EarthquakeFields, messages: dict[str, Any], sent: dict[str, Any]) -> None:
    """Put the schema's refusals (of `sent`) next to their fields, in the staff's language."""
    for name, value in messages.items():
        field = form[FIELDS[name]] if name in FIELDS else None
        if field is None:
            continue
        if name == "city_codes":
            bad = _refused_codes(sent.get("city_codes", []), value)
            text = (_("「%(codes)s」は市区町村コードではありません。全国地方公共団体コードの5桁"
                      "(検査数字を除く)で入力してください(例: 武蔵野市は 13203)。",
                      codes="、".join(bad)) if bad else _("市区町村コードは200個までです。"))
        elif name == "area_codes":
            bad = _refused_codes(sent.get("area_codes", []), value)
            text = (_("「%(codes)s」は細分区域コードではありません。気象庁の地震情報／細分区域の"
                      "3桁で入力してください(例: 東京都多摩東部は 351)。",
                      codes="、".join(bad)) if bad else _("細分区域コードは200個までです。"))
        elif name == "min_intensity":
            text = _("震度は 震度1〜震度7(5弱・5強・6弱・6強を含む)から選んでください。")
        else:
            text = " ".join(localise(str(m)) for m in value)
        field.errors = [*field.errors, text]


def load(form: EarthquakeFields) -> dict[str, Any] | None:
    """The valid settings, or None with the errors on the form."""
    sent = payload(form)
    try:
        return EarthquakeSettings().load(sent)
    except ValidationError as exc:
        show_errors(form, exc.messages_dict, sent)
        return None


def subscribed(settings: dict[str, Any]) -> bool:
    """Reports reach a tenant only through its codes: none, and no report starts a round."""
    return bool(settings["city_codes"] or settings["area_codes"])
