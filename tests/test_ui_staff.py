"""Staff management (職員) in a real browser: temporary passwords, resets, deactivation, roles."""

from __future__ import annotations

import re

import pytest
from flask_login import login_user
from playwright.sync_api import expect
from sqlalchemy import select

from admin_ui.session import visible_residents
from mimamori.extensions import db
from tenants.models import AuditEvent, Resident, ResidentAssignment, User
from tenants.tenancy import bind_tenant
from tests.factories import created, resident_body
from tests.fixtures.browser import Login, screenshot, sign_in

NEW_PASSWORD = "あたらしい合言葉 2026 春"


@pytest.fixture
def other_page(chromium):
    """A second person's browser, with its own cookies."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ja-JP")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def admin(tenant, make_user):
    return make_user("admin@city.musashino.jp", "admin", tenant.id)


def _user(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def _actions(app, action):
    with app.app_context():
        return [(e.actor_user_id, e.target_id) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def _open_staff_member(page, email):
    page.get_by_role("navigation").get_by_role("link", name="職員", exact=True).click()
    page.locator("#staff-list tr", has_text=email).get_by_role("link").click()
    page.wait_for_url(re.compile(r"/staff/\d+$"))  # loaded: app.js asks before resetting


def _choose_new_password(page):
    expect(page).to_have_url(re.compile(r"/account/password$"))
    page.get_by_label("新しいパスワード", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("新しいパスワード(確認)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="変更する").click()
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()


def _csrf(page):
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def test_admin_creates_a_staff_user_whose_temporary_password_works_once(
        clean_app, live_server, page, other_page, tenant, admin):
    """Can an admin add a colleague whose temporary password works once and must be changed?"""
    sign_in(page, live_server, admin)
    page.get_by_role("navigation").get_by_role("link", name="職員", exact=True).click()
    page.get_by_role("link", name="職員を追加").click()
    page.get_by_label("メールアドレス").fill("Sato.Hanako@City.Musashino.jp")
    page.get_by_label("氏名").fill("佐藤 花子")
    page.get_by_label("役割").select_option(label="職員")
    page.get_by_role("button", name="追加して仮パスワードを発行").click()

    expect(page.get_by_role("heading", name="職員を追加しました")).to_be_visible()
    temporary = page.locator("#temporary-password").inner_text().strip()
    assert len(temporary) >= 10
    screenshot(page, "staff-temporary-password")

    page.get_by_role("navigation").get_by_role("link", name="職員", exact=True).click()
    row = page.locator("#staff-list tr", has_text="sato.hanako@city.musashino.jp")
    expect(row).to_contain_text("佐藤 花子")
    expect(row).to_contain_text("– なし")  # no second factor yet
    expect(row).to_contain_text("✓ 有効")
    expect(row).to_contain_text("未ログイン")
    assert temporary not in page.content()  # shown once, on the page that created it
    screenshot(page, "staff-list")

    login = Login("sato.hanako@city.musashino.jp", temporary)
    sign_in(other_page, live_server, login)
    _choose_new_password(other_page)
    other_page.get_by_role("button", name="ログアウト").click()
    sign_in(other_page, live_server, login)
    expect(other_page.get_by_role("alert")).to_contain_text("メールアドレスまたはパスワードが違います")
    sign_in(other_page, live_server, Login(login.email, NEW_PASSWORD))
    expect(other_page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()

    created_user = _user(clean_app, login.email)
    assert created_user.role == "staff" and created_user.tenant_id == tenant.id
    assert not created_user.must_change_password
    assert _actions(clean_app, "staff.create") == [(_user(clean_app, admin.email).id, created_user.id)]


def test_an_address_already_in_use_is_refused(clean_app, live_server, page, tenant, admin):
    """Does adding a second login with an address already in use say so, in Japanese?"""
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/t/musashino/staff/new")
    page.get_by_label("メールアドレス").fill("ADMIN@city.musashino.jp")
    page.get_by_role("button", name="追加して仮パスワードを発行").click()
    expect(page.get_by_text("このメールアドレスはすでに登録されています。")).to_be_visible()
    page.get_by_label("メールアドレス").fill("not an address")
    page.get_by_role("button", name="追加して仮パスワードを発行").click()
    expect(page.get_by_text("メールアドレスの形式で入力してください")).to_be_visible()
    assert _actions(clean_app, "staff.create") == []


def test_reset_password_signs_out_the_old_session(clean_app, live_server, page, other_page, tenant,
                                                  admin, make_user):
    """When an admin resets a password, is the person's open session signed out at once?"""
    colleague = make_user("kato@city.musashino.jp", "staff", tenant.id)
    sign_in(other_page, live_server, colleague)
    expect(other_page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    old_hash = _user(clean_app, colleague.email).password_hash

    sign_in(page, live_server, admin)
    _open_staff_member(page, colleague.email)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="パスワードを再設定").click()
    expect(page.get_by_role("heading", name="kato@city.musashino.jp")).to_be_visible()
    assert _user(clean_app, colleague.email).password_hash == old_hash  # thought better of it

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="パスワードを再設定").click()
    expect(page.get_by_role("heading", name="パスワードを再設定しました")).to_be_visible()
    temporary = page.locator("#temporary-password").inner_text().strip()
    screenshot(page, "staff-password-reset")

    other_page.reload()
    expect(other_page).to_have_url(re.compile(r"/login"))
    sign_in(other_page, live_server, colleague)
    expect(other_page.get_by_role("alert")).to_contain_text("メールアドレスまたはパスワードが違います")
    sign_in(other_page, live_server, Login(colleague.email, temporary))
    _choose_new_password(other_page)
    reset_user = _user(clean_app, colleague.email)
    assert _actions(clean_app, "staff.password_reset") == [
        (_user(clean_app, admin.email).id, reset_user.id)]


