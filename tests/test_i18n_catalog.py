"""Every string of the dashboard has its English translation, with the same placeholders.

Staff switch to English per user; a string missing from the catalog would show in Japanese in
the middle of an English page, and a placeholder lost in translation would break the page.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "admin_ui/translations/en/LC_MESSAGES/messages.po"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
# Form labels and other module-level text are marked with lazy_gettext, imported as `_l`.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w*)\}")


def source_strings() -> dict[str, str]:
    """Each msgid of admin_ui (as `pybabel extract -F babel.cfg` finds them) and where it is."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / "admin_ui", METHODS, keywords=KEYWORDS,
            options_map={"templates/**.html": {"silent": "false"}}):
        for msgid in (message if isinstance(message, tuple) else (message,)):
            if msgid:
                found.setdefault(msgid, f"admin_ui/{filename}:{lineno}")
    return found


def _complete(translation: str | tuple[str, ...] | None) -> bool:
    return bool(translation) and (isinstance(translation, str) or all(translation))


def test_every_dashboard_string_is_translated_to_english():
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0]: m.string for m in catalog if m.id}
    strings = source_strings()
    assert len(strings) > 300  # the extraction itself found the dashboard
    missing = [f"{where}: {msgid}" for msgid, where in strings.items()
               if not _complete(translated.get(msgid))]
    assert not missing, "strings without English:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders():
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    broken = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = {m for source in ids for m in PLACEHOLDER.findall(source)}
        for text in strings:
            if {m for m in PLACEHOLDER.findall(text)} != wanted:
                broken.append(f"{ids[0]!r} -> {text!r}")
    assert not broken, "\n".join(broken)
