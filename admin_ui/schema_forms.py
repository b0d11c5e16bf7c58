"""HTML forms checked by the API's own marshmallow schemas, so a page's errors are the API's.

A form posts strings; the schemas are strict about types (an integer must be an integer), so
`integer_or_text` turns what looks like a whole number into one and leaves anything else for the
schema to refuse with its usual message. Errors come back as flat "field" or "steps.2.target"
keys, each message in the staff member's language (the schemas speak English, as the API does).
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tenants.errors import DomainError

Errors = dict[str, list[str]]

# The schemas' and services' messages as staff read them; anything else is shown as the API says it.
_MESSAGES = {
    "Missing data for required field.": _l("入力してください。"),
    "Field may not be null.": _l("入力してください。"),
    "Must not be blank.": _l("入力してください。"),
    "Not a valid integer.": _l("半角の整数で入力してください。"),
    "Not a valid string.": _l("文字で入力してください。"),
    "Use a time written HH:MM, e.g. 09:00.": _l("時刻は 09:00 のように入力してください。"),
    "Say at what time checks go out (HH:MM).": _l("送信する時刻を入力してください。"),
    "Choose the weekdays (MO … SU).": _l("曜日を1つ以上選んでください。"),
    "Weekdays go with freq weekly.": _l("曜日は「曜日を選ぶ」の場合だけ指定できます。"),
    "Give freq (daily or weekly) and time, or an rrule.": _l("繰り返し方を選んでください。"),
    "Give either rrule alone or freq and time.": _l("RRULE だけを入力してください。"),
    "The reminder must go out before the response window ends.":
        _l("再送は応答期限より前にしてください。"),
    "This name is already used.": _l("この名前はすでに使われています。"),
    "Must not be earlier than the step before.": _l("前の段階より早くはできません。"),
    "Only a contacts step has a priority.": _l("優先順位は緊急連絡先への通知にだけ指定できます。"),
    "residents follow this policy; move them to another policy first":
        _l("この見守り設定で見守っている利用者がいるため削除できません。先に利用者を別の設定に移してください。"),
    "check policies use this alert chain; change them first":
        _l("この通知順序を使っている見守り設定があるため削除できません。先に見守り設定を変更してください。"),
}
_PATTERNS = [
    (re.compile(r"^Must be greater than or equal to (-?\d+) and less than or equal to (-?\d+)\.$"),
     lambda m: _("%(low)s〜%(high)sの範囲で入力してください。", low=m[1], high=m[2])),
    (re.compile(r"^Must be greater than or equal to (-?\d+)\.$"),
     lambda m: _("%(low)s以上で入力してください。", low=m[1])),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
     lambda m: _("%(low)s〜%(high)s個(文字)で入力してください。", low=m[1], high=m[2])),
    (re.compile(r"^At most (\d+) characters, so it fits one SMS\.$"),
     lambda m: _("%(high)s文字以内にしてください(SMS 1通に収まる長さです)。", high=m[1])),
    (re.compile(r"^Longer than maximum length (\d+)\.$"),
     lambda m: _("%(high)s文字以内で入力してください。", high=m[1])),
    (re.compile(r"^Shorter than minimum length 1\.$"), lambda m: _("入力してください。")),
    (re.compile(r"^Must be one of: .*\.$"), lambda m: _("選択肢から選んでください。")),
    (re.compile(r"^Not a valid date"), lambda m: _("日付が正しくありません。")),
    (re.compile(r"^No alert chain \d+\.$"), lambda m: _("その通知順序は見つかりません。")),
    (re.compile(r"^No group \d+\.$"), lambda m: _("そのグループは見つかりません。")),
    # RRULE schedules (tenants.schedules.ScheduleError)
    (re.compile(r"^say when checks go out with BYHOUR"),
     lambda m: _("BYHOUR(と BYMINUTE)で送信する時刻を指定してください。")),
    (re.compile(r"would check more than once an hour$"),
     lambda m: _("1時間に2回以上の安否確認はできません。")),
    (re.compile(r"^the rule never produces a check$"),
     lambda m: _("この RRULE では安否確認が一度も送られません。")),
    (re.compile(r"^(DTSTART|COUNT) is not allowed"),
     lambda m: _("%(part)s は使えません(始まりは開始日で指定します)。", part=m[1])),
    (re.compile(r"^give a single RRULE$"), lambda m: _("RRULE を1つだけ入力してください。")),
    (re.compile(r"^not a valid RRULE: (.*)$"),
     lambda m: _("RRULE として読めません(%(detail)s)。", detail=m[1])),
]


def localise(message: str) -> str:
    known = _MESSAGES.get(message)
    if known is not None:
        return str(known)
    for pattern, say in _PATTERNS:
        match = pattern.search(message)
        if match:
            return say(match)
    return message


def flatten(messages: Any, prefix: str = "") -> Errors:
    """marshmallow's nested messages as {"schedule.weekdays": [...], "steps.1.target": [...]}.

    Schema-level messages (`_schema`) belong to their parent key.
    """
    if isinstance(messages, dict):
        flat: Errors = {}
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            for field, texts in flatten(value, name).items():
                flat.setdefault(field, []).extend(texts)
        return flat
    texts = messages if isinstance(messages, list) else [messages]
    return {prefix or "_schema": [localise(str(text)) for text in texts]}


def domain_errors(error: DomainError, fallback: str = "_schema") -> Errors:
    """A service's refusal as field errors; a refusal naming no field goes to `fallback`."""
    if error.errors:
        return flatten(error.errors)
    return {fallback: [localise(error.message)]}


def integer_or_text(value: str | None) -> Any:
    """"30" → 30 (full-width digits too); blank → None; anything else as typed, for the schema."""
    if value is None:
        return None
    text = value.strip().translate(str.maketrans("０１２３４５６７８９－", "0123456789-"))
    if not text:
        return None
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else value


def blank_to_none(value: str | None) -> str | None:
    return value if value and value.strip() else None
