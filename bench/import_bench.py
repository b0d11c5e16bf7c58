"""Times a CSV register import (Shift_JIS, Japanese headers) through the app: dry run, create, update.

    .venv/bin/python bench/import_bench.py --rows 10000

Uses DATABASE_URL when set (a fresh tenant in that database, left in place); otherwise a throwaway
PostgreSQL database on 127.0.0.1 that is created, migrated and dropped again.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from flask_migrate import upgrade

from mimamori.extensions import db
from tenants.services import staff, tokens
from wsgi import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers
from tests.databases import throwaway_postgres

ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HEADER = ("管理番号,氏名,フリガナ,生年月日,電話番号,連絡方法,見守り設定,グループ,住所,備考,"
          "緊急連絡先氏名,緊急連絡先電話番号,続柄")
FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("髙橋", "タカハシ"), ("田中", "タナカ"),
          ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
          ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ")]
GIVEN = [("花子", "ハナコ"), ("一郎", "イチロウ"), ("幸子", "サチコ"), ("清", "キヨシ"),
         ("和子", "カズコ"), ("茂", "シゲル"), ("節子", "セツコ"), ("勇", "イサム"),
         ("久子", "ヒサコ"), ("正男", "マサオ")]
RELATIONS = ["長男", "長女", "次男", "妻", "民生委員", "ケースワーカー", "近所の方"]
POLICIES = ["毎日9時", "毎日18時"]
GROUPS = ["緑町サロン", "中町地区", "吉祥寺東町", "境南町", "関前地区"]


@contextmanager
def database() -> Iterator[str | None]:
    """None when DATABASE_URL names the database; else a throwaway one's URL, dropped afterwards."""
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    with throwaway_postgres(ADMIN_URL, "mimamori_bench") as url:
        yield url


def register_csv(rows: int, rng: random.Random, phone_prefix: str = "090") -> bytes:
    """A register as a city exports it from Excel: Shift_JIS (CP932), CRLF, era birth dates."""
    lines = [HEADER]
    for index in range(rows):
        family, family_kana = rng.choice(FAMILY)
        given, given_kana = rng.choice(GIVEN)
        showa_year, month, day = rng.randint(2, 30), rng.randint(1, 12), rng.randint(1, 28)
        birth = rng.choice([f"昭和{showa_year}年{month}月{day}日", f"S{showa_year}.{month}.{day}",
                            f"{1925 + showa_year}/{month}/{day}"])
        groups = "|".join(rng.sample(GROUPS, rng.randint(0, 2)))
        note = rng.choice(["", "", "要介護1", "補聴器使用、電話は大きな声で"])
        lines.append(",".join([
            f"M{index:06d}", f"{family} {given}", f"{family_kana} {given_kana}", birth,
            f"{phone_prefix}-{2000 + index // 10000}-{index % 10000:04d}",
            rng.choice(["LINE|SMS|電話", "電話", "SMS|音声", ""]), rng.choice(POLICIES), groups,
            f"東京都武蔵野市緑町{rng.randint(1, 3)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}", note,
            f"{family} {rng.choice(GIVEN)[0]}", f"080-{rng.randint(1000, 9999)}-{index % 10000:04d}",
            rng.choice(RELATIONS),
        ]))
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def tenant_client(client: FlaskClient, app: Any) -> dict[str, str]:
    """Headers of a fresh tenant's token, with its check policies and groups made via the API."""
    with app.app_context():
        user = staff.create_operator(f"bench-{uuid.uuid4().hex[:8]}@example.jp", "bench password 1")
        _, operator_token = tokens.issue(None, "bench", user_id=user.id)
        db.session.commit()
    operator = {"Authorization": f"Bearer {operator_token}"}
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    tenant = client.post("/api/v1/tenants", json={"slug": slug, "name": "ベンチ市"}, headers=operator)
    token = client.post(f"/api/v1/tenants/{tenant.get_json()['id']}/tokens", json={},
                        headers=operator).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for name in POLICIES:
        client.post("/api/v1/check-policies", headers=headers, json={
            "name": name, "schedule": {"freq": "daily", "interval": 1, "time": name[2:-1] + ":00"}})
    for name in GROUPS:
        client.post("/api/v1/groups", headers=headers, json={"name": name})
    return headers


def timed_import(client: FlaskClient, headers: dict[str, str], body: bytes, label: str,
                 rows: int, dry_run: bool = False) -> None:
    started = time.perf_counter()
    response = client.post("/api/v1/residents/import" + ("?dry_run=true" if dry_run else ""),
                           data=body, headers={**headers, "Content-Type": "text/csv"})
    elapsed = time.perf_counter() - started
    result = response.get_json()
    if response.status_code != 200:
        raise SystemExit(f"{label}: HTTP {response.status_code}: {result.get('detail')} "
                         f"{result.get('errors', [])[:5]}")
    print(f"{label:<22} {elapsed:6.2f} s  {rows / elapsed:8.0f} rows/s  "
          f"(created {result['created']}, updated {result['updated']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    body = register_csv(args.rows, rng)
    changed = register_csv(args.rows, random.Random(args.seed), phone_prefix="080")
    print(f"{args.rows} rows, {len(body) / 1e6:.1f} MB of Shift_JIS CSV")
    with database() as url, tempfile.TemporaryDirectory() as instance:
        overrides: dict[str, Any] = {"TESTING": True}
        if url:
            overrides["SQLALCHEMY_DATABASE_URI"] = url
        app = create_app(overrides, instance_path=instance)
        with app.app_context():
            upgrade()
        client = app.test_client()
        headers = tenant_client(client, app)
        timed_import(client, headers, body, "dry run (all new)", args.rows, dry_run=True)
        timed_import(client, headers, body, "import (create)", args.rows)
        timed_import(client, headers, body, "re-import, unchanged", args.rows)
        timed_import(client, headers, changed, "re-import, new phones", args.rows)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
