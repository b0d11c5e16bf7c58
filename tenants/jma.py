"""Reading JMA disaster-prevention XML (気象庁防災情報XML) seismic-intensity reports.

Only what a safety round needs is read: the report's identity (Control/Title, Control/Status,
Head/EventID, Head/Serial, Head/InfoType, Head/ReportDateTime) and the observed intensities,
Body/Intensity/Observation/Pref/Area (地震情報／細分区域, 3-digit codes, which 震度速報 carries)
and Pref/Area/City (市町村等, 7-digit codes whose first five digits are the JIS municipality
code), each with its MaxInt. The document is parsed with the standard library; a DTD or entity
declaration (which JMA never sends) is refused before parsing.
"""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from xml.parsers import expat
from zoneinfo import ZoneInfo

NS = {
    "jmx": "http://xml.kishou.go.jp/jmaxml1/",
    "jmx_ib": "http://xml.kishou.go.jp/jmaxml1/informationBasis1/",
    "jmx_seis": "http://xml.kishou.go.jp/jmaxml1/body/seismology1/",
}
JST = ZoneInfo("Asia/Tokyo")

# The JMA seismic intensity scale as MaxInt writes it, weakest first.
INTENSITIES = ("1", "2", "3", "4", "5-", "5+", "6-", "6+", "7")
LABELS = {"5-": "5弱", "5+": "5強", "6-": "6弱", "6+": "6強"}
# Japanese spellings staff may type for a threshold ("5弱", "５強", "震度6弱").
_SPELLINGS = {label: code for code, label in LABELS.items()}

STATUSES = ("通常", "訓練", "試験")
INFO_TYPES = ("発表", "訂正", "遅延", "取消")
# A City with no intensity yet but "震度５弱以上未入電" (5-lower or more, data not in) counts as 5-.
NOT_IN_YET = "震度５弱以上未入電"


class MalformedReport(ValueError):
    """Not a JMA report we can read: not XML, not the jmx Report, or a required element missing."""


@dataclass(frozen=True)
class Observation:
    """One area's or municipality's strongest observed intensity."""

    kind: str  # "area" (細分区域, 3 digits) or "city" (JIS municipality code, 5 digits)
    code: str
    name: str
    max_int: str


@dataclass(frozen=True)
class Report:
    title: str
    status: str
    event_id: str
    serial: str
    info_type: str
    report_at: datetime
    observations: tuple[Observation, ...] = ()

    @property
    def max_int(self) -> str | None:
        return max((o.max_int for o in self.observations), key=rank, default=None)


def rank(intensity: str) -> int:
    """Position on the scale: rank("5-") < rank("5+")."""
    return INTENSITIES.index(intensity)


def label(intensity: str) -> str:
    """How a JMA intensity is written for people: "5-" → "5弱"."""
    return LABELS.get(intensity, intensity)


def normalise_intensity(value: str) -> str:
    """A threshold as staff write it ("5弱", "５弱", "震度5-", "5-") as the JMA code ("5-")."""
    text = unicodedata.normalize("NFKC", str(value)).strip().removeprefix("震度")
    code = _SPELLINGS.get(text, text)
    if code not in INTENSITIES:
        raise ValueError(f"not a JMA seismic intensity: {value!r}")
    return code


def _refuse_declarations(document: bytes) -> None:
    """JMA documents have no DTD; one here could only be an entity-expansion attack."""

    def refuse(*_: object) -> None:
        raise MalformedReport("DTDs and entity declarations are not accepted")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(document, True)
    except expat.ExpatError as exc:
        raise MalformedReport(f"not well-formed XML: {exc}") from exc


def _text(parent: ET.Element, path: str, required: bool = True) -> str:
    element = parent.find(path, NS)
    if element is None:
        if required:
            raise MalformedReport(f"missing {path.replace('jmx_ib:', '').replace('jmx:', '')}")
        return ""
    return (element.text or "").strip()


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedReport(f"ReportDateTime is not a date and time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


def _max_int(element: ET.Element) -> str | None:
    value = _text(element, "jmx_seis:MaxInt", required=False)
    if value in INTENSITIES:
        return value
    if not value and NOT_IN_YET in _text(element, "jmx_seis:Condition", required=False):
        return "5-"
    return None


def _observations(root: ET.Element) -> tuple[Observation, ...]:
    found: list[Observation] = []
    observation = root.find("jmx_seis:Body/jmx_seis:Intensity/jmx_seis:Observation", NS)
    if observation is None:
        return ()
    for area in observation.iterfind("jmx_seis:Pref/jmx_seis:Area", NS):
        code, intensity = _text(area, "jmx_seis:Code", required=False), _max_int(area)
        if code and intensity:
            found.append(Observation("area", code, _text(area, "jmx_seis:Name", False), intensity))
        for city in area.iterfind("jmx_seis:City", NS):
            code, intensity = _text(city, "jmx_seis:Code", required=False), _max_int(city)
            if len(code) >= 5 and code[:5].isdigit() and intensity:
                found.append(Observation("city", code[:5], _text(city, "jmx_seis:Name", False),
                                         intensity))
    return tuple(found)


def parse(document: bytes) -> Report:
    """The parts of a JMA seismic report that decide a round; MalformedReport when unreadable."""
    if not document.strip():
        raise MalformedReport("empty body")
    _refuse_declarations(document)
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise MalformedReport(f"not well-formed XML: {exc}") from exc
    if root.tag != f"{{{NS['jmx']}}}Report":
        raise MalformedReport("not a JMA report (jmx:Report)")
    status = _text(root, "jmx:Control/jmx:Status")
    if status not in STATUSES:
        raise MalformedReport(f"unknown Control/Status {status!r}")
    info_type = _text(root, "jmx_ib:Head/jmx_ib:InfoType")
    if info_type not in INFO_TYPES:
        raise MalformedReport(f"unknown Head/InfoType {info_type!r}")
    event_id = _text(root, "jmx_ib:Head/jmx_ib:EventID")
    if not event_id or len(event_id) > 32:
        raise MalformedReport("Head/EventID is empty or too long")
    return Report(
        title=_text(root, "jmx:Control/jmx:Title")[:64],
        status=status,
        event_id=event_id,
        # 震度速報 is sent with an empty Serial.
        serial=_text(root, "jmx_ib:Head/jmx_ib:Serial", required=False)[:8],
        info_type=info_type,
        report_at=_instant(_text(root, "jmx_ib:Head/jmx_ib:ReportDateTime")),
        observations=() if info_type == "取消" else _observations(root),
    )
