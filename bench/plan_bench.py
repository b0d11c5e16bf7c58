"""Times the clock's planning pass for a large tenant: checks and delivery rows for one morning.

    .venv/bin/python bench/plan_bench.py --residents 100000

A throwaway PostgreSQL database on 127.0.0.1 and Redis database 9 are used and emptied; the
tenant is a sandbox, so nothing is sent — this measures `tick` alone (the planner, the delivery
rows and the queueing), not the providers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import redis
from flask_migrate import upgrade
from sqlalchemy import func, insert, select

from mimamori.extensions import db
from tenants.models import Check, CheckPolicy, Delivery, Resident, Tenant
from tenants.tenancy import bind_tenant
from worker.clock import tick
from wsgi import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers
from tests.databases import throwaway_postgres

ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
TOKYO = ZoneInfo("Asia/Tokyo")


def seed(residents: int) -> int:
    tenant = Tenant(slug="bench", name="ベンチ市")
    db.session.add(tenant)
    db.session.flush()
    with bind_tenant(tenant.id):
        policy = CheckPolicy(name="毎日9時", schedule={"freq": "daily", "time": "09:00"},
                             rrule="FREQ=DAILY;INTERVAL=1;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
                             starts_on=datetime(2030, 3, 1).date(), response_window_minutes=60,
                             reminder_after_minutes=30)
        db.session.add(policy)
        db.session.flush()
        rows = []
        for n in range(residents):
            line = n % 10 < 8  # mostly LINE, some SMS and voice
            rows.append({"tenant_id": tenant.id, "name": f"住民 {n}", "check_policy_id": policy.id,
                         "line_user_id": f"U{n:032x}" if line else None,
                         "phone": f"+8190{n:08d}", "link_code": f"{n % 1_000_000:06d}",
                         "channels": ["line", "sms", "voice"] if line else ["sms", "voice"],
                         "policy_assigned_at": datetime(2030, 3, 1, tzinfo=TOKYO)})
        for start in range(0, len(rows), 10_000):
            db.session.execute(insert(Resident), rows[start:start + 10_000])
        db.session.commit()
    return tenant.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100_000)
    args = parser.parse_args()
    with throwaway_postgres(ADMIN_URL, "mimamori_bench") as database_url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": REDIS_URL},
                         instance_path=tempfile.mkdtemp())
        redis.Redis.from_url(REDIS_URL).flushdb()
        try:
            with app.app_context():
                measure(args.residents)
        finally:
            redis.Redis.from_url(REDIS_URL).flushdb()


def measure(residents: int) -> None:
    """Seed, then time the morning's tick and a second one in the same minute."""
    upgrade()
    started = time.perf_counter()
    tenant_id = seed(residents)
    print(f"seeded {residents} residents in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    report = tick(datetime(2030, 4, 1, 9, 0, tzinfo=TOKYO))
    elapsed = time.perf_counter() - started
    with bind_tenant(tenant_id):
        counts = (db.session.scalar(select(func.count(Check.id))),
                  db.session.scalar(select(func.count(Delivery.id))))
    print(f"tick planned {report.checks_created} checks, {counts[1]} deliveries, "
          f"queued {report.enqueued} in {elapsed:.2f} s "
          f"({report.checks_created / elapsed:,.0f} checks/s); checks in db: {counts[0]}")
    started = time.perf_counter()
    again = tick(datetime(2030, 4, 1, 9, 0, 30, tzinfo=TOKYO))
    print(f"a second tick in the same minute created {again.checks_created} checks "
          f"in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
