"""Japanese labels (with a symbol where a status is shown) for the domain's stored codes."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from tenants.models.engine import OUTCOMES

OUTCOME_LABELS = {
    "safe": _l("無事"),
    "hospitalised": _l("入院"),
    "deceased": _l("死亡"),
    "unreachable": _l("連絡不能"),
    "false_alarm": _l("誤報"),
    "other": _l("その他"),
}
assert set(OUTCOME_LABELS) == set(OUTCOMES)

CHANNEL_LABELS = {"line": "LINE", "sms": "SMS", "voice": _l("電話(音声)"), "staff": _l("職員が記録")}

RELATION_LABELS = {
    "relative": _l("親族"),
    "case_worker": _l("ケースワーカー"),
    "welfare_commissioner": _l("民生委員"),
    "neighbour": _l("近隣の方"),
    "staff": _l("職員"),
    "other": _l("その他"),
}

GROUP_KIND_LABELS = {"community": _l("つながり(住民同士の見守り)"), "area": _l("地区")}

# Why a message went out (Delivery.purpose), wherever deliveries are listed.
PURPOSE_LABELS = {
    "check": _l("安否確認"),
    "reminder": _l("再送"),
    "alert": _l("通知順序"),
    "round": _l("一斉安否確認"),
    "digest": _l("つながりのお知らせ"),
    "broadcast": _l("お知らせ配信"),
}

# Where a delivery stands (Delivery.status).
DELIVERY_STATUS_LABELS = {
    "queued": _l("待機"), "retry": _l("再試行待ち"), "sending": _l("送信中"), "sent": _l("送信済み"),
    "delivered": _l("配達済み"), "read": _l("既読"), "answered": _l("応答あり"),
    "blocked": _l("届かない"), "failed": _l("失敗"), "busy": _l("話し中"),
    "no_answer": _l("応答なし"), "canceled": _l("取り消し"),
}

# Timeline lines: a symbol (for those who do not read colour) and a word for each kind of event.
EVENT_LABELS = {
    "opened": ("!", _l("案件発生")),
    "chain": ("…", _l("通知順序")),
    "step": ("→", _l("通知")),
    "delivery": ("✉", _l("送信")),
    "skip": ("↷", _l("スキップ")),
    "escalation": ("‼", _l("職員対応")),
    "answer": ("✓", _l("本人の応答")),
    "acknowledgement": ("✋", _l("対応表明")),
    "resolution": ("■", _l("解決")),
    "note": ("✎", _l("メモ")),
}

# A day in the answer calendar: symbol and word, never colour alone.
DAY_LABELS = {
    "answered": ("○", _l("応答あり")),
    "missed": ("×", _l("応答なし")),
    "failed": ("△", _l("送信失敗")),
    "sent": ("…", _l("応答待ち")),
    "paused": ("－", _l("休止")),
    "none": ("・", _l("確認なし")),
}


def labels() -> dict[str, Any]:
    """The labels as template globals of the pages that use them."""
    return {"OUTCOME_LABELS": OUTCOME_LABELS, "CHANNEL_LABELS": CHANNEL_LABELS,
            "RELATION_LABELS": RELATION_LABELS, "GROUP_KIND_LABELS": GROUP_KIND_LABELS,
            "PURPOSE_LABELS": PURPOSE_LABELS, "DELIVERY_STATUS_LABELS": DELIVERY_STATUS_LABELS,
            "EVENT_LABELS": EVENT_LABELS, "DAY_LABELS": DAY_LABELS}
