"""What an operator sees: Prometheus metrics per tenant and JSON logs that never name a resident."""

from __future__ import annotations

import io
import json
import logging
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mimamori import logging as logs
from mimamori import metrics
from tenants import messages
from tests.fakes.twilio import inbound_sms
from tests.fixtures.engine import tokyo
from tests.test_cli import _env, free_port, mimamori, running
from tests.webhooks_support import (
    DAY1,
    TWILIO_FROM,
    TWILIO_SID,
    add_resident,
    credentials,
    daily_policy,
    post_twilio,
    providers,
    run_clock,
    twilio_url,
    work,
)

# A resident and a contact nobody else in the suite has, so any trace of them in a log is ours.
NAME, KANA = "記録 禁止子", "キロク キンシコ"
PHONE, PHONE_E164 = "090-5555-0123", "+819055550123"
CONTACT_NAME, CONTACT_PHONE, CONTACT_E164 = "記録 禁止男", "080-5555-0456", "+818055550456"
FREE_TEXT = "足が痛いです、記録さんに伝えて"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logs rendered as production renders them, into a buffer."""
    buffer = io.StringIO()
    logs.configure(json_lines=True, level="INFO", stream=buffer)
    try:
        yield buffer
    finally:
        logs.configure(json_lines=False)


@pytest.fixture
def city(clean_app, make_tenant):
    """A city with Twilio, the providers' fakes, a daily 09:00 policy and our distinctive resident."""
    with providers(clean_app) as (_line, twilio):
        tenant = make_tenant("kiroku", name="記録市", **credentials())
        policy = daily_policy(tenant.api)
        add_resident(tenant.api, policy["id"], name=NAME, name_kana=KANA, phone=PHONE,
                     channels=["sms"],
                     contacts=[{"name": CONTACT_NAME, "relation": "relative", "phone": CONTACT_PHONE,
                                "channels": ["sms"], "priority": 1}])
        yield tenant, policy, twilio


def text_back(client: Any, slug: str, sender: str, body: str) -> Any:
    return post_twilio(client, twilio_url(slug, "sms"), inbound_sms(sender, TWILIO_FROM, body, TWILIO_SID))


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_logs_are_json_with_ids_and_never_name_a_resident(clean_app, client, city, json_logs):
    """Are the log lines of requests, jobs and webhooks JSON with request, tenant and job ids,
    and do they leave out the resident's name, phone number and every message text?"""
    tenant, _, twilio = city
    listed = tenant.api.client.get("/api/v1/residents", headers={
        "Authorization": f"Bearer {tenant.api.token}", "X-Request-ID": "ops-trace-42"})
    assert listed.headers["X-Request-ID"] == "ops-trace-42"
    assert client.get("/healthz").headers["X-Request-ID"]  # made up when the caller sent none

    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    [sent] = twilio.messages_to(PHONE_E164)
    text_back(client, tenant.slug, PHONE_E164, FREE_TEXT)
    text_back(client, tenant.slug, PHONE_E164, "はい")

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert lines, "nothing was logged"
    api_lines = [e for e in lines if e.get("request_id") == "ops-trace-42"]
    assert api_lines and all(e["tenant"] == "kiroku" for e in api_lines)
    assert {"path": "/api/v1/residents", "status": 200}.items() <= api_lines[-1].items()
    webhook_lines = [e for e in lines if e.get("logger") == "api.webhooks"]
    assert len(webhook_lines) == 2
    assert all(e["tenant"] == "kiroku" and e["request_id"] for e in webhook_lines)
    job_lines = [e for e in lines if e.get("job_id")]
    assert job_lines and all(e["tenant"] == "kiroku" for e in job_lines)
    assert {e["event"] for e in job_lines} >= {"batch sent"}

    everything = json_logs.getvalue()
    for secret in (NAME, KANA, "禁止", PHONE, PHONE_E164, PHONE_E164[1:], "9055550123",
                   CONTACT_NAME, CONTACT_PHONE, CONTACT_E164, FREE_TEXT, "足が痛い", sent.body,
                   messages.check_sms("記録市"), messages.AUTO_REPLY, messages.THANKS):
        assert secret not in everything, f"{secret!r} is in the logs"


def test_a_phone_number_in_a_log_message_is_masked(json_logs):
    """Should a phone number reach a log line after all (say, in an error), is it masked?"""
    logging.getLogger("tests").warning("could not reach %s or %s", "+819012345678", "090-1234-5678")
    [line] = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert line["event"] == "could not reach [phone] or [phone]"


