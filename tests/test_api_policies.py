"""Check policies (見守り設定) and alert chains (通知順序) as staff set them up."""

from __future__ import annotations

import itertools
from datetime import datetime

from tests.factories import chain_body, created, policy_body, resident_body


def test_chain_keeps_its_steps_in_order(tenant):
    """Does an alert chain come back with its steps as given, the default channel left open?"""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    steps = chain["steps"]
    assert [s["after_minutes"] for s in steps] == [0, 30, 60, 90]
    assert [s["target"] for s in steps] == ["resident", "contacts", "contacts", "staff"]
    assert steps[1]["priority"] == 1 and steps[2]["channel"] is None


def test_chain_input_errors_name_the_step(tenant):
    """Are an unknown target, a step out of time order and a misplaced priority refused?"""
    response = tenant.api.post("/api/v1/alert-chains", {"name": "誤り", "steps": [
        {"after_minutes": 0, "target": "police"}]})
    assert response.status_code == 422
    assert "target" in response.get_json()["errors"]["steps"]["0"]
    response = tenant.api.post("/api/v1/alert-chains", {"name": "逆順", "steps": [
        {"after_minutes": 60, "target": "resident"}, {"after_minutes": 30, "target": "staff"}]})
    assert response.status_code == 422 and "steps" in response.get_json()["errors"]
    response = tenant.api.post("/api/v1/alert-chains", {"name": "優先", "steps": [
        {"after_minutes": 0, "target": "staff", "priority": 1}]})
    assert response.status_code == 422
    assert tenant.api.get("/api/v1/alert-chains").get_json()["items"] == []


def _local_times(policy):
    return [datetime.fromisoformat(t) for t in policy["next_occurrences"]]


def test_daily_policy_previews_nine_oclock_tokyo(tenant):
    """Does a daily 09:00 policy preview its next checks at 09:00 Japan time?"""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    assert policy["rrule"].startswith("FREQ=DAILY;INTERVAL=1;BYHOUR=9;BYMINUTE=0")
    times = _local_times(policy)
    assert len(times) == 5
    assert all(t.hour == 9 and t.minute == 0 and t.utcoffset().total_seconds() == 9 * 3600
               for t in times)
    assert all((b - a).days == 1 for a, b in itertools.pairwise(times))


def test_weekly_and_rrule_schedules(tenant):
    """Do weekday and RRULE schedules land on the right days and times?"""
    weekly = created(tenant.api.post("/api/v1/check-policies", policy_body(
        name="月木7時", schedule={"freq": "weekly", "weekdays": ["MO", "TH"], "time": "07:00"})))
    assert {t.strftime("%a %H:%M") for t in _local_times(weekly)} == {"Mon 07:00", "Thu 07:00"}
    every_other = created(tenant.api.post("/api/v1/check-policies", policy_body(
        name="隔日21時", schedule={"rrule": "FREQ=DAILY;INTERVAL=2;BYHOUR=21;BYMINUTE=0"},
        reminder_after_minutes=None)))
    times = _local_times(every_other)
    assert all(t.hour == 21 for t in times)
    assert all((b - a).days == 2 for a, b in itertools.pairwise(times))
    preview = tenant.api.get(f"/api/v1/check-policies/{every_other['id']}/preview?count=3")
    assert len(preview.get_json()["occurrences"]) == 3


def test_preview_before_saving(tenant):
    """Can staff preview a schedule before saving it, without creating anything?"""
    response = tenant.api.post("/api/v1/check-policies/preview", {
        "schedule": {"freq": "daily", "interval": 3, "time": "10:30"}, "count": 4})
    assert response.status_code == 200
    assert len(response.get_json()["occurrences"]) == 4
    assert tenant.api.get("/api/v1/check-policies").get_json()["items"] == []


def test_schedule_errors_name_the_field(tenant):
    """Are a broken RRULE, a minutely rule, a missing time and a late reminder refused?"""
    cases = [
        ({"rrule": "FREQ=SOMETIMES"}, "schedule"),
        ({"rrule": "FREQ=MINUTELY;INTERVAL=5"}, "schedule"),
        ({"freq": "daily"}, "schedule"),
        ({"freq": "weekly", "time": "07:00"}, "schedule"),
        ({"freq": "daily", "time": "25:00"}, "schedule"),
    ]
    for schedule, field in cases:
        response = tenant.api.post("/api/v1/check-policies", policy_body(schedule=schedule))
        assert response.status_code == 422, schedule
        assert field in response.get_json()["errors"], (schedule, response.get_json())
    late = tenant.api.post("/api/v1/check-policies", policy_body(
        reminder_after_minutes=90, response_window_minutes=60))
    assert late.status_code == 422 and "reminder_after_minutes" in late.get_json()["errors"]
    assert tenant.api.get("/api/v1/check-policies").get_json()["items"] == []


def test_policies_in_use_cannot_be_deleted(tenant):
    """Can a policy residents follow be deleted (silently stopping their checks)? It must not."""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(chain["id"])))
    resident = created(tenant.api.post("/api/v1/residents",
                                       resident_body(check_policy_id=policy["id"])))
    assert tenant.api.delete(f"/api/v1/check-policies/{policy['id']}").status_code == 409
    assert tenant.api.delete(f"/api/v1/alert-chains/{chain['id']}").status_code == 409
    tenant.api.patch(f"/api/v1/residents/{resident['id']}", {"check_policy_id": None})
    assert tenant.api.delete(f"/api/v1/check-policies/{policy['id']}").status_code == 204
    assert tenant.api.delete(f"/api/v1/alert-chains/{chain['id']}").status_code == 204


def test_patch_policy_schedule(tenant):
    """Does changing a policy's time move its next checks?"""
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body()))
    changed = tenant.api.patch(f"/api/v1/check-policies/{policy['id']}",
                               {"schedule": {"freq": "daily", "time": "18:15"}})
    assert changed.status_code == 200
    assert all(t.hour == 18 and t.minute == 15 for t in _local_times(changed.get_json()))
