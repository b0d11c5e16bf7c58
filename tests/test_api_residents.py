"""Staff register residents (利用者) with contacts, find them again, change and pause them."""

from __future__ import annotations

from datetime import date, timedelta

from tests.factories import created, resident_body


def test_resident_round_trip_with_e164_phones(tenant):
    """Does a resident come back as given, with phones in E.164 and a six-digit link code?"""
    body = created(tenant.api.post("/api/v1/residents", resident_body()))
    assert body["phone"] == "+819012345678"
    assert body["name"] == "山田 花子" and body["name_kana"] == "ヤマダ ハナコ"
    assert body["birth_date"] == "1940-04-01" and body["channels"] == ["line", "sms", "voice"]
    assert body["link_code"].isdigit() and len(body["link_code"]) == 6
    assert body["paused_until"] is None and body["check_policy_id"] is None
    assert body["contacts"][0]["phone"] == "+818012345678"
    assert tenant.api.get(f"/api/v1/residents/{body['id']}").get_json() == body


def test_japanese_input_forms_are_normalised(tenant):
    """Are full-width digits, hiragana kana and era birth dates understood?"""
    body = created(tenant.api.post("/api/v1/residents", resident_body(
        phone="０９０ー１２３４ー５６７８", name_kana="やまだ　はなこ", birth_date="昭和15年4月1日",
        name="山田　花子")))
    assert body["phone"] == "+819012345678"
    assert body["name_kana"] == "ヤマダ ハナコ"
    assert body["birth_date"] == "1940-04-01"
    assert body["name"] == "山田 花子"


def test_invalid_phone_is_422_naming_the_field(tenant):
    """Does a wrong phone number get a 422 that names `phone` (and the contact's), writing nothing?"""
    response = tenant.api.post("/api/v1/residents", resident_body(
        phone="03-123", contacts=[{"name": "某", "phone": "abc"}]))
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    errors = response.get_json()["errors"]
    assert "phone" in errors and "phone" in errors["contacts"]["0"]
    assert tenant.api.get("/api/v1/residents").get_json()["items"] == []


def test_sms_without_a_phone_is_refused(tenant):
    """Can a resident be set to SMS with no phone number? They could never be reached."""
    response = tenant.api.post("/api/v1/residents", resident_body(phone=None, channels=["sms"]))
    assert response.status_code == 422 and "phone" in response.get_json()["errors"]


def test_default_channels_follow_what_is_known(tenant):
    """With no channels given, does a resident with a phone get LINE then SMS then voice?"""
    body = created(tenant.api.post("/api/v1/residents", resident_body(channels=None, contacts=[
        {"name": "佐藤 次郎", "phone": "080-1111-2222"}])))
    assert body["channels"] == ["line", "sms", "voice"]
    assert body["contacts"][0]["channels"] == ["sms", "voice"]


def test_search_and_cursor_pagination(tenant):
    """Can staff page through residents and find one by kana?"""
    for index, (name, kana) in enumerate([("鈴木 一", "スズキ ハジメ"), ("田中 二", "タナカ ジ"),
                                          ("高橋 三", "タカハシ サン")]):
        created(tenant.api.post("/api/v1/residents", resident_body(
            name=name, name_kana=kana, phone=f"090-1234-000{index}", contacts=[])))
    first = tenant.api.get("/api/v1/residents?limit=2").get_json()
    assert len(first["items"]) == 2 and first["next"]
    second = tenant.api.get(f"/api/v1/residents?limit=2&cursor={first['next']}").get_json()
    assert [r["name"] for r in second["items"]] == ["高橋 三"] and second["next"] is None
    found = tenant.api.get("/api/v1/residents?q=タナカ").get_json()["items"]
    assert [r["name"] for r in found] == ["田中 二"]
    assert tenant.api.get("/api/v1/residents?cursor=garbage").status_code == 422


def test_patch_and_contacts(tenant):
    """Can staff change a resident and manage their contacts one by one?"""
    resident = created(tenant.api.post("/api/v1/residents", resident_body()))
    path = f"/api/v1/residents/{resident['id']}"
    changed = tenant.api.patch(path, {"notes": "耳が遠い", "channels": ["voice"]})
    assert changed.status_code == 200 and changed.get_json()["channels"] == ["voice"]
    contact = created(tenant.api.post(f"{path}/contacts", {
        "name": "民生 委員", "relation": "welfare_commissioner", "phone": "0422-11-2233",
        "priority": 2}))
    assert contact["phone"] == "+81422112233"
    assert len(tenant.api.get(f"{path}/contacts").get_json()) == 2
    assert tenant.api.delete(f"{path}/contacts/{contact['id']}").status_code == 204
    assert len(tenant.api.get(path).get_json()["contacts"]) == 1
    assert tenant.api.delete(path).status_code == 204
    assert tenant.api.get(path).status_code == 404


def test_pause_until_the_day_checks_resume(tenant):
    """Does pausing a resident show `paused_until`, and can checks be resumed early?"""
    resident = created(tenant.api.post("/api/v1/residents", resident_body()))
    path = f"/api/v1/residents/{resident['id']}"
    until = (date.today() + timedelta(days=8)).isoformat()
    paused = tenant.api.post(f"{path}/pause", {"until": until, "reason": "入院"})
    assert paused.status_code == 200, paused.get_json()
    assert paused.get_json()["paused_until"] == until
    assert paused.get_json()["pauses"][0]["reason"] == "入院"
    overlap = tenant.api.post(f"{path}/pause", {"until": until})
    assert overlap.status_code == 409
    past = tenant.api.post(f"{path}/pause", {"until": "2000-01-01"})
    assert past.status_code == 422 and "until" in past.get_json()["errors"]
    assert tenant.api.delete(f"{path}/pause").status_code == 204
    assert tenant.api.get(path).get_json()["paused_until"] is None


def test_duplicate_line_user_id_is_refused(tenant):
    """Can two residents claim the same LINE account?"""
    line_id = "U" + "a" * 32
    created(tenant.api.post("/api/v1/residents", resident_body(line_user_id=line_id)))
    again = tenant.api.post("/api/v1/residents", resident_body(line_user_id=line_id,
                                                               name="別人"))
    assert again.status_code == 409 and "line_user_id" in again.get_json()["errors"]


def test_groups_and_members(tenant):
    """Can staff form a つながり group with a leader and see its members?"""
    leader = created(tenant.api.post("/api/v1/residents", resident_body(name="班長")))
    member = created(tenant.api.post("/api/v1/residents", resident_body(name="会員")))
    group = created(tenant.api.post("/api/v1/groups", {
        "name": "つながり北町", "kind": "community", "leader_resident_id": leader["id"],
        "member_ids": [leader["id"], member["id"]]}))
    assert group["member_ids"] == sorted([leader["id"], member["id"]])
    assert tenant.api.get(f"/api/v1/residents/{member['id']}").get_json()["group_ids"] == [
        group["id"]]
    listed = tenant.api.get(f"/api/v1/residents?group_id={group['id']}").get_json()["items"]
    assert len(listed) == 2
    unknown = tenant.api.post("/api/v1/groups", {"name": "x", "member_ids": [9999]})
    assert unknown.status_code == 422 and "member_ids" in unknown.get_json()["errors"]
    dup = tenant.api.post("/api/v1/groups", {"name": "つながり北町"})
    assert dup.status_code == 409
