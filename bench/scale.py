"""Scale benchmark: a morning round, webhook ingest and escalation of a large tenant, end to end.

    .venv/bin/python bench/scale.py --residents 100000 --runs 3 --latency-ms 50

Seeds a throwaway PostgreSQL database on 127.0.0.1 (with a private Valkey server, or the empty
Redis database given with --redis-url) with a tenant of N residents (mostly LINE, a few SMS and
voice), starts the LINE and Twilio fakes in their own process with the given latency and the
providers' rate limits, and runs the real processes: `mimamori worker` (2 by default), `mimamori
tick --at ...` and `mimamori serve` (gunicorn). Each run measures, and the medians are printed as
one table:

- round: from `tick` at 09:00 to the last send the fakes accepted (every check sent exactly once,
  no rate-limit violation);
- ingest: OK postbacks as signed LINE webhooks of 100 events each, events/s and p99 response time;
- escalation: a second tenant's missed checks at window end, until every first alert-chain step
  is sent;
- peak memory (VmHWM) of the web, worker and tick processes;
- the same round done the naive way (one job and one push per resident), measured on a smaller
  tenant and scaled to N, as a baseline ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import queue
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the app and the fakes, whatever the installed package lists

import psycopg  # noqa: E402
import redis  # noqa: E402
from rq import Queue, Worker  # noqa: E402
from rq.registry import FailedJobRegistry  # noqa: E402

from tests.databases import private_valkey, throwaway_postgres  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL")
MIMAMORI = shutil.which("mimamori", path=str(Path(sys.executable).parent)) or "mimamori"
TOKYO = ZoneInfo("Asia/Tokyo")
DAY = "2030-04-01"
ROUND_AT = datetime.fromisoformat(f"{DAY}T09:00:00").replace(tzinfo=TOKYO)
WINDOW_END = ROUND_AT + timedelta(minutes=60)
OCCURRENCE = "2030-04-01T00:00Z"  # 09:00 in Tokyo, as the planner keys it
HISTORY_AT = ROUND_AT - timedelta(days=1)
HISTORY_OCCURRENCE = "2030-03-31T00:00Z"
SMS_RATE = 10  # messages/s per account, as the engine paces Twilio
PENDING = ("queued", "retry", "sending")

# LINE user ids by tenant, apart so that one fake's counts never mix two tenants' people.
MAIN_USERS, ESCALATION_USERS, CONTACT_USERS, NAIVE_USERS = 0, 20_000_000, 30_000_000, 40_000_000


class BenchError(RuntimeError):
    """A run that did not do what it should (a check not sent, a violation, a stuck queue)."""


def user_id(n: int) -> str:
    return f"U{n:032x}"


# The machine and its processes

def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": len(os.sched_getaffinity(0)), "memory_gib": round(total_kb / 1024 ** 2, 1),
            "cpu": model, "python": platform.python_version()}


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The provider fakes, in a process of their own so they take no GIL from what is measured

@dataclass(frozen=True)
class FakeOptions:
    latency_ms: float
    line_tokens: tuple[str, ...]
    twilio_accounts: tuple[tuple[str, str], ...]
    calls_per_second: float


def _serve_line(conn: Connection, options: FakeOptions) -> None:
    from tests.fakes.line import MULTICAST, PUSH, REPLY, LineFake

    line = LineFake(options.line_tokens, latency_ms=options.latency_ms)  # LINE's 200/s, 2,000/s
    conn.send(line.url)
    while True:
        command, users = conn.recv()
        if command == "stop":
            line.stop()
            conn.send(None)
            return
        sends = line.accepted(PUSH) + line.accepted(MULTICAST)
        with line.lock:
            conflicts = sum(1 for r in line.requests if r.status == 409)
            throttled = Counter(r.path.rsplit("/", 1)[-1] for r in line.requests if r.status == 429)
        conn.send({
            "line_last": max((r.at for r in sends), default=None),
            "multicasts": len(line.accepted(MULTICAST)), "pushes": len(line.accepted(PUSH)),
            "replies": len(line.accepted(REPLY)), "conflicts": conflicts,
            "line_received": Counter(len(line.delivered_to(u)) for u in users),
            "violations": line.violations, "throttled": throttled,
        })


def _serve_twilio(conn: Connection, options: FakeOptions) -> None:
    from tests.fakes.twilio import TwilioFake

    twilio = TwilioFake(dict(options.twilio_accounts), latency_ms=options.latency_ms,
                        message_rate=SMS_RATE, call_rate=options.calls_per_second)
    conn.send(twilio.url)
    while True:
        command, users = conn.recv()
        if command == "stop":
            twilio.stop()
            conn.send(None)
            return
        with twilio.lock:
            created = [r for r in twilio.requests if r.method == "POST" and r.status == 201]
            throttled = Counter(r.path.rsplit("/", 1)[-1] for r in twilio.requests if r.status == 429)
            sms = Counter(m.to for m in twilio.messages)
            calls = Counter(c.to for c in twilio.calls)
        conn.send({
            "twilio_last": max((r.at for r in created), default=None),
            "sms_received": Counter(sms[p] for p in users.get("sms", ())),
            "calls_received": Counter(calls[p] for p in users.get("voice", ())),
            "violations": twilio.violations, "throttled": throttled,
            "call_times": [(r.at, r.status) for r in twilio.requests if r.path.endswith("Calls.json")],
        })


class Fakes:
    """The LINE and the Twilio fake, each in a process of its own (neither slows the other's
    clock); `stats()` reads what they received."""

    def __init__(self, options: FakeOptions) -> None:
        context = multiprocessing.get_context("spawn")
        self._children = []
        for serve in (_serve_line, _serve_twilio):
            conn, child = context.Pipe()
            process = context.Process(target=serve, args=(child, options), daemon=True)
            process.start()
            self._children.append((conn, process))
        self.line_url, self.twilio_url = (conn.recv() for conn, _ in self._children)

    def stats(self, users: dict[str, list[str]] | None = None) -> dict[str, Any]:
        users = users or {}
        (line, _), (twilio, _) = self._children
        line.send(("stats", users.get("line", [])))
        twilio.send(("stats", {k: v for k, v in users.items() if k != "line"}))
        found, more = line.recv(), twilio.recv()
        return {**found, **more, "violations": found["violations"] + more["violations"],
                "violations_by": dict(found["throttled"] + more["throttled"])}

    def stop(self) -> None:
        for conn, process in self._children:
            conn.send(("stop", None))
            conn.recv()
            process.join(10)


# The platform's processes

@dataclass
class Platform:
    """The settings every process gets, and the processes of one phase."""

    database_url: str
    redis_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def environment(self, fakes: Fakes, web_port: int) -> dict[str, str]:
        return {**self.env, "LINE_API_BASE_URL": fakes.line_url, "TWILIO_API_BASE_URL": fakes.twilio_url,
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}"}

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen([MIMAMORI, *args], env=env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process


def start_workers(platform_: Platform, env: dict[str, str], count: int,
                  redis_client: redis.Redis) -> list[subprocess.Popen[bytes]]:
    workers = [platform_.start(["worker"], env, f"worker{i}") for i in range(count)]
    deadline = time.monotonic() + 60
    while len(Worker.all(connection=redis_client)) < count:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise BenchError(f"workers did not start; see {platform_.workdir}/worker*.log")
        time.sleep(0.1)
    return workers


def start_web(platform_: Platform, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    web = platform_.start(["serve", "--port", str(port)], env, "web")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return web
        except OSError:
            if time.monotonic() > deadline or web.poll() is not None:
                raise BenchError(f"the web app did not start; see {platform_.workdir}/web.log") from None
            time.sleep(0.2)


def peak_mb(process: subprocess.Popen[bytes], with_children: bool = False) -> float:
    pids = [process.pid] + (children(process.pid) if with_children else [])
    return max(vm_hwm_mb(pid) for pid in pids)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a worker finishes its job, gunicorn its requests), then kill what is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_tick(platform_: Platform, env: dict[str, str],
             at: datetime) -> tuple[float, float, float, dict[str, Any]]:
    """`tick(at)` in a warm process of its own, as `mimamori scheduler` runs it.

    Returns when it started (time.time()), how long it took, its peak memory (MB) and its report."""
    log = (platform_.workdir / "tick.log").open("ab")
    process = subprocess.Popen([sys.executable, __file__, "--tick-at", at.isoformat()], env=env, cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    assert process.stdin is not None and process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        process.kill()
        raise BenchError(f"the tick process did not start; see {platform_.workdir}/tick.log")
    process.stdin.write(b"go\n")
    process.stdin.flush()
    output, _ = process.communicate()
    if process.returncode != 0:
        raise BenchError(f"tick failed; see {platform_.workdir}/tick.log")
    result = json.loads(output.decode().strip().splitlines()[-1])
    return result["started"], result["seconds"], result["peak_mb"], result["report"]


def tick_process(at: str) -> None:
    """The child of `run_tick`: load the app, say ready, tick on "go" and print what happened."""
    from dataclasses import asdict

    from worker.clock import tick
    from wsgi import create_app

    app = create_app()
    with app.app_context():
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        report = tick(datetime.fromisoformat(at))
        seconds = time.time() - started
    print(json.dumps({"started": started, "seconds": seconds, "peak_mb": vm_hwm_mb(os.getpid()),
                      "report": asdict(report)}), flush=True)


# The database, as the benchmark sees it (plain SQL: it only counts)

class Store:
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.conn.execute(sql, params).fetchone()[0]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def add_history(self) -> None:
        """Yesterday's round for every resident, as a tenant that has been running has: answered
        checks with their deliveries, and a resolved incident with its alert for one in fifty.

        Without it every run would start from empty tables, for which PostgreSQL plans the
        foreign-key checks of the new rows as sequential scans: ten times slower than the index
        lookups a running platform gets, and not what an operator sees."""
        self.conn.execute(
            "INSERT INTO checks (tenant_id, resident_id, policy_id, occurrence, scheduled_at, status, "
            "channel, window_ends_at, answered_at, answered_via, created_at) "
            "SELECT tenant_id, id, check_policy_id, %(occurrence)s, %(at)s, 'answered', channels->>0, "
            "%(at)s + interval '1 hour', %(at)s + interval '5 minutes', channels->>0, %(at)s "
            "FROM residents", {"occurrence": HISTORY_OCCURRENCE, "at": HISTORY_AT})
        self.conn.execute(
            "INSERT INTO deliveries (tenant_id, idempotency_key, purpose, recipient_type, recipient_id, "
            "channel, address, body, status, check_id, attempts, sent_at, created_at, updated_at) "
            "SELECT c.tenant_id, 'check:' || c.id || ':' || c.channel, 'check', 'resident', c.resident_id, "
            "c.channel, coalesce(r.line_user_id, r.phone), '', 'sent', c.id, 1, c.created_at, "
            "c.created_at, c.created_at FROM checks c JOIN residents r ON r.id = c.resident_id")
        self.conn.execute(
            "INSERT INTO incidents (tenant_id, check_id, resident_id, status, escalated, opened_at, "
            "resolved_at, outcome) SELECT tenant_id, id, resident_id, 'resolved', false, "
            "window_ends_at, window_ends_at + interval '2 hours', 'safe' FROM checks WHERE id % 50 = 0")
        self.conn.execute(
            "INSERT INTO deliveries (tenant_id, idempotency_key, purpose, recipient_type, recipient_id, "
            "channel, address, body, status, incident_id, attempts, sent_at, created_at, updated_at) "
            "SELECT tenant_id, 'alert:' || id, 'alert', 'staff', NULL, 'line', 'U0', '', 'sent', id, 1, "
            "opened_at, opened_at, opened_at FROM incidents")

    def reset(self, active_slug: str) -> None:
        """Forget what earlier runs did (yesterday's history stays); only the tenant named
        `active_slug` is ticked."""
        self.conn.execute("DELETE FROM checks WHERE occurrence <> %s", (HISTORY_OCCURRENCE,))
        self.conn.execute("DELETE FROM rounds")  # not TRUNCATE: its CASCADE would empty checks
        self.conn.execute("TRUNCATE webhook_events, inbound_messages")
        self.conn.execute("UPDATE tenants SET active = (slug = %s)", (active_slug,))
        self.conn.execute("VACUUM ANALYZE")

    def pending(self, tenant_id: int) -> int:
        return self.scalar("SELECT count(*) FROM deliveries WHERE tenant_id = %s AND status = ANY(%s)",
                           tenant_id, list(PENDING))


def wait_until_sent(store: Store, tenant_id: int, redis_client: redis.Redis, timeout: float) -> None:
    """Until no delivery of the tenant waits to be sent; a queue that stalls is an error."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    jobs = Queue("mimamori", connection=redis_client)
    while store.pending(tenant_id):
        failed = FailedJobRegistry(queue=jobs)
        if failed.count:
            job = jobs.fetch_job(failed.get_job_ids()[0])
            raise BenchError(f"a job failed: {job.latest_result().exc_string if job else '?'}"[-3000:])
        busy = jobs.count or any(w.get_state() == "busy" for w in Worker.all(connection=redis_client))
        if busy:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 5:
            left = store.rows("SELECT status, channel, left(coalesce(error, ''), 120), count(*) "
                              "FROM deliveries WHERE tenant_id = %s AND status = ANY(%s) "
                              "GROUP BY 1, 2, 3", tenant_id, list(PENDING))
            raise BenchError(f"deliveries left for the clock, the queue is idle: {left}")
        if time.monotonic() > deadline:
            raise BenchError(f"not sent within {timeout:.0f} s: {store.pending(tenant_id)} pending")
        time.sleep(0.1)


# Seeding

@dataclass(frozen=True)
class TenantSeed:
    slug: str
    id: int
    line_token: str
    line_secret: str
    twilio_sid: str
    twilio_token: str
    users: dict[str, list[str]]  # channel -> the LINE user ids or phones its checks go to


def mix(residents: int, sms_share: float, voice_share: float) -> dict[int, str]:
    """The first channel of every resident: mostly LINE, SMS and voice spread evenly among them."""
    def count(share: float) -> int:
        return max(1, round(residents * share)) if share > 0 else 0

    kinds = dict.fromkeys(range(residents), "line")
    voice, sms = count(voice_share), count(sms_share)
    for k in range(sms):
        kinds[int((k + 0.75) * residents / sms)] = "sms"
    for k in range(voice):
        kinds[int((k + 0.25) * residents / voice)] = "voice"
    return kinds


def seed_tenant(app: Any, slug: str, residents: int, first_user: int, sms_share: float,
                voice_share: float, calls_per_second: int, contacts: bool = False) -> TenantSeed:
    """A tenant with LINE and Twilio credentials, a 09:00 policy and its residents."""
    from sqlalchemy import insert, select

    from mimamori.extensions import db
    from tenants.models import AlertChain, AlertStep, CheckPolicy, Contact, Resident, Tenant
    from tenants.tenancy import bind_tenant

    seed = TenantSeed(slug, 0, f"line-token-{slug}", f"line-secret-{slug}",
                      "AC" + uuid.uuid4().hex, secrets.token_hex(16), {"line": [], "sms": [], "voice": []})
    with app.app_context():
        tenant = Tenant(slug=slug, name=f"ベンチ市 ({slug})", line_channel_secret=seed.line_secret,
                        line_channel_access_token=seed.line_token, twilio_account_sid=seed.twilio_sid,
                        twilio_auth_token=seed.twilio_token, twilio_from_number="+815012345678",
                        twilio_calls_per_second=calls_per_second, active=False)
        db.session.add(tenant)
        db.session.flush()
        with bind_tenant(tenant.id):
            chain = AlertChain(name="標準")
            db.session.add(chain)
            db.session.flush()
            db.session.add_all([
                AlertStep(chain_id=chain.id, position=0, after_minutes=0, target="contacts", priority=1,
                          channel="line"),
                AlertStep(chain_id=chain.id, position=1, after_minutes=60, target="staff")])
            policy = CheckPolicy(name="毎日9時", schedule={"freq": "daily", "interval": 1, "time": "09:00"},
                                 rrule="FREQ=DAILY;INTERVAL=1;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
                                 starts_on=datetime(2030, 3, 1).date(), response_window_minutes=60,
                                 reminder_after_minutes=None if contacts else 30,
                                 alert_chain_id=chain.id)
            db.session.add(policy)
            db.session.flush()
            rows = []
            for n, kind in mix(residents, sms_share, voice_share).items():
                number = first_user + n + 1
                phone = f"+8190{number % 100_000_000:08d}"
                line = user_id(number) if kind == "line" else None
                seed.users[kind].append(line or phone)
                rows.append({"tenant_id": tenant.id, "name": f"住民 {n}", "check_policy_id": policy.id,
                             "line_user_id": line, "phone": phone, "link_code": f"{n % 1_000_000:06d}",
                             "channels": {"line": ["line", "sms", "voice"], "sms": ["sms", "voice"],
                                          "voice": ["voice"]}[kind],
                             "policy_assigned_at": datetime(2030, 3, 1, tzinfo=TOKYO)})
            for start in range(0, len(rows), 10_000):
                db.session.execute(insert(Resident), rows[start:start + 10_000])
            if contacts:
                ids = db.session.scalars(select(Resident.id).order_by(Resident.id)).all()
                contact_rows = [{"tenant_id": tenant.id, "resident_id": rid, "name": f"家族 {n}",
                                 "relation": "relative", "priority": 1, "channels": ["line", "sms"],
                                 "line_user_id": user_id(CONTACT_USERS + n + 1),
                                 "phone": f"+8180{n:08d}"} for n, rid in enumerate(ids)]
                for start in range(0, len(contact_rows), 10_000):
                    db.session.execute(insert(Contact), contact_rows[start:start + 10_000])
            db.session.commit()
        return TenantSeed(**{**seed.__dict__, "id": tenant.id})


# One run of each phase

@dataclass
class Context:
    args: argparse.Namespace
    app: Any
    platform: Platform
    store: Store
    redis: redis.Redis
    main: TenantSeed
    escalation: TenantSeed
    naive: TenantSeed

    def fake_options(self) -> FakeOptions:
        tenants = (self.main, self.escalation, self.naive)
        return FakeOptions(self.args.latency_ms, tuple(t.line_token for t in tenants),
                           tuple((t.twilio_sid, t.twilio_token) for t in tenants),
                           self.args.calls_per_second)

    @contextmanager
    def phase(self, active: TenantSeed,
              web: bool = False) -> Iterator[tuple[Fakes, dict[str, str], dict[str, Any]]]:
        """Fresh fakes and workers (and the web app) for one run of one phase; peak memory after."""
        self.redis.flushdb()
        fakes = Fakes(self.fake_options())
        port = free_port()
        env = self.platform.environment(fakes, port)
        memory: dict[str, Any] = {}
        workers: list[subprocess.Popen[bytes]] = []
        server = None
        try:
            workers = start_workers(self.platform, env, self.args.workers, self.redis)
            if web:
                server = start_web(self.platform, env, port)
            memory["port"] = port
            yield fakes, env, memory
            memory["worker_mb"] = max(peak_mb(w) for w in workers)
            if server is not None:
                memory["web_mb"] = peak_mb(server, with_children=True)
        finally:
            for process in [*workers, *([server] if server else [])]:
                stop(process)
            fakes.stop()


def check_received(stats: dict[str, Any], seed: TenantSeed, label: str) -> None:
    """Everyone got exactly one message and no provider saw a request over its limit."""
    for channel, key in (("line", "line_received"), ("sms", "sms_received"), ("voice", "calls_received")):
        expected = len(seed.users[channel])
        if stats[key] != Counter({1: expected} if expected else {}):
            raise BenchError(f"{label}: {channel} recipients by messages received: {dict(stats[key])}, "
                             f"expected {expected} × 1")
    if stats["violations"]:
        raise BenchError(f"{label}: rate-limit violations {stats['violations_by']} {stats.get('call_times')}")


def run_round(ctx: Context) -> dict[str, Any]:
    ctx.store.reset(ctx.main.slug)
    with ctx.phase(ctx.main) as (fakes, env, memory):
        started, tick_s, tick_mb, report = run_tick(ctx.platform, env, ROUND_AT)
        wait_until_sent(ctx.store, ctx.main.id, ctx.redis, ctx.args.timeout)
        stats = fakes.stats(ctx.main.users)
    check_received(stats, ctx.main, "round")
    last = {c: stats[f"{c}_last"] - started for c in ("line", "twilio") if stats[f"{c}_last"]}
    return {"round_s": max(last.values()), "round_line_s": last.get("line"),
            "round_twilio_s": last.get("twilio"), "tick_s": tick_s, "tick_mb": tick_mb,
            "checks": report["checks_created"], "multicasts": stats["multicasts"],
            "pushes": stats["pushes"], "violations": stats["violations"],
            "worker_mb": memory["worker_mb"]}


def run_ingest(ctx: Context, round_done: bool) -> dict[str, Any]:
    """OK postbacks from every LINE resident (then again, as double taps, if more are asked for)."""
    from tests.fakes.line import postback_event, signed_webhook

    if not round_done:
        raise BenchError("ingest answers the round's checks: run the round first")
    users = ctx.main.users["line"]
    events = [postback_event(users[n % len(users)], f"answer:{OCCURRENCE}")
              for n in range(ctx.args.ingest_events)]
    size = ctx.args.events_per_webhook
    bodies = [signed_webhook(ctx.main.line_secret, events[i:i + size]) for i in range(0, len(events), size)]
    with ctx.phase(ctx.main, web=True) as (fakes, _, memory):
        timings = post_webhooks(memory["port"], ctx.main.slug, bodies, ctx.args.ingest_concurrency)
        replies = fakes.stats()["replies"]
        backlog = Queue("mimamori", connection=ctx.redis).count
    answered = ctx.store.scalar("SELECT count(*) FROM checks WHERE tenant_id = %s AND occurrence = %s "
                                "AND status = 'answered'", ctx.main.id, OCCURRENCE)
    if answered != min(len(users), len(events)):
        raise BenchError(f"ingest: {answered} checks answered, expected {min(len(users), len(events))}")
    starts, ends, latencies = zip(*timings, strict=True)
    elapsed = max(ends) - min(starts)
    p99 = (statistics.quantiles(latencies, n=100, method="inclusive")[98] if len(latencies) > 1
           else latencies[0])
    return {"events_per_s": len(events) / elapsed, "ingest_s": elapsed, "p99_s": p99,
            "max_s": max(latencies), "answered": answered, "replies_sent": replies,
            "reply_backlog": backlog, "web_mb": memory["web_mb"], "worker_mb": memory["worker_mb"]}


def post_webhooks(port: int, slug: str, bodies: list[tuple[bytes, str]],
                  concurrency: int) -> list[tuple[float, float, float]]:
    """POST every body as LINE does, `concurrency` at a time: (start, end, seconds) of each."""
    work: queue.Queue[tuple[bytes, str]] = queue.Queue()
    for item in bodies:
        work.put(item)
    results: list[tuple[float, float, float]] = []
    errors: list[str] = []

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not errors:
            try:
                body, signature = work.get_nowait()
            except queue.Empty:
                break
            started = time.perf_counter()
            for attempt in range(2):
                try:
                    conn.request("POST", f"/webhooks/line/{slug}", body=body,
                                 headers={"Content-Type": "application/json", "X-Line-Signature": signature})
                    response = conn.getresponse()
                    response.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()  # a keep-alive connection the server closed: reconnect once
                    if attempt:
                        raise
            ended = time.perf_counter()
            if response.status != 200:
                errors.append(f"webhook answered {response.status}")
            results.append((started, ended, ended - started))
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"ingest: {errors[0]}")
    return results


