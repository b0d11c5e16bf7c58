"""The round page in a real browser: the live tally by area and group, who has not answered with
their vulnerability notes, and the one action that starts the alert chain for them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import created
from tests.fakes.line import postback_event, user_id
from tests.fixtures.browser import screenshot, sign_in
from tests.ui_support import assign
from tests.webhooks_support import (
    add_resident,
    credentials,
    daily_policy,
    ok_button_data,
    post_line,
)

MESSAGE = "地震がありました。ご無事ですか?"


@pytest.fixture
def district(make_tenant):
    """武蔵野市 on LINE: two areas and a つながり group; 山田, 鈴木 and 伊藤 are in the group,
    佐藤 is not. Each follows a policy with the standard alert chain."""
    tenant = make_tenant("musashino", **credentials())
    policy = daily_policy(tenant.api)
    group = {name: created(tenant.api.post("/api/v1/groups", {"name": name, "kind": kind}))
             for name, kind in (("中町一丁目", "area"), ("中町二丁目", "area"),
                                ("つながりサロン", "community"))}

    def person(number, name, kana, groups, notes=None):
        return add_resident(tenant.api, policy["id"], name=name, name_kana=kana,
                            phone=f"090-6000-000{number}", line_user_id=user_id(number),
                            channels=["line", "sms"], contacts=[],
                            group_ids=[group[g]["id"] for g in groups],
                            **({"notes": notes} if notes else {}))

    people = {
        "yamada": person(1, "山田 花子", "ヤマダ ハナコ", ["中町一丁目", "つながりサロン"],
                         notes="車椅子を使用。2階に寝室。"),
        "suzuki": person(2, "鈴木 次郎", "スズキ ジロウ", ["中町二丁目", "つながりサロン"],
                         notes="難聴: 玄関で大きな声で"),
        "ito": person(3, "伊藤 五子", "イトウ イツコ", ["つながりサロン"]),
        "sato": person(4, "佐藤 一郎", "サトウ イチロウ", ["中町一丁目"]),
    }
    return tenant, people, group


def _answer_on_line(client, line, tenant, number):
    """The resident taps 元気です on the round's LINE message (a signed postback)."""
    [sent] = line.delivered_to(user_id(number))
    response = post_line(client, tenant.slug, [postback_event(user_id(number), ok_button_data(sent))])
    assert response.status_code == 200


def test_round_page_breakdown_and_escalation_live(live_server, page, client, district, fakes,
                                                   make_user, engine):
    """Staff start a round for a group; when a resident taps 元気です on LINE, do the tally, the
    area and group rows and the list of the silent change by themselves, and does the escalate
    action open each silent resident's incident once, however often it is pressed?"""
    tenant, people, group = district
    line, _ = fakes
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/{tenant.slug}/rounds")
    page.get_by_label("送る相手").select_option(label="つながりサロン(3人)")
    page.get_by_label("メッセージ").fill(MESSAGE)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="安否確認を送る").click()
    expect(page).to_have_url(re.compile(r"/rounds/\d+$"))

    live = page.locator("[data-refresh-url]")
    area1, area2 = (f"group-{group[name]['id']}" for name in ("中町一丁目", "中町二丁目"))
    salon = f"group-{group['つながりサロン']['id']}"
    expect(live.locator("[data-field=targeted]")).to_have_text("3")
    expect(live.locator(f"[data-field={area1}-targeted]")).to_have_text("1")
    expect(live.locator(f"[data-field={area2}-targeted]")).to_have_text("1")
    expect(live.locator("[data-field=without-area-targeted]")).to_have_text("1")
    expect(live.locator(f"[data-field={salon}-pending]")).to_have_text("3")
    waiting = page.locator("#waiting tbody tr")
    expect(waiting).to_have_count(3)
    yamada_row = waiting.filter(has_text="山田 花子")
    expect(yamada_row).to_contain_text("車椅子を使用。2階に寝室。")
    expect(yamada_row).to_contain_text("中町一丁目、つながりサロン")
    expect(page.locator("#waiting")).not_to_contain_text("佐藤 一郎")  # not in the group
    page.evaluate("window.notReloaded = true")

    engine.work()  # the worker sends the round on LINE
    _answer_on_line(client, line, tenant, 1)

    expect(live.locator("[data-field=answered]")).to_have_text("1", timeout=15_000)
    expect(live.locator(f"[data-field={area1}-answered]")).to_have_text("1")
    expect(live.locator(f"[data-field={area1}-rate]")).to_have_text("100%")
    expect(live.locator(f"[data-field={area2}-answered]")).to_have_text("0")
    expect(live.locator(f"[data-field={salon}-pending]")).to_have_text("2")
    expect(live.locator(f"[data-field={salon}-rate]")).to_have_text("33%")
    expect(waiting).to_have_count(2)
    expect(page.locator("#waiting")).not_to_contain_text("山田 花子")
    expect(waiting.filter(has_text="鈴木 次郎")).to_contain_text("難聴: 玄関で大きな声で")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "round-breakdown-live")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="応答がない方の通知順序を開始").click()
    expect(page.get_by_role("status")).to_contain_text(
        "応答がない 2 人について通知順序を開始しました")
    assert "通知順序を開始" in asked[0]
    expect(waiting.filter(has_text="鈴木 次郎")).to_contain_text("通知中")
    screenshot(page, "round-escalated")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="応答がない方の通知順序を開始").click()
    expect(page.get_by_role("status")).to_contain_text("通知順序はすでに開始しています")

    incidents = tenant.api.get("/api/v1/incidents").get_json()["items"]
    assert sorted(i["resident_id"] for i in incidents) == sorted(
        people[k]["id"] for k in ("suzuki", "ito"))


