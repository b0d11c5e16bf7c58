"""Monthly statistics through the API (月次統計): the figures a council report needs."""

from __future__ import annotations

from tests.fixtures.engine import tokyo
from tests.webhooks_support import DAY1, add_resident, daily_policy


def test_a_month_of_checks_answers_and_incidents(tenant, make_tenant, engine):
    """Two residents get the 09:00 check on 1 April, one answers: does April read 2 checks,
    1 answered (50 %), one incident still open and two residents, day by day?"""
    policy = daily_policy(tenant.api)
    first = add_resident(tenant.api, policy["id"], channels=["sms"], birth_date="1940-04-01")
    add_resident(tenant.api, policy["id"], channels=["sms"], phone="090-1234-0002",
                 birth_date=None)
    other = make_tenant("other-city", "他市")
    add_resident(other.api, daily_policy(other.api)["id"], channels=["sms"])
    engine.run(tokyo(f"{DAY1} 09:00"))
    [check] = [c for c in tenant.api.get(f"/api/v1/checks?resident_id={first['id']}")
               .get_json()["items"]]
    assert tenant.api.post(f"/api/v1/checks/{check['id']}/answer").status_code == 200
    engine.run(tokyo(f"{DAY1} 10:00"))

    response = tenant.api.get("/api/v1/stats?month=2030-04")

    assert response.status_code == 200, response.get_json()
    figures = response.get_json()
    assert (figures["month"], figures["checks"], figures["answered"], figures["response_rate"]) \
        == ("2030-04", 2, 1, 50.0)
    assert figures["incidents"]["open"] == 1 and figures["residents"] == 2
    assert figures["age_bands"]["85_plus"] == 1 and figures["age_bands"]["unknown"] == 1
    assert len(figures["days"]) == 30
    assert figures["days"][0] == {"date": "2030-04-01", "checks": 2, "answered": 1,
                                  "response_rate": 50.0}
    assert figures["days"][1]["response_rate"] is None


def test_bad_months_and_operator_tokens_are_refused(tenant, operator):
    """Is a month that is not YYYY-MM a 422 naming the field, and an operator token a 403?"""
    for month in ("2030-13", "2030-4", "0000-01", "9999-12", "april"):
        response = tenant.api.get(f"/api/v1/stats?month={month}")
        assert response.status_code == 422, month
        assert "month" in response.get_json()["errors"]
    assert operator.get("/api/v1/stats").status_code == 403
