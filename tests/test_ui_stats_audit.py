"""Monthly statistics (charts, table, CSV) and the audit log, in a real browser."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select

from mimamori.extensions import db
from tenants.models import Resident, User
from tenants.services import checks
from tenants.services.audit import record
from tenants.tenancy import bind_tenant
from tests.factories import chain_body, created, policy_body, resident_body
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from tests.test_ui_policies import fits_tablet

DAY1, DAY2 = "2030-04-01", "2030-04-02"


def _answer(app, tenant_id, resident_id, at):
    """The resident answers their open check at `at` (as an SMS reply would)."""
    with app.app_context(), bind_tenant(tenant_id):
        check = checks.open_check_for(resident_id)
        assert checks.answer(check, "sms", at)
        db.session.commit()


def _april(tenant, engine, app):
    """Four residents on a daily 09:00 policy; 3 of 4 answer on April 1st, 2 of 4 on the 2nd."""
    chain = created(tenant.api.post("/api/v1/alert-chains", chain_body()))
    policy = created(tenant.api.post("/api/v1/check-policies", policy_body(
        chain["id"], starts_on=DAY1)))
    people = [created(tenant.api.post("/api/v1/residents", resident_body(
        name=name, birth_date=born, phone=f"090-1234-56{n:02d}", channels=channels, contacts=[],
        check_policy_id=policy["id"])))
        for n, (name, born, channels) in enumerate([
            ("山田 花子", "1940-04-01", ["sms", "voice"]),   # 90 at the end of April 2030: 85+
            ("佐藤 ハル", "1960-05-01", ["sms", "voice"]),   # 69: 65–74
            ("鈴木 正男", "1950-06-01", ["sms"]),            # 79: 75–84
            ("小林 ヨシエ", "1970-01-01", ["voice"]),        # 60: under 65
        ])]
    ids = [p["id"] for p in people]
    engine.run(tokyo(f"{DAY1} 09:00"))
    for resident_id, minute in zip(ids[:3], (10, 20, 30), strict=True):
        _answer(app, tenant.id, resident_id, tokyo(f"{DAY1} 09:{minute}"))
    engine.run(tokyo(f"{DAY1} 10:00"))
    engine.run(tokyo(f"{DAY2} 09:00"))
    for resident_id, minute in zip(ids[:2], (5, 15), strict=True):
        _answer(app, tenant.id, resident_id, tokyo(f"{DAY2} 09:{minute:02d}"))
    engine.run(tokyo(f"{DAY2} 10:00"))
    incidents = tenant.api.get("/api/v1/incidents?status=open").get_json()["items"]
    assert len(incidents) == 3
    resolved = tenant.api.post(f"/api/v1/incidents/{incidents[0]['id']}/resolve",
                               {"outcome": "safe"})
    assert resolved.status_code == 200, resolved.get_json()
    return ids


def test_stats_show_the_answer_rate_and_export_the_same_figures(live_server, page, tenant,
                                                                make_user, engine, clean_app):
    """For a month of checks run by the engine, does the statistics page show the right answer
    rates and median answer time, and does the CSV download (UTF-8 with BOM) hold the same
    figures and leave an export in the audit log?"""
    _april(tenant, engine, clean_app)
    login = make_user("kanri@city.musashino.jp", "admin", tenant.id)
    sign_in(page, live_server, login)
    page.goto(f"{live_server}/t/{tenant.slug}/stats?month=2030-04")
    expect(page.get_by_role("heading", level=1)).to_contain_text("2030年4月")
    expect(page.locator("#sum-checks")).to_have_text("8")
    expect(page.locator("#sum-answered")).to_have_text("5")
    expect(page.locator("#sum-rate")).to_have_text("62.5%")
    expect(page.locator("#sum-median")).to_have_text("15分")  # of 10, 20, 30, 5 and 15 minutes
    page.get_by_text("日別の数値を表で見る").click()
    expect(page.locator("tr[data-day='2030-04-01']")).to_contain_text("75.0%")
    expect(page.locator("tr[data-day='2030-04-02']")).to_contain_text("50.0%")
    expect(page.locator("tr[data-day='2030-04-03'] td").last).to_have_text("—")
    expect(page.locator("#incidents tr", has_text="無事").locator("td")).to_have_text("1")
    expect(page.locator("#incidents tr", has_text="未対応").locator("td")).to_have_text("2")
    for band in ("65歳未満", "65〜74歳", "75〜84歳", "85歳以上"):
        expect(page.locator("#ages tr", has_text=band).locator("td")).to_have_text("1")
    expect(page.locator("#channels tr", has_text="SMS").locator("td")).to_have_text("3")
    expect(page.locator("#channels tr", has_text="電話").locator("td")).to_have_text("1")
    # The charts are drawn here, described for screen readers, and say their values in text.
    chart = page.locator("svg#chart-rate")
    expect(chart.locator("title").first).to_have_text("2030年4月の日別応答率")
    expect(chart.locator("desc")).to_contain_text("62.5%")
    expect(page.locator("svg#chart-ages text.value")).to_have_count(5)
    # Bars are to scale: 1 safe is half the 2 still open, and no bar for none.
    bars = [float(bar.get_attribute("width"))
            for bar in page.locator("svg#chart-incidents rect.bar").all()]
    assert bars[0] * 2 == bars[-1] > 0 and bars[1] == 0
    assert page.locator("svg#chart-ages").bounding_box()["width"] >= 400
    assert "<script" not in page.locator("main").inner_html()
    screenshot(page, "stats-monthly")
    fits_tablet(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSVでダウンロード").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["安否確認(件)", "8"] in rows
    assert ["応答率(%)", "62.5"] in rows
    assert ["応答までの時間・中央値(分)", "15"] in rows
    assert ["2030-04-01", "4", "3", "75.0"] in rows
    assert ["2030-04-02", "4", "2", "50.0"] in rows
    assert ["無事", "1"] in rows and ["85歳以上", "1"] in rows

    page.goto(f"{live_server}/t/{tenant.slug}/audit")
    export = page.locator("#audit-log tr[data-action='stats.export']")
    expect(export).to_have_count(1)
    expect(export).to_contain_text("月次統計を出力")
    expect(export).to_contain_text(login.email)
    expect(export).to_contain_text("2030-04")


def test_audit_log_lists_who_viewed_a_resident(live_server, page, make_tenant, make_user,
                                               clean_app):
    """Does the audit log show who viewed which resident's data, filter by action, and show
    nothing of another tenant?"""
    city = make_tenant("musashino", "武蔵野市")
    other = make_tenant("mitaka", "三鷹市")
    hanako = created(city.api.post("/api/v1/residents", resident_body()))
    stranger = created(other.api.post("/api/v1/residents", resident_body(name="他市 太郎")))
    viewer = make_user("hoken@city.musashino.jp", "staff", city.id)
    admin = make_user("kanri@city.musashino.jp", "admin", city.id)
    with clean_app.app_context():
        staff_id = db.session.scalar(select(User.id).where(User.email == viewer.email))
        with bind_tenant(city.id):
            record("resident.view", tenant_id=city.id, user_id=staff_id,
                   target=db.session.get(Resident, hanako["id"]), detail={"page": "resident"})
        with bind_tenant(other.id):
            record("resident.view", tenant_id=other.id,
                   target=db.session.get(Resident, stranger["id"]))
        db.session.commit()
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/t/musashino/audit")
    expect(page.locator("#audit-log")).to_contain_text("利用者を登録")  # through the API
    page.get_by_label("操作").select_option(label="利用者を閲覧")  # submits on change
    expect(page).to_have_url(f"{live_server}/t/musashino/audit?action=resident.view")
    rows = page.locator("#audit-log tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(viewer.email)
    expect(rows).to_contain_text("利用者を閲覧")
    expect(rows).to_contain_text("利用者 山田 花子")
    expect(page.locator("main")).not_to_contain_text("他市 太郎")
    screenshot(page, "audit-log")
    fits_tablet(page)

    # A long log comes in pages of 50, newest first.
    with clean_app.app_context():
        for month in range(1, 61):
            record("stats.export", tenant_id=city.id, detail={"month": f"2030-{month:03d}"})
        db.session.commit()
    page.goto(f"{live_server}/t/musashino/audit?action=stats.export")
    expect(page.locator("#audit-log tbody tr")).to_have_count(50)
    expect(page.locator(".pagination")).to_contain_text("1 / 2 ページ")
    expect(page.locator("#audit-log tbody tr").first).to_contain_text("2030-060")
    page.get_by_role("link", name="古い記録").click()
    expect(page.locator("#audit-log tbody tr")).to_have_count(10)
    expect(page.locator("#audit-log tbody tr").last).to_contain_text("2030-001")
