"""`movseg bench storm` through the CLI: short storms against the real node, every number in the JSON."""

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
def test_bench_storm_reports_accounting_memory_and_answer_per_storm(node_env, tmp_path: Path) -> None:
    out, png = tmp_path / "storm.json", tmp_path / "storm.png"
    proc = subprocess.run([sys.executable, "-m", "movseg_ros.cli", "bench", "storm", "--storms", "bomb",
                           "--seconds", "0.5", "--rate", "100", "--json", str(out), "--plot", str(png)],
                          env=node_env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert [s["name"] for s in result["storms"]] == ["bomb"] and result["within_target"] is True
    for s in result["storms"]:
        assert s["alive"] and s["accounted"] and s["miscounted"] == 0 and s["failed"] == 0, s
        assert s["sent_bad"] > 0 and s["bad"] + s["lost"] >= s["sent_bad"], s
        assert 1.0 <= s["rss_ratio"] < 2.0 and s["answer_s"] is not None, s
        assert s["rss_samples"] and s["rss_idle_mb"] > 0
    assert result["storms"][0]["bad_by_kind"].keys() == {"too_large"}
    assert png.stat().st_size > 10_000
    assert "every storm alive, accounted and under 2x idle RSS: yes" in proc.stdout


def test_an_unknown_storm_is_refused_with_exit_2(capsys) -> None:
    from movseg_ros.cli import main

    assert main(["bench", "storm", "--storms", "bomb,typhoon"]) == 2
    assert "typhoon" in capsys.readouterr().err