def run_escalation(ctx: Context) -> dict[str, Any]:
    """The tenant's checks go out at 09:00 (not timed), nobody answers; timed from the 10:00 tick."""
    seed = ctx.escalation
    ctx.store.reset(seed.slug)
    with ctx.phase(seed) as (fakes, env, memory):
        run_tick(ctx.platform, env, ROUND_AT)
        wait_until_sent(ctx.store, seed.id, ctx.redis, ctx.args.timeout)
        before = fakes.stats()
        started, tick_s, tick_mb, report = run_tick(ctx.platform, env, WINDOW_END)
        wait_until_sent(ctx.store, seed.id, ctx.redis, ctx.args.timeout)
        stats = fakes.stats({"line": [user_id(CONTACT_USERS + n + 1) for n in range(ctx.args.escalation)]})
    if report["missed"] != ctx.args.escalation:
        raise BenchError(f"escalation: {report['missed']} checks missed, expected {ctx.args.escalation}")
    if stats["line_received"] != Counter({1: ctx.args.escalation}) or stats["violations"]:
        raise BenchError(f"escalation: contacts by alerts received {dict(stats['line_received'])}, "
                         f"{stats['violations']} violations")
    steps = ctx.store.scalar("SELECT count(*) FROM deliveries WHERE tenant_id = %s AND purpose = 'alert' "
                             "AND status = 'sent' AND created_at >= %s", seed.id, ROUND_AT)
    return {"escalation_s": stats["line_last"] - started, "escalation_tick_s": tick_s,
            "escalation_tick_mb": tick_mb, "alerts_sent": steps,
            "alert_requests": stats["pushes"] + stats["multicasts"] - before["pushes"] - before["multicasts"],
            "worker_mb": memory["worker_mb"]}


