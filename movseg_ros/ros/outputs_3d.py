"""The 3D outputs: /movseg/moving_points (PointCloud2 for Nav2) and /movseg/markers (RViz).

Both are in the camera's optical frame with the input frame's header; robots move them with TF
as usual. A marker's id is its track's id; when a track ends its markers are deleted in the next
MarkerArray, so RViz never shows a stale box.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from movseg_ros.output import TrackState
from movseg_ros.ros.image_codec import copy_header

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("id", "<u4")])
POINT_FIELDS = [PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
                PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
                PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
                PointField(name="id", offset=12, datatype=PointField.UINT32, count=1)]
BOX_NS, LABEL_NS = "movseg_tracks", "movseg_ids"
MOVING_RGBA = (1.0, 0.25, 0.1, 0.5)
STOPPED_RGBA = (0.2, 0.5, 1.0, 0.5)


def moving_points_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """An unorganised PointCloud2 (x, y, z float32 metres; id uint32 track id) from (N, 4) [x, y, z, id] rows."""
    table = np.zeros(len(points), POINT_DTYPE)
    if len(points):
        table["x"], table["y"], table["z"] = points[:, 0], points[:, 1], points[:, 2]
        table["id"] = points[:, 3].astype(np.uint32)
    return PointCloud2(header=copy_header(header), height=1, width=len(table), fields=POINT_FIELDS,
                       is_bigendian=False, point_step=POINT_DTYPE.itemsize, row_step=POINT_DTYPE.itemsize * len(table),
                       data=table.tobytes(), is_dense=True)


class TrackMarkers:
    """Builds each frame's MarkerArray: a box and an id label per track with 3D, deletes for tracks gone."""

    def __init__(self) -> None:
        self._shown: set[int] = set()

    def update(self, tracks: list[TrackState], header: Header) -> MarkerArray:
        """Markers for the tracks that have a valid 3D position now; DELETE for those shown before and not now."""
        out = MarkerArray()
        now: set[int] = set()
        for t in tracks:
            g = t.geometry
            if g is None or not g.valid:
                continue
            now.add(t.id)
            out.markers.append(_box(t, header))
            out.markers.append(_label(t, header))
        for gone in sorted(self._shown - now):
            for ns in (BOX_NS, LABEL_NS):
                out.markers.append(Marker(header=copy_header(header), ns=ns, id=gone, action=Marker.DELETE))
        self._shown = now
        return out

    def clear(self, header: Header) -> MarkerArray:
        """DELETEALL, for a stream reset: nothing shown belongs to the new stream."""
        self._shown = set()
        return MarkerArray(markers=[Marker(header=copy_header(header), ns=ns, action=Marker.DELETEALL)
                                    for ns in (BOX_NS, LABEL_NS)])


def _box(t: TrackState, header: Header) -> Marker:
    g = t.geometry
    m = Marker(header=copy_header(header), ns=BOX_NS, id=t.id, type=Marker.CUBE, action=Marker.ADD,
               frame_locked=False, lifetime=Duration(sec=0))
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in g.centroid)
    m.pose.orientation.w = 1.0
    m.scale.x, m.scale.y, m.scale.z = (max(float(v), 0.01) for v in g.extent)
    m.color = ColorRGBA(r=0.0, g=0.0, b=0.0, a=0.0)
    m.color.r, m.color.g, m.color.b, m.color.a = MOVING_RGBA if t.moving else STOPPED_RGBA
    return m


def _label(t: TrackState, header: Header) -> Marker:
    g = t.geometry
    m = Marker(header=copy_header(header), ns=LABEL_NS, id=t.id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
               text=f"{t.id} {'M' if t.moving else 'S'}", lifetime=Duration(sec=0))
    m.pose.position.x, m.pose.position.y = float(g.centroid[0]), float(g.centroid[1] - g.extent[1] / 2 - 0.1)
    m.pose.position.z = float(g.centroid[2])
    m.pose.orientation.w = 1.0
    m.scale.z = 0.15
    m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 1.0, 1.0, 1.0
    return m
