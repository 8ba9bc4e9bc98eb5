"""/movseg/moving_points and /movseg/markers built from tracks with 3D geometry."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy")

from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from movseg_ros.output import TrackState, TrackStatus  # noqa: E402
from movseg_ros.ros.outputs_3d import BOX_NS, LABEL_NS, TrackMarkers, moving_points_cloud  # noqa: E402
from movseg_ros.ros.tracks_msg import tracks_from_cloud  # noqa: E402

HEADER = Header(frame_id="camera_color_optical_frame")


def track(tid: int, moving: bool = True, valid: bool = True) -> TrackState:
    geometry = SimpleNamespace(valid=valid, centroid=np.array([0.1 * tid, 0.0, 2.0]), extent=np.array([0.5, 0.8, 0.3]),
                               velocity=np.zeros(3))
    return TrackState(tid, None, (0, 0, 1, 1), 0.9, moving, TrackStatus.VISIBLE, 3, 3, (0.0, 0.0), geometry)


def test_moving_points_are_an_xyz_float_cloud_with_ids() -> None:
    pts = np.array([[0.5, -0.2, 2.0, 3], [0.6, -0.1, 2.1, 7]], np.float32)
    msg = moving_points_cloud(pts, HEADER)
    assert msg.header.frame_id == HEADER.frame_id and (msg.height, msg.width, msg.point_step) == (1, 2, 16)
    assert [(f.name, f.offset) for f in msg.fields] == [("x", 0), ("y", 4), ("z", 8), ("id", 12)]
    table = tracks_from_cloud(msg)  # any PointCloud2 reader decodes it by its fields
    assert table["id"].tolist() == [3, 7] and table["z"].tolist() == pytest.approx([2.0, 2.1])
    assert moving_points_cloud(np.zeros((0, 4), np.float32), HEADER).width == 0


def test_markers_follow_tracks_and_are_deleted_when_a_track_ends() -> None:
    markers = TrackMarkers()
    first = markers.update([track(1), track(2, moving=False), track(3, valid=False)], HEADER)
    adds = [(m.ns, m.id, m.type) for m in first.markers]
    assert adds == [(BOX_NS, 1, Marker.CUBE), (LABEL_NS, 1, Marker.TEXT_VIEW_FACING),
                    (BOX_NS, 2, Marker.CUBE), (LABEL_NS, 2, Marker.TEXT_VIEW_FACING)]
    box = first.markers[0]
    assert (box.pose.position.x, box.pose.position.z, box.scale.y) == pytest.approx((0.1, 2.0, 0.8))
    assert first.markers[1].text == "1 M" and first.markers[3].text == "2 S"
    second = markers.update([track(2)], HEADER)
    deletes = [(m.ns, m.id) for m in second.markers if m.action == Marker.DELETE]
    assert deletes == [(BOX_NS, 1), (LABEL_NS, 1)]
    assert [(m.ns, m.id) for m in second.markers if m.action == Marker.ADD] == [(BOX_NS, 2), (LABEL_NS, 2)]
    third = markers.update([], HEADER)
    assert [(m.ns, m.id, m.action) for m in third.markers] == [(BOX_NS, 2, Marker.DELETE), (LABEL_NS, 2, Marker.DELETE)]
    assert markers.update([], HEADER).markers == []
    assert all(m.action == Marker.DELETEALL for m in markers.clear(HEADER).markers)
