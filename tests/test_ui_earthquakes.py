"""The earthquake pages in a real browser: a tenant admin's subscription to JMA reports, what
each earthquake decided, the round it started, and the same settings in the operator console."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import created, resident_body
from tests.fixtures.browser import screenshot, sign_in
from tests.fixtures.engine import tokyo
from tests.test_earthquakes import DAY, post_report, sample


def _settings(tenant):
    return tenant.api.get("/api/v1/earthquakes/settings").get_json()


def _csrf(page):
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


@pytest.fixture
def admin(tenant, make_user):
    return make_user("kanri@city.musashino.jp", "admin", tenant.id)


def test_admin_subscribes_by_municipality_code_and_intensity(live_server, page, tenant, admin,
                                                             clean_app):
    """Can a tenant admin set the areas, threshold, hold and fold window, pasted as staff paste
    codes (full-width, separated by 、)?"""
    sign_in(page, live_server, admin)
    page.get_by_role("link", name="地震").click()
    expect(page.get_by_role("heading", name="設定")).to_contain_text("停止中")
    expect(page.get_by_label("一斉安否確認を始める震度")).to_have_value("5-")
    expect(page.get_by_label("開始までの待ち時間(分)")).to_have_value("10")
    page.get_by_label("市区町村コード").fill("１３２０３、13204")
    page.get_by_label("細分区域コード(地震情報)").fill("351")
    page.get_by_label("一斉安否確認を始める震度").select_option(label="震度5強")
    page.get_by_label("開始までの待ち時間(分)").fill("5")
    page.get_by_role("button", name="保存").click()

    expect(page.get_by_role("status")).to_contain_text("地震の設定を保存しました")
    expect(page.get_by_role("heading", name="設定")).to_contain_text("受信中")
    assert _settings(tenant) == {"city_codes": ["13203", "13204"], "area_codes": ["351"],
                                 "min_intensity": "5+", "hold_minutes": 5, "fold_minutes": 60}
    screenshot(page, "earthquake-settings")


@pytest.mark.parametrize(("fill", "form", "message"), [
    ({"市区町村コード": "13203 1320"}, None, "「1320」は市区町村コードではありません"),
    ({"細分区域コード(地震情報)": "3510"}, None, "「3510」は細分区域コードではありません"),
    ({"開始までの待ち時間(分)": "121"}, None, "0〜120の範囲で入力してください"),
    (None, {"quake_min_intensity": "8"}, "震度は 震度1〜震度7(5弱・5強・6弱・6強を含む)から選んでください"),
])
def test_bad_settings_are_explained_and_nothing_is_saved(live_server, page, tenant, admin, fill,
                                                         form, message):
    """A code that is not a municipality (5 digits) or area (3 digits) code, a hold out of range,
    an intensity JMA does not have: is each refused beside its field, with nothing saved?"""
    before = _settings(tenant)
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/t/{tenant.slug}/earthquakes")
    if fill:
        for label, value in fill.items():
            page.get_by_label(label).fill(value)
        page.get_by_role("button", name="保存").click()
        expect(page.locator(".field.has-error")).to_have_count(1)
        expect(page.locator(".field.has-error")).to_contain_text(message)
        expect(page.get_by_role("alert")).to_contain_text("保存していません")
    else:
        response = page.request.post(f"{live_server}/t/{tenant.slug}/earthquakes", form={
            "csrf_token": _csrf(page), "quake_city_codes": "13203", "quake_area_codes": "",
            "quake_hold_minutes": "10", "quake_fold_minutes": "60", **form})
        assert response.status == 422
        assert message in response.text()
    assert _settings(tenant) == before


def test_only_admins_change_the_settings(live_server, page, tenant, make_user):
    """Staff read the page but may not save (403); a viewer does not open it; a post without
    its CSRF token is refused (400)."""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    url = f"{live_server}/t/{tenant.slug}/earthquakes"
    page.goto(url)
    expect(page.get_by_role("button", name="保存")).to_have_count(0)
    expect(page.get_by_text("設定は管理者が変更できます。")).to_be_visible()
    form = {"csrf_token": _csrf(page), "quake_city_codes": "13203", "quake_min_intensity": "5-",
            "quake_hold_minutes": "10", "quake_fold_minutes": "60"}
    assert page.request.post(url, form=form).status == 403
    page.context.clear_cookies()
    sign_in(page, live_server, make_user("kanri@city.musashino.jp", "admin", tenant.id))
    assert page.request.post(url, form={**form, "csrf_token": "forged"}).status == 400
    page.context.clear_cookies()
    sign_in(page, live_server, make_user("etsuran@city.musashino.jp", "viewer", tenant.id))
    assert page.goto(url).status == 403
    assert _settings(tenant)["city_codes"] == []


def test_events_list_what_each_earthquake_decided(live_server, page, make_tenant, operator,
                                                  engine, make_user):
    """After a 震度速報 that started a round and an earthquake a correction called off, does the
    page say which did what, and does the round page name the earthquake that started it?
    Another tenant, subscribed elsewhere, sees none of it."""
    tenant = make_tenant()
    created(tenant.api.post("/api/v1/residents", resident_body(name="住民 一", contacts=[])))
    other = make_tenant("naha", "那覇市")
    for handle, codes in ((tenant, {"area_codes": ["351"], "city_codes": ["13203"]}),
                          (other, {"area_codes": ["700"]})):
        assert operator.patch(f"/api/v1/tenants/{handle.id}",
                              {"earthquake": codes}).status_code == 200
    assert post_report(operator, sample("vxse51_tama_5minus.xml")).get_json()["result"] == "triggered"
    engine.run(tokyo(f"{DAY} 10:27"))  # the hold is over: the round starts
    called_off = (sample("vxse53_musashino_5minus.xml"), sample("vxse53_musashino_correction_4.xml"))
    for document in called_off:
        post_report(operator, document.replace(b"20300401101530", b"20300401130000"))

    sign_in(page, live_server, make_user("kanri@city.musashino.jp", "admin", tenant.id))
    page.goto(f"{live_server}/t/{tenant.slug}/earthquakes")
    fired = page.locator("#quake-events tr[data-event='20300401101530']")
    expect(fired).to_contain_text("東京都多摩東部")
    expect(fired).to_contain_text("震度5弱")
    expect(fired.locator(".decision")).to_contain_text("一斉安否確認を開始")
    lowered = page.locator("#quake-events tr[data-event='20300401130000']")
    expect(lowered.locator(".decision")).to_contain_text("訂正で基準の震度を下回り、中止")
    expect(lowered.locator(".decision")).to_contain_text("訂正あり")
    expect(lowered).to_contain_text("震度4")
    screenshot(page, "earthquake-events")

    fired.get_by_role("link", name="一斉安否確認を見る").click()
    source = page.locator(".quake-source")
    expect(source).to_contain_text("東京都多摩東部 震度5弱")
    expect(source).to_contain_text("震度速報")
    expect(page.locator("[data-field=targeted]")).to_have_text("1")

    page.context.clear_cookies()
    sign_in(page, live_server, make_user("kanri@city.naha.jp", "admin", other.id))
    page.goto(f"{live_server}/t/naha/earthquakes")
    expect(page.locator("#quake-events")).to_have_count(0)
    expect(page.get_by_text("まだありません。")).to_be_visible()


def test_operator_sets_a_tenants_subscription_in_the_console(live_server, page, make_tenant,
                                                             make_user):
    """Can an operator set the same subscription in the console's tenant form, and is a bad
    code refused beside its field with nothing saved?"""
    tenant = make_tenant("tachikawa", "立川市")
    sign_in(page, live_server, make_user("ops@mimamori.example", "operator", None, totp=True))
    page.get_by_role("link", name="立川市").click()
    expect(page.get_by_label("一斉安否確認を始める震度")).to_have_value("5-")
    page.get_by_label("市区町村コード").fill("132021")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".field.has-error")).to_contain_text("「132021」は市区町村コードではありません")
    assert _settings(tenant)["city_codes"] == []

    page.get_by_label("市区町村コード").fill("13202")
    page.get_by_label("一斉安否確認を始める震度").select_option(label="震度6弱")
    page.get_by_label("余震をまとめる時間(分)").fill("30")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("立川市 の設定を保存しました")
    expect(page.get_by_label("市区町村コード")).to_have_value("13202")
    assert _settings(tenant) == {"city_codes": ["13202"], "area_codes": [], "min_intensity": "6-",
                                 "hold_minutes": 10, "fold_minutes": 30}
    screenshot(page, "console-tenant-earthquake")


def test_intensities_read_as_the_jma_names_them_in_each_language(app):
    """Is 5弱 "Shindo 5 Lower" on an English page, not a Japanese word in an English sentence?"""
    from flask_babel import force_locale

    from admin_ui.earthquake_settings import intensity_choices, shindo

    with app.test_request_context():
        assert shindo("5-") == "震度5弱" and shindo(None) == "—"
        with force_locale("en"):
            assert shindo("5-") == "Shindo 5 Lower" and shindo("6+") == "Shindo 6 Upper"
            assert [str(c.label) for c in intensity_choices()][3:6] == [
                "Shindo 4", "Shindo 5 Lower", "Shindo 5 Upper"]
