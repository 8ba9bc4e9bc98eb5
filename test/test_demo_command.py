"""`movseg demo`, the README's main job, end to end: the real node in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest


@pytest.mark.ros
@pytest.mark.timeout(180)
def test_demo_runs_the_node_and_writes_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # 5 Hz: slow enough that a loaded 2-core machine drops nothing (speed is measured by the bench commands)
    done = subprocess.run([sys.executable, "-m", "movseg_ros.cli", "demo", "--frames", "40", "--rate", "5",
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["frames_in"] == 40
    node = summary["node"]
    # every frame accounted for by the node, and every processed frame answered
    assert int(node["frames received"]) == int(node["frames processed"]) + int(node["frames dropped"]) + int(node["frames bad"])
    assert summary["frames_out"] == int(node["frames processed"]) >= 30
    assert summary["truth"]["mover"]["mean_iou"] >= 0.5
    assert summary["static_object_reported_moving_frames"] == 0
    assert len(summary["truth"]["stopper"]["track_ids"]) == 1  # one id before and after it stops
    assert summary["node_exit_code"] == 0
    assert cv2.imread(summary["files"]["contact_sheet"]) is not None
    video = cv2.VideoCapture(summary["files"]["overlay_video"])
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == summary["frames_out"]