def test_commissioner_sees_only_their_residents_notes(live_server, page, district, make_user,
                                                     clean_app):
    """A welfare commissioner on the round page: only their assigned residents' notes, in the
    page and in its live figures, and no escalate action (refused if posted)."""
    tenant, people, _ = district
    round_id = created(tenant.api.post("/api/v1/rounds", {"message": MESSAGE}))["id"]
    login = make_user("minsei@city.musashino.jp", "commissioner", tenant.id)
    assign(clean_app, login.email, people["yamada"]["id"])
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/{tenant.slug}/rounds/{round_id}")
    expect(page.locator("#waiting tbody tr")).to_have_count(1)
    expect(page.locator("#waiting")).to_contain_text("車椅子を使用")
    expect(page.locator("#waiting")).not_to_contain_text("難聴")
    expect(page.get_by_role("button", name="応答がない方の通知順序を開始")).to_have_count(0)
    figures = page.request.get(
        f"{live_server}/t/{tenant.slug}/rounds/{round_id}/tally.json").json()
    assert [w["name"] for w in figures["waiting"]] == ["山田 花子"]
    assert "難聴" not in str(figures)
    assert figures["targeted"] == 4  # counts are not personal: the whole round's
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(f"{live_server}/t/{tenant.slug}/rounds/{round_id}/escalate",
                                 form={"csrf_token": token})
    assert response.status == 403
    assert tenant.api.get("/api/v1/incidents").get_json()["items"] == []


def test_escalate_needs_write_and_a_csrf_token(live_server, page, district, make_user):
    """Is escalating refused to a viewer (403) and to a post without its CSRF token (400)?"""
    tenant, _, _ = district
    round_id = created(tenant.api.post("/api/v1/rounds", {"message": MESSAGE}))["id"]
    path = f"{live_server}/t/{tenant.slug}/rounds/{round_id}"
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    assert page.request.post(f"{path}/escalate", form={}).status == 400
    page.context.clear_cookies()
    sign_in(page, live_server, make_user("etsuran@city.musashino.jp", "viewer", tenant.id))
    page.goto(path)
    expect(page.locator("#waiting tbody tr")).to_have_count(4)  # a viewer reads the round
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert page.request.post(f"{path}/escalate", form={"csrf_token": token}).status == 403
    assert tenant.api.get("/api/v1/incidents").get_json()["items"] == []


def test_another_tenants_round_is_not_found(live_server, page, district, make_tenant, make_user):
    """Does a staff member of another tenant get 404 for this tenant's round — its page, its
    figures and its escalate action — even under their own tenant's address?"""
    tenant, _, _ = district
    round_id = created(tenant.api.post("/api/v1/rounds", {"message": MESSAGE}))["id"]
    other = make_tenant("kunitachi", "国立市")
    sign_in(page, live_server, make_user("hoken@city.kunitachi.jp", "admin", other.id))
    for slug in ("kunitachi", tenant.slug):
        base = f"{live_server}/t/{slug}/rounds/{round_id}"
        assert page.goto(base).status == 404
        assert page.request.get(f"{base}/tally.json").status == 404
    page.goto(f"{live_server}/t/kunitachi/rounds")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(f"{live_server}/t/kunitachi/rounds/{round_id}/escalate",
                                 form={"csrf_token": token})
    assert response.status == 404
    assert tenant.api.get("/api/v1/incidents").get_json()["items"] == []
