"""Broadcasts (お知らせ配信) on the dashboard: compose, confirm whom it reaches, send, watch the counts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import created, resident_body
from tests.fixtures.browser import screenshot, sign_in
from tests.test_ui_policies import fits_tablet

NOTICE = "10月5日(土)10時から中町集会所で防災訓練があります。\nお誘い合わせのうえご参加ください。"
# Broadcasts go out now, whatever the hour the tests run: no quiet hours hold the calls.
NO_QUIET_HOURS = {"quiet_hours": {"start": "00:00", "end": "00:00"}}


def _resident(tenant, name, **fields):
    return created(tenant.api.post("/api/v1/residents", resident_body(
        name=name, name_kana=None, contacts=[], **fields)))


@pytest.fixture
def town(make_tenant):
    """A sandbox 武蔵野市 whose 中町一丁目 members are reached by LINE, SMS and a call, one by
    nothing; one resident outside the group."""
    tenant = make_tenant("musashino", **NO_QUIET_HOURS)
    members = [
        _resident(tenant, "山田 花子", channels=["line", "sms"], line_user_id="U" + "a" * 32,
                  phone="090-2000-0001"),
        _resident(tenant, "鈴木 次郎", channels=["sms"], phone="090-2000-0002"),
        _resident(tenant, "伊藤 五子", channels=["voice"], phone="090-2000-0003"),
        _resident(tenant, "高橋 四郎", channels=["line"], phone=None),
    ]
    _resident(tenant, "外部 八郎", channels=["sms"], phone="090-2000-0009")
    group = created(tenant.api.post("/api/v1/groups", {
        "name": "中町一丁目", "kind": "area", "member_ids": [m["id"] for m in members]}))
    return tenant, group, members


def _csrf(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def _sent(tenant) -> list[dict]:
    return tenant.api.get("/api/v1/broadcasts").get_json()["items"]


def test_staff_send_a_notice_to_a_group_and_watch_it_delivered(live_server, page, town, make_user,
                                                               engine):
    """Can staff write a notice to a group, see before sending how many it reaches on which
    channel, send it, and watch the counts change by themselves as it is delivered?"""
    tenant, group, members = town
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.get_by_role("navigation").get_by_role("link", name="お知らせ配信").click()
    page.get_by_role("link", name="お知らせを送る").click()
    page.get_by_label("送る相手").select_option(label="中町一丁目(4人)")
    page.get_by_label("メッセージ").fill(NOTICE)
    page.get_by_role("button", name="確認する").click()

    expect(page.get_by_role("heading", name="お知らせの確認")).to_be_visible()
    for channel, count in (("targeted", "4人"), ("line", "1"), ("sms", "1"), ("voice", "1"),
                           ("unreachable", "1")):
        expect(page.locator(f"[data-reach={channel}]")).to_have_text(count)
    expect(page.locator(".broadcast-message").first).to_contain_text("【武蔵野市からのお知らせ】")
    assert _sent(tenant) == []  # nothing goes out before it is confirmed
    page.get_by_role("button", name="修正する").click()
    expect(page.get_by_label("メッセージ")).to_have_value(NOTICE)
    expect(page.get_by_label("送る相手")).to_have_value(str(group["id"]))
    page.get_by_role("button", name="確認する").click()
    page.get_by_role("button", name="送信する").click()

    expect(page).to_have_url(re.compile(r"/broadcasts/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("対象 4 人")
    counts = page.locator("[data-refresh-url]")
    for field, value in (("targeted", "4"), ("pending", "3"), ("sent", "0"), ("unreachable", "1"),
                         ("channel_line", "1"), ("channel_sms", "1"), ("channel_voice", "1")):
        expect(counts.locator(f"[data-field={field}]")).to_have_text(value)
    [broadcast] = _sent(tenant)
    assert (broadcast["group_id"], broadcast["message"]) == (group["id"], NOTICE)
    page.evaluate("window.notReloaded = true")

    engine.work()  # the worker sends it (to the sandbox)
    expect(counts.locator("[data-field=sent]")).to_have_text("3", timeout=15_000)
    expect(counts.locator("[data-field=pending]")).to_have_text("0")
    expect(counts.locator("[data-field=status_sent]")).to_have_text("3")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "broadcast-counts")
    fits_tablet(page)

    page.get_by_role("link", name="お知らせ配信", exact=True).first.click()
    row = page.locator("table.broadcasts tbody tr").first
    expect(row).to_contain_text("中町一丁目")
    expect(row).to_contain_text("LINE 1・SMS 1・電話(音声) 1")
    page.goto(f"{live_server}/t/musashino/simulator?resident={members[0]['id']}")
    expect(page.locator(".messages .message").first).to_contain_text("お知らせ配信")


def test_a_group_page_offers_its_broadcast(live_server, page, town, make_user):
    """Does the group's page lead to the form with that group chosen?"""
    tenant, group, _ = town
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/groups/{group['id']}")
    page.get_by_role("link", name="このグループにお知らせを送る").click()
    expect(page.get_by_label("送る相手")).to_have_value(str(group["id"]))


