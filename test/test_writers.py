"""Label PNGs, the tracks table and the even sample used for contact sheets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movseg_ros.frame import Frame
from movseg_ros.output import FrameOutput, TrackState, TrackStatus, label_map_of
from movseg_ros.writers import EvenSample, TracksJsonWriter, read_label_png, write_label_png


def test_label_png_round_trips_16_bit_ids(tmp_path: Path) -> None:
    labels = np.zeros((30, 40), np.uint16)
    labels[2:8, 3:9] = 300
    labels[10:20, 10:30] = 65535
    path = write_label_png(tmp_path, 7, labels)
    assert path.name == "00007.png"
    assert np.array_equal(read_label_png(path), labels)
    with pytest.raises(ValueError):
        write_label_png(tmp_path, 8, labels.astype(np.uint8))


def test_tracks_json_holds_every_field(tmp_path: Path) -> None:
    mask = np.zeros((30, 40), bool)
    mask[5:10, 5:15] = True
    seen = TrackState(4, mask, (5, 5, 15, 10), 0.93, True, TrackStatus.VISIBLE, 6, 5, (12.5, -3.0))
    lost = TrackState(9, None, (0, 0, 4, 4), 0.8, False, TrackStatus.LOST, 20, 11, (0.0, 0.0))
    frame = Frame(np.zeros((30, 40, 3), np.uint8), stamp_ns=123, index=2)
    writer = TracksJsonWriter(tmp_path / "tracks.json", {"source": "x"})
    writer.add(FrameOutput(frame, [seen, lost], label_map_of([seen, lost], (30, 40))))
    writer.add(FrameOutput(Frame(frame.image, stamp_ns=456, index=3), [], np.zeros((30, 40), np.uint16)))
    data = json.loads(writer.write().read_text())
    assert data["source"] == "x" and len(data["frames"]) == 2
    first = data["frames"][0]
    assert (first["index"], first["stamp_ns"]) == (2, 123)
    assert first["tracks"][0] == {
        "id": 4, "score": 0.93, "moving": True, "status": "visible", "box": [5, 5, 15, 10],
        "area": 50, "velocity": [12.5, -3.0], "age": 6, "hits": 5,
    }
    assert first["tracks"][1]["status"] == "lost" and first["tracks"][1]["area"] == 0
    assert data["frames"][1]["tracks"] == []


def test_even_sample_spans_the_stream_within_capacity() -> None:
    built: list[int] = []
    sample = EvenSample(8)
    for i in range(100):
        sample.offer(i, lambda i=i: built.append(i) or i)
    keys = [key for _, key, _ in sample.items]
    assert 4 <= len(keys) <= 8 and keys[0] == 0 and keys[-1] >= 50
    steps = np.diff(keys)
    assert np.all(steps == steps[0])  # evenly spaced
    assert len(built) < 100  # items are only made when kept
