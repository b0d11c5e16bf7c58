"""Request bodies a tenant sends, as staff would fill them in; tests override what they test."""

from __future__ import annotations

from typing import Any


def chain_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "標準", "steps": [
        {"after_minutes": 0, "target": "resident", "channel": "voice"},
        {"after_minutes": 30, "target": "contacts", "priority": 1, "channel": "sms"},
        {"after_minutes": 60, "target": "contacts"},
        {"after_minutes": 90, "target": "staff"},
    ], **overrides}


def policy_body(alert_chain_id: int | None = None, **overrides: Any) -> dict[str, Any]:
    return {"name": "毎日9時", "schedule": {"freq": "daily", "interval": 1, "time": "09:00"},
            "reminder_after_minutes": 30, "response_window_minutes": 60,
            "alert_chain_id": alert_chain_id, **overrides}


def resident_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "山田 花子", "name_kana": "ヤマダ ハナコ", "birth_date": "1940-04-01",
            "phone": "090-1234-5678", "line_user_id": None, "channels": ["line", "sms", "voice"],
            "check_policy_id": None, "group_ids": [],
            "contacts": [{"name": "山田 太郎", "relation": "relative", "phone": "+818012345678",
                          "channels": ["sms"], "priority": 1}],
            **overrides}


def created(response: Any) -> dict[str, Any]:
    """The JSON of a 201 answer, failing with the problem document otherwise."""
    assert response.status_code == 201, response.get_json()
    return response.get_json()
