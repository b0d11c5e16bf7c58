"""The つながり digest on a group's pages: its settings, and each digest sent with the leader's
「見に行きます」 — names only, and a commissioner sees only their residents."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import Delivery, GroupDigest, Tenant
from tenants.services import answers, digests
from tenants.tenancy import bind_tenant
from tests.factories import created, resident_body
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from tests.ui_support import DAY1, assign, daily_policy

LEADER_LINE, HANAKO_LINE = "U" + "1" * 32, "U" + "2" * 32


def _resident(tenant, name, kana, **fields):
    return created(tenant.api.post("/api/v1/residents", resident_body(
        name=name, name_kana=kana, contacts=[], **fields)))


def _salon(tenant, policy_id=None, **group):
    """つながりサロン中町: the leader and 山田 on LINE, 鈴木 by SMS, 伊藤 by a call."""
    people = {
        "leader": _resident(tenant, "佐藤 一郎", "サトウ イチロウ", line_user_id=LEADER_LINE,
                            phone="090-1000-0001", check_policy_id=policy_id),
        "hanako": _resident(tenant, "山田 花子", "ヤマダ ハナコ", line_user_id=HANAKO_LINE,
                            phone="090-1000-0002", check_policy_id=policy_id),
        "jiro": _resident(tenant, "鈴木 次郎", "スズキ ジロウ", channels=["sms"],
                          phone="090-1000-0003", check_policy_id=policy_id),
        "itsuko": _resident(tenant, "伊藤 五子", "イトウ イツコ", channels=["voice"],
                            phone="090-1000-0006", check_policy_id=policy_id),
    }
    salon = created(tenant.api.post("/api/v1/groups", {
        "name": "つながりサロン中町", "leader_resident_id": people["leader"]["id"],
        "member_ids": [p["id"] for p in people.values()], **group}))
    return salon, people


def test_staff_turn_the_digest_on_and_choose_who_gets_it(live_server, page, tenant, make_user):
    """Can staff turn a group's digest on, set its delay in hours and minutes, and choose the
    members who get it — with a clear message for a delay that cannot be?"""
    salon, people = _salon(tenant)
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/groups/{salon['id']}")
    settings = page.locator(".digest-settings")
    expect(settings).to_contain_text("送らない")
    expect(settings).to_contain_text("安否確認の23時間後")
    expect(page.locator("#digest-h + p + dl + h3 + p")).to_have_text("まだ送っていません。")

    page.get_by_role("link", name="グループを変更").click()
    page.get_by_label("つながりのお知らせを送る").check()
    page.get_by_label("安否確認の何時間後").fill("2")
    page.get_by_label("と何分後").fill("30")
    readers = page.locator("fieldset", has_text="お知らせを受け取るメンバー")
    expect(readers.get_by_text("鈴木 次郎")).to_contain_text("LINE未連携")
    readers.get_by_label("山田 花子").check()
    page.get_by_role("button", name="保存する").click()

    expect(page.locator(".flash-success")).to_contain_text("つながりサロン中町")
    expect(settings).to_contain_text("送る")
    expect(settings).to_contain_text("安否確認の2時間30分後")
    expect(settings).to_contain_text("佐藤 一郎 (リーダー)、山田 花子")
    group = tenant.api.get(f"/api/v1/groups/{salon['id']}").get_json()
    assert (group["digest_enabled"], group["digest_after_minutes"]) == (True, 150)
    assert group["digest_member_ids"] == [people["hanako"]["id"]]

    page.get_by_role("link", name="グループを変更").click()
    expect(page.get_by_label("安否確認の何時間後")).to_have_value("2")
    for hours, minutes, said in (("二", "0", "半角の整数で入力してください"),
                                 ("0", "0", "1分後から7日後(168時間後)までで入力してください")):
        page.get_by_label("安否確認の何時間後").fill(hours)
        page.get_by_label("と何分後").fill(minutes)
        page.get_by_role("button", name="保存する").click()
        field = page.locator(".field.has-error", has=page.get_by_label("安否確認の何時間後"))
        expect(field).to_contain_text(said)
        expect(page.get_by_role("alert")).to_contain_text("安否確認の何時間後")
    assert tenant.api.get(f"/api/v1/groups/{salon['id']}").get_json()["digest_after_minutes"] == 150


def _answer_on_line(app, tenant_id, resident_id, now):
    with app.app_context(), bind_tenant(tenant_id):
        delivery = db.session.scalar(select(Delivery).where(
            Delivery.recipient_type == "resident", Delivery.recipient_id == resident_id))
        answers.simulated_answer(db.session.get(Tenant, tenant_id), delivery, now)
        db.session.commit()


def test_the_group_page_lists_each_digest_and_the_leaders_answer(clean_app, live_server, page,
                                                                 tenant, make_user, engine):
    """After a digest went out and the leader tapped 「見に行きます」, does the group's page show
    when, whom it named (by name, whatever channel their check went by), to whom it went and
    the leader's acknowledgement — and a commissioner only their own residents' names?"""
    policy = daily_policy(tenant)
    salon, people = _salon(tenant, policy["id"], digest_enabled=True, digest_after_minutes=90)
    tenant.api.patch(f"/api/v1/groups/{salon['id']}",
                     {"digest_member_ids": [people["hanako"]["id"]]})
    engine.run(tokyo(f"{DAY1} 09:00"))
    for who in ("leader", "hanako"):
        _answer_on_line(clean_app, tenant.id, people[who]["id"], tokyo(f"{DAY1} 09:10"))
    engine.run(tokyo(f"{DAY1} 10:00"))  # 鈴木 and 伊藤 missed theirs: incidents open
    assert engine.run(tokyo(f"{DAY1} 10:30")).digests == 2
    with clean_app.app_context(), bind_tenant(tenant.id):
        digest = db.session.scalar(select(GroupDigest))
        reply = digests.leader_goes_to_see(LEADER_LINE, salon["id"], digest.occurrence,
                                           tokyo(f"{DAY1} 10:40"))
        db.session.commit()
    assert reply.result == "digest_acknowledged"

    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    page.goto(f"{live_server}/t/musashino/groups/{salon['id']}")
    row = page.locator("table.digests tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("2030年4月1日(月) 09:00")
    expect(row).to_contain_text("送信 2030年4月1日(月) 10:30")
    named = row.locator(".digest-named li")
    expect(named).to_have_count(2)
    expect(named.nth(0)).to_contain_text("伊藤 五子")
    expect(named.nth(0)).to_contain_text("電話(音声)")
    expect(named.nth(1)).to_contain_text("鈴木 次郎")
    expect(named.nth(1)).to_contain_text("SMS")
    expect(named.nth(1)).to_contain_text("対応中")
    expect(row.locator(".digest-readers")).to_contain_text("佐藤 一郎 (リーダー)")
    expect(row.locator(".digest-readers")).to_contain_text("山田 花子")
    expect(row.locator("td").last).to_contain_text("佐藤 一郎さん")
    expect(row.locator("td").last).to_contain_text("2030年4月1日(月) 10:40")
    history = page.locator("section", has=page.locator("#digest-h")).inner_text()
    for number in ("090", "+81", "1000-000"):
        assert number not in history
    screenshot(page, "group-digest-history")

    with clean_app.app_context(), bind_tenant(tenant.id):
        for day in range(1, 11):  # earlier digests, for a second page
            db.session.add(GroupDigest(
                tenant_id=tenant.id, group_id=salon["id"], occurrence=f"2030-03-{day:02d}T00:00Z",
                scheduled_at=tokyo(f"2030-03-{day:02d} 09:00"), unanswered=[], recipients=0,
                created_at=tokyo(f"2030-03-{day:02d} 09:00") + timedelta(minutes=90)))
        db.session.commit()
    page.reload()
    expect(row).to_have_count(10)
    expect(page.locator(".pager")).to_contain_text("11件中 1〜10件")
    page.locator(".pager").get_by_role("link", name="次へ").click()
    expect(row).to_have_count(1)
    expect(row).to_contain_text("2030年3月1日(金) 09:00")
    expect(row).to_contain_text("全員が応答していたため送っていません")

    page.context.clear_cookies()
    login = make_user("minsei@city.musashino.jp", "commissioner", tenant.id)
    assign(clean_app, login.email, people["jiro"]["id"])
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/musashino/groups/{salon['id']}")
    named = page.locator("table.digests tbody tr").first.locator(".digest-named li")
    expect(named).to_have_count(1)
    expect(named).to_contain_text("鈴木 次郎")
    expect(page.get_by_text("伊藤 五子")).to_have_count(0)
    expect(page.get_by_role("link", name="このグループにお知らせを送る")).to_have_count(0)
