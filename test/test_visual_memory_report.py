"""`movseg report visual-memory` on small real weights files: MP-Net alone, the memory online and offline,
scored on a DAVIS folder, with frames/s for the online rows, JSON and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.visual_memory.mpnet import MPNet, MPNetArch, save_mpnet
from movseg_ros.visual_memory.network import MemoryArch, VisualMemoryNet, save_memory

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(240)
def test_the_report_scores_mpnet_alone_and_the_memory_both_ways(davis_square: Path, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    mpnet = MPNet(MPNetArch()).eval()
    with torch.no_grad():
        mpnet.head.bias.fill_(8.0)  # motion everywhere: every region moves
    save_mpnet(tmp_path / "mp.pt", mpnet, {})
    net = VisualMemoryNet(MemoryArch(appearance=8, state=8, residual=True))
    with torch.no_grad():
        net.online_head.bias.fill_(8.0)  # the whole frame is the object, online and (averaged) offline
    save_memory(tmp_path / "vm.pt", net, {})
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["report", "visual-memory", "--weights", str(tmp_path / "vm.pt"), "--mpnet", str(tmp_path / "mp.pt"),
                 "--others", "--davis", str(davis_square), "--width", "160", "--height", "120", "--speed-frames", "4",
                 "--json", str(out_json), "--plot", str(out_png)]) == 0
    table = capsys.readouterr().out
    assert "memory online" in table and "memory offline" in table and "square" in table
    rows = {r["name"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert list(rows) == ["MP-Net alone", "memory online", "memory offline"]
    square = 20 * 20 / (96 * 64)  # J of a whole-frame mask against the 20x20 square
    for row in rows.values():
        assert row["mean_j"] == pytest.approx(square, abs=0.02)
        assert [s["sequence"] for s in row["sequences"]] == ["square"]
    assert rows["memory online"]["fps_640x480"] > 0 and rows["MP-Net alone"]["fps_640x480"] > 0
    assert rows["memory offline"]["fps_640x480"] is None and rows["memory offline"]["offline"]
    assert out_png.read_bytes()[:8] == PNG_MAGIC
