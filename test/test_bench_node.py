"""`movseg bench node` through the CLI: a short stream into the real node, latency, memory and its CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("psutil")

pytestmark = [pytest.mark.ros]


@pytest.mark.timeout(240)
def test_bench_node_reports_latency_and_the_nodes_cpu(node_env, tmp_path: Path) -> None:
    out = tmp_path / "node.json"
    proc = subprocess.run([sys.executable, "-m", "movseg_ros.cli", "bench", "node", "--duration", "3", "--rate", "10",
                           "--width", "320", "--height", "240", "--json", str(out)],
                          env=node_env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    assert r["published"] == 30 and 0 < r["outputs"] <= 30 and r["node_exit_code"] == 0, r
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
    cpu = r["cpu"]
    assert cpu["machine_cores"] >= 1
    assert 0.05 < cpu["cores"] <= cpu["machine_cores"] + 0.5, cpu  # it segmented: not idle, and no more than there is
    assert cpu["ms_per_output"] == pytest.approx(cpu["cores"] * 3.0 * 1e3 / r["outputs"], rel=0.2)
    assert "node CPU" in proc.stdout and "cores busy of" in proc.stdout