def test_metrics_count_checks_deliveries_providers_and_webhooks_per_tenant(clean_app, client, city):
    """After a morning's check is sent, answered and another missed, does /metrics say so for
    this tenant, with deliveries by channel, provider latency and webhook latency?"""
    tenant, policy, _ = city
    add_resident(tenant.api, policy["id"], name="沈黙 太郎", phone="090-5555-0789", channels=["sms"])
    before = scrape(client)

    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    queued = scrape(client)
    assert value(queued, "mimamori_queue_depth", queue="mimamori") >= 1
    assert value(queued, "mimamori_queue_oldest_job_age_seconds", queue="mimamori") >= 0
    assert value(queued, "mimamori_redis_up") == 1
    work(clean_app)
    text_back(client, tenant.slug, PHONE_E164, "はい")
    run_clock(clean_app, tokyo(f"{DAY1} 10:00"))  # the other resident's window closes
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mimamori_checks_planned_total", tenant="kiroku", kind="scheduled") == 2
    assert grew("mimamori_checks_sent_total", tenant="kiroku") == 2
    assert grew("mimamori_checks_answered_total", tenant="kiroku", via="sms") == 1
    assert grew("mimamori_checks_missed_total", tenant="kiroku") == 1
    assert grew("mimamori_deliveries_total", tenant="kiroku", channel="sms", outcome="sent") == 2
    assert grew("mimamori_provider_request_seconds_count", provider="sms") == 2
    assert grew("mimamori_provider_request_seconds_sum", provider="sms") > 0
    assert grew("mimamori_webhook_seconds_count", webhook="twilio_sms") == 1
    assert grew("mimamori_webhook_requests_total", webhook="twilio_sms", status="200") == 1
    assert value(after, "mimamori_queue_depth", queue="mimamori") >= 1  # the missed one's chain


def test_provider_errors_are_counted(clean_app, client, city):
    """When Twilio asks us to come back in a minute, is that counted as a provider error and
    the delivery as one to retry?"""
    _, _, twilio = city
    twilio.throttle_next(1, retry_after=60)
    before = scrape(client)
    run_clock(clean_app, tokyo(f"{DAY1} 09:00"))
    work(clean_app)
    after = scrape(client)
    errors = (value(after, "mimamori_provider_errors_total", provider="sms", kind="retry")
              - value(before, "mimamori_provider_errors_total", provider="sms", kind="retry"))
    assert errors >= 1
    assert (value(after, "mimamori_deliveries_total", tenant="kiroku", channel="sms", outcome="retry")
            - value(before, "mimamori_deliveries_total", tenant="kiroku", channel="sms",
                    outcome="retry")) == 1


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_worker_and_scheduler_metrics_endpoint():
    """Does a worker's or scheduler's metrics port answer /metrics, and /healthz by its health?"""
    port = free_port()
    healthy = {"ok": True}
    server = metrics.serve(port, healthy=lambda: healthy["ok"])
    assert server is not None
    try:
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "mimamori_checks_planned_total" in body
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        healthy["ok"] = False
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 503
        assert metrics.serve(port) is None  # taken: logged, and the process goes on
    finally:
        server.shutdown()
        server.server_close()
    assert metrics.serve(0) is None


def test_the_clock_counts_as_stale_after_ten_minutes_without_a_tick():
    """Is the scheduler unhealthy only once no tick has finished for ten minutes?"""
    metrics.tick_finished(0.5)
    now = time.time()
    assert metrics.tick_is_recent(now + 60)
    assert not metrics.tick_is_recent(now + metrics.TICK_STALE_AFTER + 1)


def _sum_samples(text: str, name: str, **labels: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def test_gunicorn_workers_metrics_add_up(tmp_path: Path) -> None:
    """Under `mimamori serve` with two worker processes, does /metrics count every request,
    whichever process served it, and answer only on METRICS_PORT, not on the public port?"""
    metrics_port = free_port()
    env = _env(tmp_path / "instance", DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
               WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
               LOG_FORMAT="json", METRICS_PORT=str(metrics_port))
    assert mimamori("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    port = free_port()
    with running(["serve", "--port", str(port)], env, tmp_path) as (process, output):
        _wait_for_metrics(process, output, metrics_port, "mimamori_tick_seconds")
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 404
        for _ in range(40):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/line/nobody",
                                             data=b"{}", method="POST")
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=15)
        status, body = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert _sum_samples(body, "mimamori_webhook_requests_total", webhook="line",
                            status="404") == 40
        pids = {path.stem.rsplit("_", 1)[-1] for path in (tmp_path / "metrics").glob("*.db")}
        assert len(pids) == 2, f"expected two worker processes to count, got files of {pids}"
    logged = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("path") == "/webhooks/line/nobody" and e.get("request_id") for e in logged)


