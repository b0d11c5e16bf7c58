"""The demo tenant `mimamori dev` seeds: a sandbox city with a policy, a chain, groups and residents.

Running it again is safe. The tenant and its sample data are created only when no tenant `demo`
exists, so anything changed while trying it out survives a restart. The demo operator and tenant
admin accounts are created when missing; an existing account keeps its password (only a hash is
stored, so it cannot be shown again) unless `reset_passwords` asks for new ones. Each run issues a
fresh operator token and tenant token, because a token too is shown only once; older tokens stay
valid so scripts written against them keep working.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from mimamori.extensions import db
from schemas.groups import GroupIn
from schemas.policies import AlertChainIn, CheckPolicyIn, schedule_as_dict
from schemas.residents import ResidentIn
from schemas.tenants import TenantIn
from tenants.models import Resident, User
from tenants.models.staff import OPERATOR
from tenants.services import audit, groups, policies, residents, staff, tenants, tokens
from tenants.tenancy import bind_tenant

DEMO_SLUG = "demo"
OPERATOR_EMAIL = "operator@example.jp"
ADMIN_EMAIL = "admin@demo.example.jp"
TOKEN_NAME = "mimamori dev"

TENANT = {
    "slug": DEMO_SLUG,
    "name": "見守り市 (デモ)",
    "kind": "municipality",
    "timezone": "Asia/Tokyo",
    "on_duty": [{"name": "高齢福祉課 当番", "phone": "0422-60-1800"}],
}
CHAIN = {
    "name": "標準",
    "steps": [
        {"after_minutes": 0, "target": "resident", "channel": "voice"},
        {"after_minutes": 30, "target": "contacts", "priority": 1, "channel": "sms"},
        {"after_minutes": 60, "target": "contacts"},
        {"after_minutes": 90, "target": "staff"},
    ],
}
POLICY = {
    "name": "毎日9時",
    "schedule": {"freq": "daily", "interval": 1, "time": "09:00"},
    "reminder_after_minutes": 30,
    "response_window_minutes": 60,
}
AREA_GROUP = {"name": "中町一丁目", "kind": "area", "leader_name": "田村 和子 (民生委員)",
              "leader_phone": "090-3456-7801"}
COMMUNITY_GROUP = {"name": "つながりサロン中町", "kind": "community"}
# The resident who leads the community group: its members check on each other.
COMMUNITY_LEADER = "鈴木 正男"

COMMISSIONER = {"name": "田村 和子", "relation": "welfare_commissioner", "phone": "090-3456-7801",
                "priority": 2}
# (name, kana, birth date, phone, channels or None for the default order, groups, contacts)
RESIDENTS: list[tuple[str, str, str, str, list[str] | None, tuple[str, ...], list[dict[str, Any]]]] = [
    ("佐藤 ハル", "サトウ ハル", "1936-05-12", "090-1234-5601", None, ("area",), [
        {"name": "佐藤 一郎", "relation": "relative", "relation_note": "長男",
         "phone": "080-2345-6701", "priority": 1},
        COMMISSIONER,
    ]),
    ("鈴木 正男", "スズキ マサオ", "1938-11-03", "090-1234-5602", None, ("area", "community"), [
        {"name": "鈴木 美加", "relation": "relative", "relation_note": "長女",
         "phone": "090-2345-6702", "priority": 1},
    ]),
    ("高橋 キヨ", "タカハシ キヨ", "1934-02-20", "090-1234-5603", None, ("community",), [
        {"name": "山口 修", "relation": "case_worker", "relation_note": "地域包括支援センター",
         "phone": "0422-60-1801", "channels": ["voice"], "priority": 1},
    ]),
    ("田中 トシ子", "タナカ トシコ", "1941-07-07", "090-1234-5604", None, ("area", "community"), [
        {"name": "田中 健二", "relation": "relative", "relation_note": "次男",
         "phone": "080-2345-6704", "priority": 1},
        {"name": "中村 恵子", "relation": "neighbour", "phone": "090-2345-6714", "priority": 2},
    ]),
    ("伊藤 清", "イトウ キヨシ", "1939-09-15", "090-1234-5605", None, ("community",), [
        {"name": "伊藤 由美", "relation": "relative", "relation_note": "長女",
         "phone": "090-2345-6705", "priority": 1},
    ]),
    ("渡辺 フミ", "ワタナベ フミ", "1943-01-28", "090-1234-5606", ["sms", "voice"], ("area",), [
        {"name": "渡辺 誠", "relation": "relative", "relation_note": "甥",
         "phone": "080-2345-6706", "priority": 1},
        COMMISSIONER,
    ]),
    ("山本 勝", "ヤマモト マサル", "1945-04-10", "090-1234-5607", None, ("area",), [
        {"name": "山本 和也", "relation": "relative", "relation_note": "長男",
         "phone": "090-2345-6707", "priority": 1},
    ]),
    ("小林 ヨシエ", "コバヤシ ヨシエ", "1932-12-01", "0422-51-2308", ["voice"], ("community",), [
        {"name": "小林 隆", "relation": "relative", "relation_note": "次男",
         "phone": "080-2345-6708", "priority": 1},
        {"name": "山口 修", "relation": "case_worker", "relation_note": "地域包括支援センター",
         "phone": "0422-60-1801", "channels": ["voice"], "priority": 2},
    ]),
]


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    password: str | None  # None: the account existed and kept its password


@dataclass(frozen=True)
class DemoLogin:
    """What `mimamori dev` prints: where to sign in and with what."""

    tenant_id: int
    tenant_slug: str
    tenant_name: str
    tenant_created: bool
    residents: int
    accounts: tuple[DemoAccount, ...]
    operator_token: str
    tenant_token: str


def _seed_samples() -> int:
    """The chain, policy, groups and residents of the bound demo tenant; returns the resident count."""
    chain = policies.create_chain(AlertChainIn().load(CHAIN))
    policy_data = CheckPolicyIn().load({**POLICY, "alert_chain_id": chain.id})
    policy = policies.create_policy(policy_data, schedule_as_dict(policy_data["schedule"]))
    group_ids = {"area": groups.create_group(GroupIn().load(AREA_GROUP)).id}
    community = groups.create_group(GroupIn().load(COMMUNITY_GROUP))
    group_ids["community"] = community.id
    leader_id = None
    for name, kana, birth, phone, channels, member_of, contacts in RESIDENTS:
        # Through the API's schema, so phones, kana and dates are normalised as staff input is.
        data = ResidentIn().load({
            "name": name, "name_kana": kana, "birth_date": birth, "phone": phone,
            "channels": channels, "check_policy_id": policy.id,
            "group_ids": [group_ids[g] for g in member_of], "contacts": contacts,
        })
        resident = residents.create_resident(data)
        if name == COMMUNITY_LEADER:
            leader_id = resident.id
    groups.update_group(community, {"leader_resident_id": leader_id})
    return len(RESIDENTS)


def _account(email: str, role: str, tenant_id: int | None, name: str,
             reset_password: bool) -> tuple[User, str | None]:
    """The demo account, and its new password when it was created or reset."""
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    if user is not None and not reset_password:
        return user, None
    password = secrets.token_urlsafe(12)
    if user is None:
        user = staff.create_user(email, password, role, tenant_id, name=name)
    else:
        user.password_hash = staff.hash_password(password)
    return user, password


def seed_demo(reset_passwords: bool = False) -> DemoLogin:
    """Create the demo tenant if absent, make sure its accounts exist, and issue fresh tokens.

    Flushes but does not commit: the caller decides the transaction.
    """
    tenant = tenants.tenant_by_slug(DEMO_SLUG)
    created = tenant is None
    if tenant is None:
        # No provider credentials: the tenant uses the sandbox channel, nothing leaves the machine.
        tenant = tenants.create_tenant(TenantIn().load(TENANT))
        with bind_tenant(tenant.id):
            seeded = _seed_samples()
        audit.record("demo.seed", tenant_id=tenant.id, target=tenant, detail={"residents": seeded})
    with bind_tenant(tenant.id):
        count = db.session.scalar(select(func.count(Resident.id))) or 0
    operator, operator_password = _account(OPERATOR_EMAIL, OPERATOR, None, "デモ運営者",
                                           reset_passwords)
    admin, admin_password = _account(ADMIN_EMAIL, "admin", tenant.id, "デモ管理者", reset_passwords)
    operator_token, operator_plain = tokens.issue(None, TOKEN_NAME, user_id=operator.id)
    tenant_token, tenant_plain = tokens.issue(tenant.id, TOKEN_NAME, user_id=admin.id)
    for token in (operator_token, tenant_token):
        audit.record("token.issue", tenant_id=token.tenant_id, target=token,
                     detail={"via": "mimamori dev"})
    return DemoLogin(
        tenant_id=tenant.id, tenant_slug=tenant.slug, tenant_name=tenant.name,
        tenant_created=created, residents=count,
        accounts=(DemoAccount(OPERATOR, operator.email, operator_password),
                  DemoAccount("admin", admin.email, admin_password)),
        operator_token=operator_plain, tenant_token=tenant_plain,
    )
