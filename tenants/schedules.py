"""Check schedules as RFC 5545 RRULEs in the tenant's zone, and their occurrences in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import HOURLY, MINUTELY, SECONDLY, rrule, rrulestr

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FORBIDDEN_FREQS = {SECONDLY: "SECONDLY", MINUTELY: "MINUTELY"}
_FORBIDDEN_PARTS = ("DTSTART", "COUNT")


class ScheduleError(ValueError):
    """The schedule cannot drive checks; the message says why."""


def to_rrule(schedule: dict[str, Any]) -> str:
    """The RRULE for a schedule written as {"freq", "interval", "weekdays", "time"} or {"rrule"}."""
    if "rrule" in schedule:
        rule = str(schedule["rrule"]).strip().upper()
        if rule.startswith("RRULE:"):
            rule = rule[len("RRULE:"):]
        _validate_rrule(rule)
        return rule
    hour, minute = (int(part) for part in schedule["time"].split(":"))
    parts = [f"FREQ={schedule['freq'].upper()}", f"INTERVAL={int(schedule.get('interval') or 1)}"]
    if schedule["freq"] == "weekly":
        parts.append("BYDAY=" + ",".join(schedule["weekdays"]))
    parts += [f"BYHOUR={hour}", f"BYMINUTE={minute}", "BYSECOND=0"]
    return ";".join(parts)


def _validate_rrule(rule: str) -> None:
    keys = {part.partition("=")[0].strip() for part in rule.split(";")}
    for part in _FORBIDDEN_PARTS:
        if part in keys:
            raise ScheduleError(f"{part} is not allowed; the policy's start date anchors the rule")
    try:
        parsed = rrulestr(rule, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"not a valid RRULE: {exc}") from exc
    if not isinstance(parsed, rrule):
        raise ScheduleError("give a single RRULE")
    freq = parsed._freq
    if freq in _FORBIDDEN_FREQS:
        raise ScheduleError(f"FREQ={_FORBIDDEN_FREQS[freq]} would check more than once an hour")
    if freq != HOURLY and "BYHOUR=" not in rule:
        raise ScheduleError("say when checks go out with BYHOUR (and BYMINUTE)")
    if parsed.after(datetime(2026, 1, 1), inc=True) is None and "UNTIL=" not in rule:
        raise ScheduleError("the rule never produces a check")


def _rule(rule: str, starts_on: date) -> rrule:
    text = rule if "BYMINUTE=" in rule else rule + ";BYMINUTE=0"
    if "BYSECOND=" not in text:
        text += ";BYSECOND=0"
    return rrulestr(text, dtstart=datetime.combine(starts_on, datetime.min.time()))


def iter_occurrences(rule: str, starts_on: date, zone: ZoneInfo, after: datetime,
                     inclusive: bool = False) -> Iterator[datetime]:
    """Occurrences in UTC after `after` (an aware instant), earliest first."""
    # Start a day early in local time so an offset change can never skip an occurrence.
    local_start = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    for local in _rule(rule, starts_on).xafter(local_start, inc=True):
        instant = local.replace(tzinfo=zone).astimezone(UTC)
        if instant > after or (inclusive and instant == after):
            yield instant


def next_occurrences(rule: str, starts_on: date, zone: ZoneInfo, after: datetime,
                     count: int) -> list[datetime]:
    result = []
    for instant in iter_occurrences(rule, starts_on, zone, after):
        result.append(instant)
        if len(result) >= count:
            break
    return result


def latest_due(rule: str, starts_on: date, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The most recent occurrence at or before `now` (missed ones collapse into this one)."""
    local_now = now.astimezone(zone).replace(tzinfo=None)
    local = _rule(rule, starts_on).before(local_now, inc=True)
    if local is None:
        return None
    instant = local.replace(tzinfo=zone).astimezone(UTC)
    return instant if instant <= now else None