def test_scheduler_and_worker_expose_metrics(tmp_path: Path, redis_url: str) -> None:
    """Do `mimamori scheduler` and `mimamori worker` serve metrics on METRICS_PORT?"""
    env = _env(tmp_path / "instance", DATABASE_URL=f"sqlite:///{tmp_path / 'clock.sqlite3'}",
               REDIS_URL=redis_url)
    assert mimamori("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    for command, metric in (("scheduler", "mimamori_tick_last_success_timestamp_seconds"),
                            ("worker", "mimamori_provider_request_seconds")):
        port = free_port()
        with running([command], {**env, "METRICS_PORT": str(port)}, tmp_path) as (process, output):
            body = _wait_for_metrics(process, output, port, metric,
                                     positive=command == "scheduler")
            assert metric in body
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
            # Stopped as Kubernetes stops a pod: at once, and as a clean exit.
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, output.read_text()


def _wait_for_metrics(process: Any, output: Path, port: int, metric: str, positive: bool = False,
                      seconds: float = 90) -> str:
    """Poll /metrics until it shows `metric` (above zero when `positive`); a loaded machine may
    take a while to boot the app."""
    deadline = time.monotonic() + seconds
    body = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{output.read_text()}")
        try:
            status, body = get(f"http://127.0.0.1:{port}/metrics")
            if status == 200 and metric in body and (not positive or _sum_samples(body, metric) > 0):
                return body
        except OSError:  # refused, reset or timed out while the app boots
            pass
        time.sleep(0.2)
    pytest.fail(f"no {metric} on port {port} within {seconds} s:\n{output.read_text()}\n{body}")


def test_a_bad_metrics_port_stops_with_a_clear_message(tmp_path: Path) -> None:
    """Is METRICS_PORT=abc refused at start-up, naming the setting?"""
    from mimamori.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="METRICS_PORT"):
        load_settings(tmp_path, {"METRICS_PORT": "abc"})
    assert load_settings(tmp_path, {"METRICS_PORT": "0"}).metrics_port == 0
    assert load_settings(tmp_path, {}).metrics_port is None


def test_nested_fields_are_masked_at_any_depth(json_logs):
    """Do secrets and personal data nested in a log line's fields (dicts in dicts, lists of dicts,
    dotted keys) stay out of the log, while the ids around them remain readable?"""
    logging.getLogger("tests").info("nested", extra={
        "webhook": {"provider": "line", "tenant": "09055550123", "result": "rejected"},
        "webhook.tenant": "+819055550123",
        "twilio": {"account_sid": "AC123", "auth_token": "tok-nested-secret",
                   "deeper": {"channel_secret": "cs-nested-secret", "ids": [1, 2]}},
        "contacts": [{"id": 7, "name": CONTACT_NAME, "phone": CONTACT_PHONE},
                     {"id": 8, "notes": FREE_TEXT}],
        "recipients": [["+818055550456", "080-5555-0456"]],
        "line.channel_access_token": "cat-nested-secret",
    })
    everything = json_logs.getvalue()
    for secret in ("9055550123", "tok-nested-secret", "cs-nested-secret", CONTACT_NAME,
                   CONTACT_PHONE, CONTACT_E164, "8055550456", FREE_TEXT, "cat-nested-secret"):
        assert secret not in everything, f"{secret!r} is in the logs"
    [line] = [json.loads(text) for text in everything.splitlines()]
    assert line["webhook"] == {"provider": "line", "tenant": "[phone]", "result": "rejected"}
    assert line["twilio"]["account_sid"] == "AC123" and line["twilio"]["deeper"]["ids"] == [1, 2]
    assert [contact["id"] for contact in line["contacts"]] == [7, 8]


def test_a_webhook_for_a_phone_number_slug_logs_no_phone_number(client, json_logs):
    """A stranger posting to /webhooks/line/09055550123: does the number stay out of the webhook
    log line, in its nested `webhook.tenant` field as in the rest?"""
    answer = client.post("/webhooks/line/09055550123", data=b"{}",
                         headers={"Content-Type": "application/json", "X-Line-Signature": "x"})
    assert answer.status_code == 404
    everything = json_logs.getvalue()
    webhook_lines = [json.loads(text) for text in everything.splitlines()
                     if json.loads(text).get("logger") == "api.webhooks"]
    assert webhook_lines and all(line["webhook"]["provider"] == "line" for line in webhook_lines)
    assert "9055550123" not in everything
