"""/movseg/tracks: TrackState list -> PointCloud2 table -> structured array, field by field."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sensor_msgs")

from sensor_msgs.msg import PointField  # noqa: E402

from movseg_ros.output import TrackState, TrackStatus  # noqa: E402
from movseg_ros.ros.image_codec import header_of  # noqa: E402
from movseg_ros.ros.tracks_msg import TRACK_DTYPE, tracks_from_cloud, tracks_to_cloud  # noqa: E402

HEADER = header_of(42_000_000_123, "cam")


def make_tracks() -> list[TrackState]:
    mask = np.zeros((20, 30), bool)
    mask[3:9, 4:14] = True
    return [
        TrackState(id=7, mask=mask, box=(4, 3, 14, 9), score=0.93, moving=True, status=TrackStatus.VISIBLE,
                   age=12, hits=11, velocity=(15.5, -3.25)),
        TrackState(id=65535, mask=None, box=(1, 2, 3, 4), score=0.8, moving=False, status=TrackStatus.LOST,
                   age=30, hits=20, velocity=(0.0, 0.5)),
    ]


def test_round_trip_keeps_every_field() -> None:
    table = tracks_from_cloud(tracks_to_cloud(make_tracks(), HEADER))
    assert len(table) == 2
    a, b = table
    assert (a["id"], a["moving"], a["status"], a["area"], a["age"], a["hits"]) == (7, 1, 0, 60, 12, 11)
    assert (a["x0"], a["y0"], a["x1"], a["y1"]) == (4, 3, 14, 9)
    assert a["score"] == pytest.approx(0.93) and (a["vx"], a["vy"]) == (15.5, -3.25)
    assert (b["id"], b["moving"], b["status"], b["area"]) == (65535, 0, 1, 0)


def test_cloud_is_a_packed_little_endian_table_with_the_input_header() -> None:
    msg = tracks_to_cloud(make_tracks(), HEADER)
    assert msg.header == HEADER
    assert (msg.height, msg.width, msg.is_dense, msg.is_bigendian) == (1, 2, True, False)
    assert msg.point_step == 83 == TRACK_DTYPE.itemsize and msg.row_step == 166 and len(msg.data) == 166
    names = [f.name for f in msg.fields]
    assert names == ["id", "score", "moving", "status", "x0", "y0", "x1", "y1", "area", "vx", "vy", "age", "hits",
                     "x", "y", "z", "size_x", "size_y", "size_z", "vel_x", "vel_y", "vel_z", "has_3d"]
    types = {f.name: f.datatype for f in msg.fields}
    assert types["id"] == PointField.UINT32 and types["moving"] == PointField.UINT8
    assert types["x0"] == PointField.FLOAT32 and types["hits"] == PointField.UINT32
    assert all(f.count == 1 for f in msg.fields)
    assert [f.offset for f in msg.fields] == [0, 4, 8, 9, 10, 14, 18, 22, 26, 30, 34, 38, 42,
                                              46, 50, 54, 58, 62, 66, 70, 74, 78, 82]


def test_no_tracks_is_an_empty_table() -> None:
    msg = tracks_to_cloud([], HEADER)
    assert msg.width == 0 and len(msg.data) == 0
    table = tracks_from_cloud(msg)
    assert len(table) == 0 and "score" in table.dtype.names


def test_decoder_reads_big_endian_and_padded_tables() -> None:
    msg = tracks_to_cloud(make_tracks(), HEADER)
    table = tracks_from_cloud(msg)
    wide = np.zeros(2, np.dtype({"names": ["id", "score"], "formats": [">u4", ">f4"], "offsets": [0, 8], "itemsize": 16}))
    wide["id"], wide["score"] = table["id"], table["score"]
    msg.fields = [PointField(name="id", offset=0, datatype=PointField.UINT32, count=1),
                  PointField(name="score", offset=8, datatype=PointField.FLOAT32, count=1)]
    msg.is_bigendian, msg.point_step, msg.row_step, msg.data = True, 16, 32, wide.tobytes()
    back = tracks_from_cloud(msg)
    assert list(back["id"]) == [7, 65535] and back["score"][0] == pytest.approx(0.93)


def test_short_data_is_an_error() -> None:
    msg = tracks_to_cloud(make_tracks(), HEADER)
    msg.data = msg.data[:50]
    with pytest.raises(ValueError, match="bytes"):
        tracks_from_cloud(msg)


def test_3d_fields_are_filled_only_from_valid_geometry() -> None:
    from types import SimpleNamespace

    tracks = make_tracks()
    tracks[0].geometry = SimpleNamespace(valid=True, centroid=np.array([0.5, -0.25, 2.5]),
                                         extent=np.array([0.4, 0.3, 0.2]), velocity=np.array([1.0, 0.0, -0.5]))
    tracks[1].geometry = SimpleNamespace(valid=False, centroid=np.ones(3), extent=np.ones(3), velocity=np.ones(3))
    a, b = tracks_from_cloud(tracks_to_cloud(tracks, HEADER))
    assert (a["has_3d"], a["x"], a["y"], a["z"]) == (1, 0.5, -0.25, 2.5)
    assert (a["size_x"], a["size_y"], a["size_z"]) == pytest.approx((0.4, 0.3, 0.2))
    assert (a["vel_x"], a["vel_y"], a["vel_z"]) == (1.0, 0.0, -0.5)
    assert (b["has_3d"], b["x"], b["y"], b["z"], b["vel_x"]) == (0, 0, 0, 0, 0)
