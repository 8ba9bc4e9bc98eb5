"""`movseg replay` in both modes on a bag made from a dev DAVIS sequence with `movseg bag make`.

In-process: outputs, plots, metrics that match an independent recomputation from the written
label PNGs, a frame account that adds up, and the same digest on a second run. Live: the real
node in its own process, every frame accounted for, outputs recorded into a bag.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movseg_ros.bags.reader import bag_info, read_label_maps
from movseg_ros.bags.topics import INSTANCES_TOPIC, TRUTH_TOPIC
from movseg_ros.cli import main
from movseg_ros.datasets.davis import default_root
from movseg_ros.evaluation.davis_metrics import jaccard
from movseg_ros.writers import read_label_png

SEQUENCE = "car-shadow"
FRAMES = 10


@pytest.fixture(scope="module")
def davis_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    seq = default_root() / SEQUENCE
    if not seq.is_dir():
        pytest.skip(f"DAVIS dev sequence {seq} not present (../shared/data/davis2016)")
    bag = tmp_path_factory.mktemp("bags") / "car-shadow"
    assert main(["bag", "make", str(seq), str(bag), "--rate", "10", "--max-frames", str(FRAMES),
                 "--resize", "427x240"]) == 0
    return bag


def _replay(bag: Path, out: Path, *extra: str) -> dict:
    code = main(["replay", str(bag), "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0, summary["account"]
    return summary


def test_in_process_replay_scores_accounts_and_repeats(davis_bag: Path, tmp_path: Path, capsys) -> None:
    first = _replay(davis_bag, tmp_path / "a")
    printed = capsys.readouterr().out
    assert "account adds up" in printed and "J " in printed
    a = first["account"]
    assert a["adds_up"] and a["in_bag"] == a["sent"] == a["processed"] == a["outputs"] == a["recorded"] == FRAMES
    for key in ("timing_plot", "metrics_plot", "contact_sheet", "overlay", "summary"):
        assert Path(first["files"][key]).is_file(), key
    m = first["metrics"]
    assert m["frames_scored"] == m["frames_with_truth"] == FRAMES and not m["partial"]
    truth = read_label_maps(davis_bag, TRUTH_TOPIC)
    stamps = sorted(truth)
    labels = sorted((tmp_path / "a" / "labels").glob("*.png"))
    assert len(labels) == FRAMES
    recomputed = [jaccard(read_label_png(p) > 0, truth[s] > 0) for p, s in zip(labels, stamps)]
    assert m["binary"]["J"]["mean"] == pytest.approx(np.mean(recomputed), abs=1e-9)
    assert 0.0 < m["binary"]["J"]["mean"] <= 1.0 and 0.0 < m["binary"]["F"]["mean"] <= 1.0
    second = _replay(davis_bag, tmp_path / "b")
    assert second["output_digest"] == first["output_digest"]
    assert second["metrics"]["binary"] == first["metrics"]["binary"]


def test_in_process_replay_of_the_first_frames_scores_just_those(davis_bag: Path, tmp_path: Path) -> None:
    s = _replay(davis_bag, tmp_path / "p", "--max-frames", "4")
    assert s["account"]["sent"] == s["account"]["in_bag"] == 4 and s["account"]["adds_up"]
    m = s["metrics"]
    assert not m["partial"] and m["frames_scored"] == m["frames_with_truth"] == 4


@pytest.mark.ros
def test_live_replay_accounts_for_every_frame_and_records_outputs(davis_bag: Path, tmp_path: Path) -> None:
    out = tmp_path / "live"
    s = _replay(davis_bag, out, "--live", "--json", str(tmp_path / "live.json"))
    a = s["account"]
    assert a["adds_up"], a
    assert a["sent"] == FRAMES and a["sent"] == a["received"] + a["lost_in_transport"]
    assert a["received"] == a["processed"] + a["dropped_by_queue"] + a["bad_at_node"] + a["failed"]
    assert a["processed"] >= 1 and a["recorded"] == a["outputs"] == a["processed"]
    info = bag_info(Path(s["files"]["output_bag"]))
    counts = {t.name: t.count for t in info.topics}
    assert counts[INSTANCES_TOPIC] == a["recorded"] and counts["/movseg/tracks"] == a["recorded"]
    truth_stamps = set(read_label_maps(davis_bag, TRUTH_TOPIC))
    recorded = read_label_maps(Path(s["files"]["output_bag"]), INSTANCES_TOPIC)
    assert set(recorded) <= truth_stamps  # each output carries the header of its input frame
    assert s["metrics"]["frames_scored"] == a["recorded"]
    assert s["latency"]["outputs"] == a["recorded"] and s["latency"]["p50_ms"] > 0
    for key in ("timing_plot", "contact_sheet", "summary"):
        assert Path(s["files"][key]).is_file(), key
    assert json.loads((tmp_path / "live.json").read_text())["account"] == a
    assert s["node_exit_code"] == 0
    # what a robot user does with their own `ros2 bag record` of /movseg/instances: score it by stamp
    scored = tmp_path / "eval.json"
    assert main(["eval", "--bag", s["files"]["output_bag"], "--truth", str(davis_bag), "--allow-partial",
                 "--json", str(scored)]) == 0
    metrics = json.loads(scored.read_text())["metrics"]
    assert metrics["binary"]["J"] == s["metrics"]["binary"]["J"] and metrics["frames_scored"] == a["recorded"]


def test_replay_errors_name_the_bag(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing-here"
    assert main(["replay", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    not_a_bag = tmp_path / "folder"
    not_a_bag.mkdir()
    (not_a_bag / "x.txt").write_text("hello")
    assert main(["replay", str(not_a_bag)]) == 2
    assert str(not_a_bag) in capsys.readouterr().err


def test_replay_of_a_bag_without_the_image_topic_lists_its_topics(davis_bag: Path, tmp_path: Path, capsys) -> None:
    assert main(["replay", str(davis_bag), "--image-topic", "/no/such/topic", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "/no/such/topic" in err and "/camera/image_raw" in err


def test_in_process_replay_counts_an_undecodable_image_and_goes_on(davis_bag: Path, tmp_path: Path) -> None:
    from movseg_ros.bags.image_msgs import encode_image, ros2_typestore, serialize
    from movseg_ros.bags.reader import read_images
    from movseg_ros.bags.topics import IMAGE_MSGTYPE, IMAGE_TOPIC
    from movseg_ros.bags.writer import BagRecorder

    store = ros2_typestore()
    damaged = tmp_path / "damaged"
    truth = read_label_maps(davis_bag, TRUTH_TOPIC)
    with BagRecorder(damaged) as recorder:
        recorder.add_topic(IMAGE_TOPIC, IMAGE_MSGTYPE)
        recorder.add_topic(TRUTH_TOPIC, IMAGE_MSGTYPE)
        for m in read_images(davis_bag, IMAGE_TOPIC):
            msg = encode_image(store, m.image, "rgb8", m.stamp_ns, m.frame_id)
            if m.index == 3:
                msg.encoding = "yuv422"  # not an encoding the node or the replay can decode
            recorder.write(IMAGE_TOPIC, m.log_ns, serialize(store, msg, IMAGE_MSGTYPE))
            labels = encode_image(store, truth[m.stamp_ns].astype(np.uint16), "mono16", m.stamp_ns, m.frame_id)
            recorder.write(TRUTH_TOPIC, m.log_ns, serialize(store, labels, IMAGE_MSGTYPE))
    s = _replay(damaged, tmp_path / "out")
    a = s["account"]
    assert a["adds_up"] and a["bad_in_bag"] == 1 and a["sent"] == a["outputs"] == FRAMES - 1
    assert s["bad_in_bag"][0]["index"] == 3 and "encoding" in s["bad_in_bag"][0]["problem"]
    assert s["metrics"]["partial"] and s["metrics"]["missing_predictions"] == 1
    assert s["metrics"]["frames_scored"] == FRAMES - 1
    empty = _replay(damaged, tmp_path / "empty", "--missing-as-empty")["metrics"]
    assert not empty["partial"] and empty["frames_scored"] == FRAMES
    assert empty["binary"]["J"]["per_frame"][3] == 0.0


@pytest.mark.ros
def test_live_replay_with_a_node_that_cannot_start_fails_cleanly(davis_bag: Path, tmp_path: Path, capsys) -> None:
    import psutil
    import yaml

    from movseg_ros.paths import config_file

    params = yaml.safe_load(config_file("segment.yaml").read_text())
    params["movseg"]["ros__parameters"]["queue_size"] = -3  # out of its declared range
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    before = {p.pid for p in psutil.process_iter() if "segment_node" in " ".join(p.cmdline())}
    assert main(["replay", str(davis_bag), "--live", "--config", str(bad), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "live replay failed" in err and "queue_size" in err
    after = {p.pid for p in psutil.process_iter() if "segment_node" in " ".join(p.cmdline())}
    assert after <= before  # the node process did not outlive the replay
