"""The Helm chart as rendered: what an operator relies on, checked on the manifests themselves.

Needs the helm binary `.ci/helm-check` caches (or MIMAMORI_HELM); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "mimamori"
PRODUCTION = ROOT / "helm" / "examples" / "production.yaml"


def _helm() -> str | None:
    if os.environ.get("MIMAMORI_HELM"):
        return os.environ["MIMAMORI_HELM"]
    cache = Path(os.environ.get("MIMAMORI_CI_CACHE")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mimamori-ci")
    found = sorted(cache.glob("helm-*/helm"))
    return str(found[-1]) if found else None


HELM = _helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary (run .ci/helm-check once)")


def render(*args: str) -> list[dict[str, Any]]:
    result = subprocess.run([HELM, "template", "mimamori", str(CHART), "--namespace", "mimamori", *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
            for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("values", [[], ["-f", str(PRODUCTION)], ["--set", "redis.enabled=true"]],
                         ids=["default", "production", "in-chart-redis"])
def test_every_pod_runs_as_non_root_on_a_read_only_root_filesystem(values):
    """Does every pod the chart makes run as a non-root user, without privilege escalation or
    capabilities, on a read-only root filesystem?"""
    for name, spec in pod_specs(render(*values)).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "resources" in container and container["resources"]["requests"], name


def test_components_commands_probes_and_budgets():
    """Web serves with /healthz and /readyz probes, workers and two schedulers run their commands,
    the migration runs `mimamori db upgrade` as a pre-install/pre-upgrade hook, and each
    component has a disruption budget."""
    docs = render()
    specs = pod_specs(docs)
    web = specs["Deployment/mimamori-web"]["containers"][0]
    assert web["args"] == ["serve"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert specs["Deployment/mimamori-worker"]["containers"][0]["args"] == ["worker"]
    scheduler = find(docs, "Deployment", "mimamori-scheduler")
    assert scheduler["spec"]["replicas"] == 2
    assert scheduler["spec"]["template"]["spec"]["containers"][0]["args"] == ["scheduler"]
    job = find(docs, "Job", "mimamori-migrations")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    hpa = find(docs, "HorizontalPodAutoscaler", "mimamori-worker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mimamori-worker"
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"} == {
        "mimamori-web", "mimamori-worker", "mimamori-scheduler"}
    assert not [d for d in docs if d["kind"] == "StatefulSet"]  # external Redis by default


def test_secrets_come_only_from_the_existing_secret():
    """Are DATABASE_URL, REDIS_URL, SECRET_KEY and ENCRYPTION_KEY taken from the operator's
    Secret by reference, and does the chart hold no secret value and make no Secret?"""
    docs = render("-f", str(PRODUCTION))
    assert not [d for d in docs if d["kind"] == "Secret"]
    for name, spec in pod_specs(docs).items():
        env = env_of(spec["containers"][0])
        for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY"):
            assert env[key] == {"secretKeyRef": {"name": "mimamori-production", "key": key}}, name
        assert env["MIMAMORI_ENV"] == "production"


def test_the_app_writes_only_to_its_empty_dirs():
    """With a read-only root, do the instance folder, /tmp and gunicorn's metrics directory
    live on emptyDir volumes?"""
    specs = pod_specs(render())
    for name, spec in specs.items():
        container = spec["containers"][0]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        assert env_of(container)["MIMAMORI_INSTANCE_PATH"] in mounts, name
    web = specs["Deployment/mimamori-web"]
    multiproc = env_of(web["containers"][0])["PROMETHEUS_MULTIPROC_DIR"]
    mount = {m["mountPath"]: m["name"] for m in web["containers"][0]["volumeMounts"]}[multiproc]
    assert "emptyDir" in {v["name"]: v for v in web["volumes"]}[mount]


def test_in_chart_redis_is_durable_and_never_evicts():
    """When the chart runs Redis, does it keep an append-only file on a volume and refuse to
    evict jobs, and do the apps find it with the password from the Secret?"""
    docs = render("--set", "redis.enabled=true")
    redis = find(docs, "StatefulSet", "mimamori-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    worker = pod_specs(docs)["Deployment/mimamori-worker"]["containers"][0]
    assert env_of(worker)["REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@mimamori-redis:6379/0"


def test_the_ingress_reaches_the_webhooks_and_metrics_stay_off_the_public_port():
    """Does the production Ingress route every path (webhooks included) to the web Service, and
    is /metrics on its own port, not the one behind the Ingress?"""
    docs = render("-f", str(PRODUCTION))
    ingress = find(docs, "Ingress", "mimamori")
    [path] = ingress["spec"]["rules"][0]["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "mimamori-web", "port": {"name": "http"}}
    web = pod_specs(docs)["Deployment/mimamori-web"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in web["ports"]}
    assert int(env_of(web)["METRICS_PORT"]) == ports["metrics"] != ports["http"]
    assert find(docs, "PodMonitor", "mimamori")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
