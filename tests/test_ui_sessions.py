"""Dashboard sessions and sign-in throttling: sign-out ends the session on the server, a city's
staff behind one gateway are throttled per account, and X-Forwarded-For is believed only from
trusted proxies."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from mimamori.extensions import db
from mimamori.proxies import client_address
from mimamori.settings import SettingsError, load_settings
from tenants.models import StaffSession
from tests.fixtures.browser import PASSWORD, sign_in

GATEWAY = "192.0.2.10"  # the city's LGWAN gateway: every member of staff arrives from here


def _csrf_token(client, path="/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                     r'name="csrf_token" value="([^"]+)"', html).group(1, 2)


def _token(client, path="/login"):
    first, second = _csrf_token(client, path)
    return first or second


def _login(client, email, password, **environ):
    token = _token(client)
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password},
                       **environ)


def _client(app, address=GATEWAY, **headers):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    for name, value in headers.items():
        client.environ_base[f"HTTP_{name.upper()}"] = value
    return client


def _copied_cookie(client):
    return client.get_cookie("session").value


def _with_cookie(app, value):
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief


def test_a_cookie_copied_before_sign_out_opens_nothing_afterwards(live_server, page, tenant,
                                                                     make_user, chromium):
    """After ログアウト, does a copy of the session cookie taken before still open the dashboard?"""
    sign_in(page, live_server, make_user("hoken@city.musashino.jp", "staff", tenant.id))
    expect(page.get_by_role("heading", name="きょうの安否確認")).to_be_visible()
    copied = [c for c in page.context.cookies() if c["name"] == "session"]
    assert copied

    other = chromium.new_context(locale="ja-JP")
    try:
        other.add_cookies(copied)
        thief = other.new_page()
        thief.goto(f"{live_server}/t/musashino/")
        expect(thief.get_by_role("heading", name="きょうの安否確認")).to_be_visible()

        page.get_by_role("button", name="ログアウト").click()
        expect(page).to_have_url(re.compile(r"/login$"))

        thief.goto(f"{live_server}/t/musashino/")
        expect(thief).to_have_url(re.compile(r"/login\?next="))
        expect(thief.get_by_role("heading", name="ログイン")).to_be_visible()
    finally:
        other.close()


def test_a_password_change_signs_out_the_other_browsers(clean_app, tenant, make_user):
    """When someone changes their password, are their other signed-in browsers signed out,
    while the browser they changed it in stays signed in?"""
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    office, home = _client(clean_app), _client(clean_app)
    assert _login(office, login.email, PASSWORD).status_code == 302
    assert _login(home, login.email, PASSWORD).status_code == 302
    assert home.get("/t/musashino/").status_code == 200
    copied = _copied_cookie(office)

    new_password = "あたらしい合言葉 2026 冬"
    answer = office.post("/account/password", data={
        "csrf_token": _token(office, "/account/password"), "password": new_password,
        "confirm": new_password})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert office.get("/t/musashino/").status_code == 200
    assert home.get("/t/musashino/").status_code == 302
    assert _with_cookie(clean_app, copied).get("/t/musashino/").status_code == 302


def test_a_new_second_factor_signs_out_the_other_browsers(clean_app, tenant, make_user):
    """When an admin enrols an authenticator app, are browsers signed in without it signed out,
    while the one that enrolled stays signed in?"""
    login = make_user("admin@city.musashino.jp", "admin", tenant.id)
    office, elsewhere = _client(clean_app), _client(clean_app)
    assert _login(office, login.email, PASSWORD).status_code == 302
    assert _login(elsewhere, login.email, PASSWORD).status_code == 302
    html = office.get("/account/2fa").get_data(as_text=True)
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', html).group(1)
    answer = office.post("/account/2fa", data={"csrf_token": _token(office, "/account/2fa"),
                                                "code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 302
    assert office.get("/t/musashino/").status_code == 200
    assert elsewhere.get("/t/musashino/").status_code == 302


def test_a_session_ends_when_idle_or_too_old(clean_app, tenant, make_user):
    """Does a session left idle past SESSION_IDLE_MINUTES, or older than SESSION_MAX_HOURS,
    lead back to the sign-in page?"""
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    idle, old = _client(clean_app), _client(clean_app)
    assert _login(idle, login.email, PASSWORD).status_code == 302
    assert _login(old, login.email, PASSWORD).status_code == 302
    config = clean_app.config
    with clean_app.app_context():
        first, second = db.session.scalars(select(StaffSession).order_by(
            StaffSession.created_at)).all()
        first_id, second_id = first.id, second.id
        away = timedelta(minutes=config["SESSION_IDLE_MINUTES"], seconds=1)
        db.session.execute(update(StaffSession).where(StaffSession.id == first.id).values(
            last_seen_at=first.last_seen_at - away))
        # Busy all day long, but signed in longer ago than a session may last.
        db.session.execute(update(StaffSession).where(StaffSession.id == second.id).values(
            created_at=second.created_at - timedelta(hours=config["SESSION_MAX_HOURS"])))
        db.session.commit()
    assert idle.get("/t/musashino/").status_code == 302
    assert old.get("/t/musashino/").status_code == 302
    # Signing in again forgets the sessions that can no longer be used, addresses and all.
    assert _login(_client(clean_app), login.email, PASSWORD).status_code == 302
    with clean_app.app_context():
        kept = set(db.session.scalars(select(StaffSession.id)))
    assert second_id not in kept and first_id in kept and len(kept) == 2


def test_one_mistyping_person_does_not_lock_out_a_colleague(clean_app, tenant, make_user):
    """Behind one gateway, when one person mistypes their password until throttled, can a
    colleague still sign in, while the mistyping account waits even with the right password?"""
    mistyping = make_user("tanaka@city.musashino.jp", "staff", tenant.id)
    colleague = make_user("suzuki@city.musashino.jp", "staff", tenant.id)
    client = _client(clean_app)
    for attempt in range(5):
        assert _login(client, mistyping.email, f"wrong {attempt}").status_code == 401
    refused = _login(client, mistyping.email, PASSWORD)
    assert refused.status_code == 429
    assert "しばらく" in refused.get_data(as_text=True)
    assert _login(_client(clean_app), colleague.email, PASSWORD).status_code == 302


def test_throttling_says_nothing_about_whether_an_address_exists(clean_app, tenant, make_user):
    """Is an unknown e-mail address throttled exactly like a known one?"""
    known = make_user("tanaka@city.musashino.jp", "staff", tenant.id)
    answers = {}
    for email in (known.email, "nobody@city.musashino.jp"):
        client = _client(clean_app)
        answers[email] = [_login(client, email, f"wrong {n}").status_code for n in range(6)]
    assert answers[known.email] == answers["nobody@city.musashino.jp"] == [401] * 5 + [429]


@pytest.fixture
def address_bound(clean_app, monkeypatch):
    """A per-address bound of 3 failures, to reach it in a few requests."""
    monkeypatch.setitem(clean_app.config, "LOGIN_FAILURES_PER_ADDRESS", "3 per 15 minutes")
    return 3


def _fail_from(app, address, forwarded=None, email=None, n=0):
    headers = {"X_FORWARDED_FOR": forwarded} if forwarded else {}
    return _login(_client(app, address, **headers), email or f"person{n}@example.jp",
                  "wrong password").status_code


def test_addresses_have_a_bound_of_their_own(clean_app, address_bound):
    """Are failures for many different accounts from one address stopped at the address bound?"""
    codes = [_fail_from(clean_app, GATEWAY, n=n) for n in range(address_bound + 1)]
    assert codes == [401] * address_bound + [429]
    assert _fail_from(clean_app, "192.0.2.99", n=99) == 401  # another address is not affected


def test_forwarded_for_from_an_untrusted_peer_is_ignored(clean_app, address_bound):
    """Can a client dodge the address bound by sending a different X-Forwarded-For each time?"""
    codes = [_fail_from(clean_app, GATEWAY, f"198.51.100.{n}", n=n)
             for n in range(address_bound + 1)]
    assert codes == [401] * address_bound + [429]


def test_forwarded_for_from_a_trusted_proxy_is_used(clean_app, address_bound, monkeypatch):
    """Behind our own proxy, is each client counted by its forwarded address, and can a client
    not pick that address by writing its own X-Forwarded-For in front?"""
    monkeypatch.setitem(clean_app.config, "TRUSTED_PROXIES", ("10.0.0.0/8",))
    proxy = "10.1.2.3"
    codes = [_fail_from(clean_app, proxy, "198.51.100.7", n=n) for n in range(address_bound)]
    assert codes == [401] * address_bound
    assert _fail_from(clean_app, proxy, "198.51.100.8", n=10) == 401  # someone else
    assert _fail_from(clean_app, proxy, "198.51.100.7", n=11) == 429
    # The proxy appends what it saw; a forged address in front of it changes nothing.
    assert _fail_from(clean_app, proxy, "203.0.113.50, 198.51.100.7", n=12) == 429


def test_the_session_records_the_forwarded_client_address(clean_app, tenant, make_user,
                                                          monkeypatch):
    """Does a session signed in through a trusted proxy record the client's address, and one
    signed in directly the peer's, whatever X-Forwarded-For says?"""
    monkeypatch.setitem(clean_app.config, "TRUSTED_PROXIES", ("10.0.0.0/8", "fd00::/8"))
    login = make_user("hoken@city.musashino.jp", "staff", tenant.id)
    through = _client(clean_app, "10.0.0.5", X_FORWARDED_FOR="198.51.100.7, 10.0.0.9")
    direct = _client(clean_app, "203.0.113.9", X_FORWARDED_FOR="198.51.100.7")
    assert _login(through, login.email, PASSWORD).status_code == 302
    assert _login(direct, login.email, PASSWORD).status_code == 302
    with clean_app.app_context():
        addresses = db.session.scalars(select(StaffSession.ip).order_by(
            StaffSession.created_at)).all()
    assert addresses == ["198.51.100.7", "203.0.113.9"]


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("203.0.113.9", "198.51.100.7", "203.0.113.9"),           # untrusted peer: header ignored
    ("10.0.0.5", "198.51.100.7", "198.51.100.7"),             # our proxy: its hop is believed
    ("10.0.0.5", "198.51.100.7, 10.0.0.9", "198.51.100.7"),   # two proxies of ours
    ("10.0.0.5", "1.2.3.4, 198.51.100.7", "198.51.100.7"),    # a forged left part is ignored
    ("10.0.0.5", "not-an-address", "10.0.0.5"),               # garbage: stop at our proxy
    ("10.0.0.5", None, "10.0.0.5"),
    ("fd00::1", "2001:db8::7", "2001:db8::7"),
])
def test_the_client_is_the_right_most_untrusted_hop(peer, forwarded, client):
    """Is the client's address the right-most hop that is not one of our proxies?"""
    assert client_address(peer, forwarded, ("10.0.0.0/8", "fd00::/8")) == client


def test_trusted_proxies_and_session_timeouts_are_read_from_the_environment(tmp_path):
    """Are TRUSTED_PROXIES (CIDRs), SESSION_IDLE_MINUTES and SESSION_MAX_HOURS read, with no
    proxy trusted by default, and a mistyped value refused at start-up rather than ignored?"""
    defaults = load_settings(tmp_path, {})
    assert (defaults.trusted_proxies, defaults.session_idle_minutes,
            defaults.session_max_hours) == ((), 120, 12)
    given = load_settings(tmp_path, {"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1,fd00::/8",
                                     "SESSION_IDLE_MINUTES": "30", "SESSION_MAX_HOURS": "9"})
    assert given.trusted_proxies == ("10.0.0.0/8", "192.168.1.1/32", "fd00::/8")
    assert given.flask_config()["SESSION_IDLE_MINUTES"] == 30
    for env in ({"TRUSTED_PROXIES": "10.0.0.0/33"}, {"TRUSTED_PROXIES": "gateway"},
                {"SESSION_IDLE_MINUTES": "0"}, {"SESSION_MAX_HOURS": "twelve"}):
        with pytest.raises(SettingsError):
            load_settings(tmp_path, env)