def run_naive(ctx: Context) -> dict[str, Any]:
    """The same round the naive way: per resident a check, a delivery, a job and a push (or SMS, call)."""
    seed = ctx.naive
    ctx.store.reset(seed.slug)
    with ctx.phase(seed) as (fakes, _, memory):
        started = time.time()
        naive_plan(ctx.app, seed.id, ROUND_AT)
        wait_until_sent(ctx.store, seed.id, ctx.redis, ctx.args.timeout)
        stats = fakes.stats(seed.users)
    check_received(stats, seed, "naive round")
    last = max(t for t in (stats["line_last"], stats["twilio_last"]) if t)
    return {"naive_s": last - started, "naive_residents": ctx.args.naive_residents,
            "naive_pushes": stats["pushes"], "worker_mb": memory["worker_mb"]}


def naive_plan(app: Any, tenant_id: int, now: datetime) -> None:
    """One check and one delivery per resident, each committed and queued as its own job."""
    from sqlalchemy import select

    from mimamori.extensions import db
    from tenants import messages
    from tenants.models import Check, CheckPolicy, Resident, Tenant
    from tenants.services.deliveries import delivery_row, first_working, insert_deliveries
    from tenants.tenancy import bind_tenant
    from worker.queues import enqueue

    bodies = {"line": messages.check_text, "sms": messages.check_sms, "voice": messages.check_voice}
    with app.app_context(), bind_tenant(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        policy = db.session.scalars(select(CheckPolicy)).one()
        residents = db.session.execute(select(
            Resident.id, Resident.channels, Resident.phone, Resident.line_user_id, Resident.line_blocked)
            .where(Resident.check_policy_id == policy.id).order_by(Resident.id)).all()
        for resident_id, channels, phone, line_id, blocked in residents:
            choice = first_working(tenant, channels, phone, line_id, blocked)
            assert choice is not None
            channel, address = choice
            check = Check(resident_id=resident_id, policy_id=policy.id, occurrence=OCCURRENCE,
                          scheduled_at=now, status="sent", channel=channel, created_at=now,
                          window_ends_at=now + timedelta(minutes=policy.response_window_minutes))
            db.session.add(check)
            db.session.flush()
            row = delivery_row(key=f"check:{check.id}:{channel}", purpose="check",
                               recipient_type="resident", recipient_id=resident_id, channel=channel,
                               address=address, body=bodies[channel](tenant.name), now=now,
                               tenant=tenant, check_id=check.id)
            key = str(uuid.uuid4())
            insert_deliveries([{**row, "retry_key": key, "enqueued_at": now}])
            db.session.commit()
            enqueue("worker.jobs.send_batch", tenant_id, key)
        db.session.remove()


# Reporting

def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.1f} s" if value >= 1 else f"{value * 1000:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "x":
        return f"{value:.0f}×"
    return f"{value:,.0f}{unit}"


def table(args: argparse.Namespace, runs: list[dict[str, Any]], info: dict[str, Any]) -> str:
    def column(key: str) -> list[float]:
        return [r[key] for r in runs if r.get(key) is not None]

    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, key: str, unit: str, target: str = "", worst: bool = False) -> None:
        values = column(key)
        if not values:
            return
        value = max(values) if worst else median(values)
        rows.append((label, fmt(value, unit), " / ".join(fmt(v, unit) for v in values), target))

    n = args.residents
    row(f"round: tick 09:00 → last provider request ({n:,})", "round_s", "s", "≤ 20 s")
    row("  last LINE multicast", "round_line_s", "s")
    row("  last SMS / call", "round_twilio_s", "s")
    row("  tick (plan + queue)", "tick_s", "s")
    row("  LINE requests", "line_requests", "")
    row("  rate-limit violations (all phases)", "violations", "", "0", worst=True)
    row(f"ingest: events/s ({args.ingest_events:,} in webhooks of {args.events_per_webhook})",
        "events_per_s", "/s", "≥ 2,000/s")
    row("  p99 webhook response", "p99_s", "s", "< 1 s")
    row("  slowest webhook response", "max_s", "s", "< 2 s (LINE)")
    row("  replies sent during ingest", "replies_sent", "")
    row("  reply jobs still queued after ingest", "reply_backlog", "")
    row(f"escalation: tick 10:00 → last first step sent ({args.escalation:,})", "escalation_s", "s",
        "≤ 30 s")
    row("  tick (close, open incidents, fire, queue)", "escalation_tick_s", "s")
    row("  LINE requests", "alert_requests", "")
    row("peak memory: web (gunicorn, largest process)", "web_mb", "MB", "≤ 300 MB", worst=True)
    row("peak memory: worker (largest of all phases)", "worker_mb", "MB", "≤ 300 MB", worst=True)
    row("peak memory: tick", "tick_mb", "MB", "", worst=True)
    row(f"naive round, one job per resident ({args.naive_residents:,})", "naive_s", "s")
    row(f"  naive scaled to {n:,}", "naive_scaled_s", "s")
    row("  naive ÷ batched round", "naive_ratio", "x")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    rwidth = max(len(r[2]) for r in rows)
    mix_ = info["mix"]
    head = [f"Mimamori scale benchmark: {n:,} residents ({mix_['line']:,} LINE, {mix_['sms']:,} SMS, "
            f"{mix_['voice']:,} voice), latency {args.latency_ms:g} ms, {args.workers} workers, "
            f"{len(runs)} run(s), medians",
            f"machine: {info['machine']['cores']} cores ({info['machine']['cpu']}), "
            f"{info['machine']['memory_gib']} GiB; PostgreSQL {info['postgres']}, Redis {info['redis']}, "
            f"Python {info['machine']['python']}; 1-minute load average at the phases' starts "
            f"{min(info['loads'], default=0):.1f}–{max(info['loads'], default=0):.1f}",
            f"provider limits: LINE multicast 200/s, push 2,000/s; Twilio SMS {SMS_RATE}/s, calls "
            f"{args.calls_per_second:g}/s → bound for this round ≈ {fmt(info['bound_s'], 's')}",
            "",
            f"{'metric':<{width}}  {'median':>{vwidth}}  {'runs':<{rwidth}}  target"]
    lines = [f"{label:<{width}}  {value:>{vwidth}}  {each:<{rwidth}}  {target}"
             for label, value, each, target in rows]
    return "\n".join(head + lines)