@pytest.mark.parametrize("role", ["viewer", "commissioner"])
def test_viewers_and_commissioners_read_but_cannot_send(live_server, page, town, make_user, role):
    """Can a viewer or a commissioner open the form, or post a broadcast anyway?"""
    tenant, group, _ = town
    created(tenant.api.post("/api/v1/broadcasts", {"message": "お知らせ"}))
    sign_in(page, live_server, make_user(f"{role}@city.musashino.jp", role, tenant.id))
    page.get_by_role("navigation").get_by_role("link", name="お知らせ配信").click()
    expect(page.locator("table.broadcasts tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name="お知らせを送る")).to_have_count(0)
    token = _csrf(page)
    assert page.goto(f"{live_server}/t/musashino/broadcasts/new").status == 403
    form = {"csrf_token": token, "group_id": str(group["id"]), "message": "お知らせ"}
    for path in ("broadcasts/confirm", "broadcasts", "broadcasts/new"):
        assert page.request.post(f"{live_server}/t/musashino/{path}", form=form).status == 403
    assert len(_sent(tenant)) == 1


def test_bad_messages_are_refused_and_nothing_is_sent(live_server, page, town, make_user):
    """A blank or too long message, an unknown group, or a post without its CSRF token: is each
    refused with a message staff understand, at the confirmation and at sending, sending nothing?"""
    tenant, group, _ = town
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/broadcasts/new")
    page.get_by_role("button", name="確認する").click()
    expect(page.locator(".field.has-error", has=page.get_by_label("メッセージ"))).to_contain_text(
        "入力してください")
    token = _csrf(page)
    cases = [({"message": "  \n "}, "入力してください"),
             ({"message": "あ" * 501}, "500文字以内にしてください"),
             ({"group_id": "999", "message": "お知らせ"}, "そのグループは見つかりません"),
             ({"group_id": "中町", "message": "お知らせ"}, "半角の整数で入力してください")]
    for path in ("broadcasts/confirm", "broadcasts"):
        for fields, said in cases:
            response = page.request.post(f"{live_server}/t/musashino/{path}",
                                         form={"csrf_token": token, "group_id": "", **fields})
            assert response.status == 422, (path, fields)
            assert said in response.text(), (path, fields)
    response = page.request.post(f"{live_server}/t/musashino/broadcasts",
                                 form={"group_id": str(group["id"]), "message": "お知らせ"})
    assert response.status == 400
    assert _sent(tenant) == []


def test_another_tenants_group_and_broadcast_are_not_found(live_server, page, town, make_tenant,
                                                          make_user):
    """Can staff of one tenant open another tenant's broadcast, or send to its group, by
    putting its id in the address or the form?"""
    tenant, _, _ = town
    other = make_tenant("mitaka", "三鷹市")
    _resident(other, "三鷹 一郎", channels=["sms"], phone="090-4000-0001")
    their_group = created(other.api.post("/api/v1/groups", {"name": "三鷹の会"}))
    theirs = created(other.api.post("/api/v1/broadcasts", {"message": "三鷹のお知らせ"}))
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    base = f"{live_server}/t/musashino"
    assert page.goto(f"{base}/broadcasts/{theirs['id']}").status == 404
    assert page.goto(f"{base}/broadcasts/{theirs['id']}/counts.json").status == 404
    assert page.goto(f"{base}/broadcasts/new?group_id={their_group['id']}").status == 404
    assert page.goto(f"{live_server}/t/mitaka/broadcasts/{theirs['id']}").status == 404
    page.goto(f"{base}/broadcasts")
    expect(page.get_by_text("三鷹のお知らせ")).to_have_count(0)
    response = page.request.post(f"{base}/broadcasts", form={
        "csrf_token": _csrf(page), "group_id": str(their_group["id"]), "message": "お知らせ"})
    assert response.status == 422 and "そのグループは見つかりません" in response.text()
    assert _sent(tenant) == [] and len(_sent(other)) == 1


def test_a_notice_confirmed_twice_is_sent_once(live_server, page, town, make_user):
    """Staff press 送信する twice (or the browser sends the form again): does everyone get the
    notice once, and the second press show the notice already sent?"""
    tenant, group, _ = town
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/broadcasts/new?group_id={group['id']}")
    page.get_by_label("メッセージ").fill("避難所を開設しました。")
    page.get_by_role("button", name="確認する").click()
    form = {name: page.locator(f"form[action$='/broadcasts'] input[name={name}]").get_attribute("value")
            for name in ("csrf_token", "group_id", "message", "submission")}
    page.get_by_role("button", name="送信する").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("お知らせ")
    first = page.url

    again = page.request.post(f"{live_server}/t/musashino/broadcasts", form=form)

    assert again.ok and again.url == first
    assert "すでに送信しました" in again.text()
    [sent] = _sent(tenant)
    assert sent["targeted"] == 4