def test_deactivated_user_is_signed_out_until_reactivated(clean_app, live_server, page, other_page,
                                                          tenant, admin, make_user):
    """Is a deactivated login signed out and kept out, and back in once reactivated?"""
    colleague = make_user("ito@city.musashino.jp", "viewer", tenant.id)
    sign_in(other_page, live_server, colleague)
    expect(other_page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()

    sign_in(page, live_server, admin)
    _open_staff_member(page, colleague.email)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="アカウントを停止").click()
    expect(page.get_by_role("status")).to_contain_text("ito@city.musashino.jp を停止しました")
    expect(page.locator(".facts")).to_contain_text("– 停止中")
    screenshot(page, "staff-member")

    other_page.reload()
    expect(other_page).to_have_url(re.compile(r"/login"))
    sign_in(other_page, live_server, colleague)
    expect(other_page.get_by_role("alert")).to_contain_text("メールアドレスまたはパスワードが違います")

    page.get_by_role("button", name="アカウントを再開").click()
    expect(page.get_by_role("status")).to_contain_text("ito@city.musashino.jp を再開しました")
    sign_in(other_page, live_server, colleague)
    expect(other_page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    user_id = _user(clean_app, colleague.email).id
    admin_id = _user(clean_app, admin.email).id
    assert _actions(clean_app, "staff.deactivate") == [(admin_id, user_id)]
    assert _actions(clean_app, "staff.reactivate") == [(admin_id, user_id)]


def test_an_admin_cannot_lock_themselves_out(clean_app, live_server, page, tenant, admin):
    """Can an admin deactivate their own login or reset their own password from this page?"""
    sign_in(page, live_server, admin)
    _open_staff_member(page, admin.email)
    expect(page.get_by_role("button", name="アカウントを停止")).to_have_count(0)
    me = _user(clean_app, admin.email)
    base = f"{live_server}/t/musashino/staff/{me.id}"
    page.request.post(f"{base}/active", form={"csrf_token": _csrf(page), "active": "0"})
    page.request.post(f"{base}/password", form={"csrf_token": _csrf(page)})
    after = _user(clean_app, admin.email)
    assert after.active and after.password_hash == me.password_hash
    assert _actions(clean_app, "staff.deactivate") == _actions(clean_app, "staff.password_reset") == []


@pytest.mark.parametrize("role", ["viewer", "staff", "commissioner"])
def test_only_admins_open_or_post_to_the_staff_pages(clean_app, live_server, page, tenant, admin,
                                                    make_user, role):
    """Can a viewer (or staff, or a commissioner) open the staff pages, or post to them anyway?"""
    sign_in(page, live_server, make_user(f"{role}@city.musashino.jp", role, tenant.id))
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    expect(page.get_by_role("navigation").get_by_role("link", name="職員", exact=True)).to_have_count(0)
    token = _csrf(page)
    assert page.goto(f"{live_server}/t/musashino/staff/").status == 403
    target = _user(clean_app, admin.email)
    base = f"{live_server}/t/musashino/staff"
    posts = [("new", {"email": "intruder@example.jp", "role": "admin"}),
             (f"{target.id}/password", {}), (f"{target.id}/active", {"active": "0"})]
    for path, form in posts:
        assert page.request.post(f"{base}/{path}", form={"csrf_token": token, **form}).status == 403
    assert _user(clean_app, "intruder@example.jp") is None
    after = _user(clean_app, admin.email)
    assert after.active and after.password_hash == target.password_hash


def test_another_tenants_staff_are_not_found(clean_app, live_server, page, make_tenant, make_user):
    """Can an admin of tenant A open or reset a login of tenant B by putting its id in the URL?"""
    a = make_tenant("tenant-a", "A市")
    b = make_tenant("tenant-b", "B市")
    sign_in(page, live_server, make_user("admin@a.jp", "admin", a.id))
    token = _csrf(page)
    other = make_user("staff@b.jp", "staff", b.id)
    other_id = _user(clean_app, other.email).id
    assert page.goto(f"{live_server}/t/tenant-a/staff/{other_id}").status == 404
    response = page.request.post(f"{live_server}/t/tenant-a/staff/{other_id}/password",
                                 form={"csrf_token": token})
    assert response.status == 404
    assert _actions(clean_app, "staff.password_reset") == []


def _resident(tenant, name, kana, phone):
    return created(tenant.api.post("/api/v1/residents", resident_body(
        name=name, name_kana=kana, phone=phone, contacts=[])))["id"]


def test_commissioner_sees_only_assigned_residents(clean_app, live_server, page, tenant, admin,
                                                   make_user):
    """Can an admin give a welfare commissioner residents found by kana, so they see only those?"""
    yamada = _resident(tenant, "山田 花子", "ヤマダ ハナコ", "090-1111-0001")
    sato = _resident(tenant, "佐藤 一郎", "サトウ イチロウ", "090-1111-0002")
    _resident(tenant, "鈴木 次郎", "スズキ ジロウ", "090-1111-0003")
    commissioner = make_user("minsei@city.musashino.jp", "commissioner", tenant.id)

    sign_in(page, live_server, admin)
    _open_staff_member(page, commissioner.email)
    page.get_by_label("利用者を名前またはフリガナで検索").fill("さとう")  # hiragana finds katakana
    page.get_by_role("button", name="検索").click()
    expect(page.locator("fieldset.checks input[type=checkbox]")).to_have_count(1)
    page.get_by_label("佐藤 一郎").check()
    page.get_by_role("button", name="担当を保存").click()
    expect(page.get_by_role("status")).to_contain_text("追加 1 人、解除 0 人")

    page.get_by_label("利用者を名前またはフリガナで検索").fill("山田花子")  # spaces do not matter
    page.get_by_role("button", name="検索").click()
    page.get_by_label("山田 花子").check()
    page.get_by_role("button", name="担当を保存").click()
    expect(page.locator("#assign-h .count")).to_have_text("2")
    page.get_by_label("佐藤 一郎").uncheck()
    screenshot(page, "staff-commissioner-assignments")
    page.get_by_role("button", name="担当を保存").click()
    expect(page.get_by_role("status")).to_contain_text("追加 0 人、解除 1 人")
    expect(page.locator("#assign-h .count")).to_have_text("1")

    with clean_app.app_context(), bind_tenant(tenant.id):
        user = db.session.scalar(select(User).where(User.email == commissioner.email))
        rows = db.session.scalars(select(ResidentAssignment)).all()
        assert [(r.user_id, r.resident_id, r.tenant_id) for r in rows] == [(user.id, yamada, tenant.id)]
        with clean_app.test_request_context():
            login_user(user)
            seen = db.session.scalars(visible_residents(select(Resident.id))).all()
        assert seen == [yamada] and sato not in seen
    admin_id = _user(clean_app, admin.email).id
    assert _actions(clean_app, "staff.assign_residents") == [(admin_id, user.id)] * 3


def test_staff_pages_work_by_keyboard_on_a_tablet(clean_app, live_server, page, tenant, admin):
    """On a tablet, does the page fit the screen, and can the form be filled with the keyboard alone?"""
    page.set_viewport_size({"width": 820, "height": 1180})
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/t/musashino/staff/new")
    page.get_by_label("メールアドレス").focus()
    page.keyboard.type("tablet@city.musashino.jp")
    page.keyboard.press("Tab")
    page.keyboard.type("田中 一")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "role"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "追加して仮パスワードを発行"
    page.keyboard.press("Enter")
    expect(page.locator("#temporary-password")).to_be_visible()
    page.goto(f"{live_server}/t/musashino/staff/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "staff-list-tablet")


def test_login_is_throttled_after_five_wrong_passwords(live_server, page, tenant, make_user):
    """Is the 6th wrong password for one account within 15 minutes refused with 429, whatever
    the password, on a Japanese page with a way back?"""
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    page.goto(f"{live_server}/login")
    for attempt in range(6):
        page.get_by_label("メールアドレス").fill(login.email)
        page.get_by_label("パスワード").fill(f"wrong password {attempt}")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="ログイン").click()
        assert answer.value.status == (401 if attempt < 5 else 429)
    expect(page.get_by_role("heading", name=re.compile("操作が多すぎます"))).to_be_visible()
    expect(page.get_by_role("link", name="ホームへ戻る")).to_be_visible()
    right = page.request.post(f"{live_server}/login",
                              form={"email": login.email, "password": login.password})
    assert right.status == 429
