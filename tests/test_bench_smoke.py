"""The scale benchmark's harness, run small: does `bench/scale.py` still seed, run every phase
against the real processes and print its table? No timing is asserted here; the figures come
from full runs (README, "Benchmarks")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def postgres(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the benchmark measures PostgreSQL, the production database")


def test_the_scale_benchmark_runs_every_phase_on_a_small_tenant(postgres, tmp_path):
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, "bench/scale.py", "--residents", "2000", "--runs", "1",
         "--latency-ms", "5", "--sms-share", "0.005", "--voice-share", "0.001",
         "--escalation", "300", "--naive-residents", "200", "--events-per-webhook", "100",
         "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for phase in ("round", "ingest", "escalation", "naive"):
        assert f"run 1 {phase}:" in out
    assert "2,000 residents (1,988 LINE, 10 SMS, 2 voice)" in out
    assert re.search(r"rate-limit violations \(all phases\)\s+0\b", out)
    assert re.search(r"naive ÷ batched round\s+\d+×", out)
    assert figures.exists()