# The whole benchmark

@contextmanager
def redis_database(url: str | None) -> Iterator[str]:
    """`url` when it names an empty database; else a private server, so that nobody else's
    tests empty the queue in the middle of a run (or have theirs emptied)."""
    if url:
        if redis.Redis.from_url(url).dbsize():
            raise SystemExit(f"{url} is not empty: another program may be using it, and the "
                             "benchmark empties it")
        yield url
        return
    with private_valkey() as private:
        yield private


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50, help="of every fake provider request")
    parser.add_argument("--workers", type=int, default=2, help="`mimamori worker` processes")
    parser.add_argument("--sms-share", type=float, default=0.001, help="residents reached by SMS")
    parser.add_argument("--voice-share", type=float, default=0.0001, help="residents reached by voice")
    parser.add_argument("--calls-per-second", type=int, default=1, help="the tenant's Twilio CPS")
    parser.add_argument("--ingest-events", type=int, help="OK postbacks (default: --residents)")
    parser.add_argument("--events-per-webhook", type=int, default=100)
    parser.add_argument("--ingest-concurrency", type=int, default=8, help="webhooks in flight")
    parser.add_argument("--escalation", type=int, default=10_000, help="missed checks at window end")
    parser.add_argument("--naive-residents", type=int, default=5_000,
                        help="size of the naive baseline's tenant (scaled to --residents)")
    parser.add_argument("--phases", default="round,ingest,escalation,naive")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a phase may take")
    parser.add_argument("--redis-url", default=REDIS_URL,
                        help="an empty Redis database to use (and empty) instead of a private server")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)
    args.ingest_events = args.ingest_events or args.residents
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--tick-at"]:
        tick_process(argv[1])
        return
    args = parse_args(argv)
    # Stopped from outside (a CI timeout, kill): clean up as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    phases = set(args.phases.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="mimamori-scale-"))
    with (redis_database(args.redis_url) as redis_url,
          throwaway_postgres(ADMIN_URL, "mimamori_scale") as database_url):
        args.redis_url = redis_url
        redis_client = redis.Redis.from_url(redis_url)
        env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
               "DATABASE_URL": database_url, "REDIS_URL": args.redis_url,
               "SECRET_KEY": secrets.token_urlsafe(48), "MIMAMORI_ENV": "development",
               "MIMAMORI_INSTANCE_PATH": str(workdir), "PYTHONPATH": str(ROOT),
               "METRICS_PORT": "0"}  # two workers on one machine would want the same port
        os.environ.update(env)
        from flask_migrate import upgrade

        from wsgi import create_app

        app = create_app()
        with app.app_context():
            upgrade()
        started = time.perf_counter()
        share = (args.sms_share, args.voice_share, args.calls_per_second)
        ctx = Context(args, app, Platform(database_url, args.redis_url, workdir, env), Store(database_url),
                      redis_client, seed_tenant(app, "bench", args.residents, MAIN_USERS, *share),
                      seed_tenant(app, "bench-escalation", args.escalation, ESCALATION_USERS, 0, 0,
                                  args.calls_per_second, contacts=True),
                      seed_tenant(app, "bench-naive", args.naive_residents, NAIVE_USERS, *share))
        ctx.store.add_history()
        ctx.store.conn.execute("VACUUM ANALYZE")
        print(f"seeded {args.residents + args.escalation + args.naive_residents:,} residents in "
              f"{time.perf_counter() - started:.0f} s; logs in {workdir}", flush=True)
        counts = {c: len(u) for c, u in ctx.main.users.items()}
        bound = max(-(-counts["line"] // 500) / 200, counts["sms"] / SMS_RATE,
                    counts["voice"] / args.calls_per_second)
        info = {"machine": machine(), "mix": counts, "bound_s": bound,
                "postgres": ctx.store.scalar("SHOW server_version").split()[0],
                "redis": redis_client.info("server")["redis_version"]}
        runs = []
        loads: list[float] = []  # other programs on the machine count too: say how busy it was
        info["loads"] = loads
        try:
            for number in range(1, args.runs + 1):
                figures: dict[str, Any] = {}
                worker_mb: list[float] = []
                for name, phase in (("round", lambda: run_round(ctx)),
                                    ("ingest", lambda: run_ingest(ctx, "round" in phases)),
                                    ("escalation", lambda: run_escalation(ctx)),
                                    ("naive", lambda: run_naive(ctx))):
                    if name not in phases:
                        continue
                    loads.append(os.getloadavg()[0])
                    result = phase()
                    worker_mb.append(result.pop("worker_mb"))
                    figures.update(result)
                    print(f"run {number} {name}: " + ", ".join(
                        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()),
                        flush=True)
                figures["worker_mb"] = max(worker_mb) if worker_mb else None
                figures["line_requests"] = (figures["multicasts"] + figures["pushes"]
                                            if "multicasts" in figures else None)
                if "naive_s" in figures:
                    figures["naive_scaled_s"] = figures["naive_s"] * args.residents / args.naive_residents
                    if "round_s" in figures:
                        figures["naive_ratio"] = figures["naive_scaled_s"] / figures["round_s"]
                runs.append(figures)
        finally:
            for process in ctx.platform.processes:
                stop(process)
            ctx.store.conn.close()
            with app.app_context():
                from mimamori.extensions import db

                db.engine.dispose()
            redis_client.flushdb()
    print()
    print(table(args, runs, info))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "info": info,
                                         "runs": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
