"""`movseg flow epe`: RAFT vs DIS vs zero flow on held-out synthetic pairs, table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from learned_flow_helpers import plain_state_dict_file

from movseg_ros.cli import main
from movseg_ros.learned_flow.evaluate import synth_pairs
from movseg_ros.synth import preset


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return plain_state_dict_file(tmp_path_factory.mktemp("epe") / "raft_small_untrained.pth")


def test_epe_table_and_json(weights: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "epe.json"
    png = tmp_path / "epe.png"
    rc = main(["flow", "epe", "--weights", str(weights), "--iterations", "2", "--split-seeds", "100000:100002",
               "--width", "128", "--height", "96", "--json", str(out), "--plot", str(png)])
    assert rc == 0
    table = capsys.readouterr().out
    rows = {line.split()[0] for line in table.splitlines() if line and not line.startswith(("flow", "method", "plot", "EPE@bnd"))}
    assert rows == {"raft", "dis_medium", "dis_fast", "zero"}
    summary = json.loads(out.read_text())
    assert summary["pairs"] == 2 and summary["split_seeds"] == [100000, 100002]
    methods = {m["name"]: m for m in summary["methods"]}
    # the zero-flow row is the mean length of the true flow, computed here independently
    pairs = synth_pairs(preset("motion").replace(width=128, height=96), [100000, 100001])
    truth = np.mean([np.linalg.norm(p.flow, axis=2).mean() for p in pairs])
    assert methods["zero"]["epe"] == pytest.approx(truth, rel=1e-6)
    assert methods["dis_medium"]["epe"] < methods["zero"]["epe"]  # DIS finds the motion
    for m in methods.values():
        assert 0.0 <= m["over_3px"] <= m["over_1px"] <= 1.0 and m["ms_per_pair"] >= 0.0
        assert len(m["per_pair_epe"]) == 2
    assert methods["zero"]["epe_boundary"] > methods["zero"]["epe"]  # boundaries are where things move
    assert png.stat().st_size > 1000


def test_bad_input_is_a_clear_error(weights: Path, tmp_path: Path, capsys) -> None:
    assert main(["flow", "epe", "--weights", str(weights), "--split-seeds", "5-9"]) == 2
    assert "--split-seeds '5-9'" in capsys.readouterr().err
    missing = tmp_path / "missing.pt"
    assert main(["flow", "epe", "--weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("movseg flow: error:") and str(missing) in err
    assert main(["flow", "epe", "--weights", str(weights), "--arch", "raft_large", "--split-seeds", "100000:100001",
                 "--width", "64", "--height", "64"]) == 2
    assert "raft_large" in capsys.readouterr().err


def test_motion_boundaries_ring_a_moving_square() -> None:
    from movseg_ros.learned_flow.evaluate import motion_boundaries

    flow = np.zeros((40, 40, 2), np.float32)
    flow[10:30, 10:30, 0] = 3.0  # a square moving right on a still background
    b = motion_boundaries(flow, step=1.0, radius=2)
    assert b[10, 20] and b[29, 20] and b[20, 9] and b[20, 31]
    assert not b[20, 20] and not b[0, 0] and not b[39, 39]
    assert not motion_boundaries(np.full((20, 20, 2), 5.0, np.float32)).any()  # uniform motion: none
