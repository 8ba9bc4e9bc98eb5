"""/movseg/tracks: the tracks of one frame as a sensor_msgs/PointCloud2 used as a typed table.

PointCloud2 is a standard message any ROS 2 install and bag reader can decode, and its field
list makes the table self-describing. One record ("point") per track; height = 1,
width = number of tracks, is_dense = true, little-endian, fields packed with no padding
(point_step = 83 bytes). The header is the input frame's header (stamp and frame_id).

Fields, in order:
    id      uint32   track id; equals the pixel value of this track in /movseg/instances
    score   float32  detection confidence of the track's latest sighting, 0..1
    moving  uint8    1 if the object moves relative to the world in this frame, else 0
    status  uint8    0 = visible in this frame, 1 = lost (kept for up to tracker.t_inactive frames)
    x0      float32  box left, pixels (inclusive)
    y0      float32  box top, pixels (inclusive)
    x1      float32  box right, pixels (exclusive)
    y1      float32  box bottom, pixels (exclusive); a lost track keeps its last seen box
    area    uint32   mask area in pixels in this frame (0 when lost)
    vx      float32  box-centre velocity in the image, x, pixels per second
    vy      float32  box-centre velocity in the image, y, pixels per second
    age     uint32   frames since the track started
    hits    uint32   frames in which the track was seen
    x, y, z float32  3D centroid of the track's visible pixels in the camera's optical frame (x right,
                     y down, z forward), metres; 0 when has_3d is 0
    size_x, size_y, size_z  float32  extent of the object's points along x, y, z, metres
    vel_x, vel_y, vel_z     float32  centroid velocity, metres per second (0 on its first 3D sighting)
    has_3d  uint8    1 when the frame had registered depth and enough of the mask had valid depth, else 0
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from movseg_ros.output import TrackState, TrackStatus
from movseg_ros.ros.image_codec import copy_header

# (name, numpy little-endian type, PointField datatype), in wire order
TRACK_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("id", "<u4", PointField.UINT32),
    ("score", "<f4", PointField.FLOAT32),
    ("moving", "u1", PointField.UINT8),
    ("status", "u1", PointField.UINT8),
    ("x0", "<f4", PointField.FLOAT32),
    ("y0", "<f4", PointField.FLOAT32),
    ("x1", "<f4", PointField.FLOAT32),
    ("y1", "<f4", PointField.FLOAT32),
    ("area", "<u4", PointField.UINT32),
    ("vx", "<f4", PointField.FLOAT32),
    ("vy", "<f4", PointField.FLOAT32),
    ("age", "<u4", PointField.UINT32),
    ("hits", "<u4", PointField.UINT32),
    ("x", "<f4", PointField.FLOAT32),
    ("y", "<f4", PointField.FLOAT32),
    ("z", "<f4", PointField.FLOAT32),
    ("size_x", "<f4", PointField.FLOAT32),
    ("size_y", "<f4", PointField.FLOAT32),
    ("size_z", "<f4", PointField.FLOAT32),
    ("vel_x", "<f4", PointField.FLOAT32),
    ("vel_y", "<f4", PointField.FLOAT32),
    ("vel_z", "<f4", PointField.FLOAT32),
    ("has_3d", "u1", PointField.UINT8),
)
TRACK_DTYPE = np.dtype([(name, t) for name, t, _ in TRACK_FIELDS])  # packed: no align

# PointField datatype -> numpy type (without byte order)
_POINTFIELD_TYPES = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}


def tracks_table(tracks: list[TrackState]) -> np.ndarray:
    """The tracks as a structured array of TRACK_DTYPE records."""
    table = np.zeros(len(tracks), TRACK_DTYPE)
    for row, t in zip(table, tracks):
        row["id"], row["score"] = t.id, t.score
        row["moving"], row["status"] = int(t.moving), int(t.status)
        row["x0"], row["y0"], row["x1"], row["y1"] = t.box
        row["area"] = t.area
        row["vx"], row["vy"] = t.velocity
        row["age"], row["hits"] = t.age, t.hits
        g = t.geometry
        if g is not None and g.valid:
            row["x"], row["y"], row["z"] = g.centroid
            row["size_x"], row["size_y"], row["size_z"] = g.extent
            row["vel_x"], row["vel_y"], row["vel_z"] = g.velocity
            row["has_3d"] = 1
    return table


def tracks_to_cloud(tracks: list[TrackState], header: Header) -> PointCloud2:
    """A PointCloud2 table of the tracks with a copy of `header`."""
    table = tracks_table(tracks)
    fields = [PointField(name=name, offset=TRACK_DTYPE.fields[name][1], datatype=dt, count=1)
              for name, _, dt in TRACK_FIELDS]
    return PointCloud2(
        header=copy_header(header), height=1, width=len(tracks), fields=fields, is_bigendian=False,
        point_step=TRACK_DTYPE.itemsize, row_step=TRACK_DTYPE.itemsize * len(tracks),
        data=table.tobytes(), is_dense=True,
    )


def tracks_from_cloud(msg: PointCloud2) -> np.ndarray:
    """The table of a PointCloud2 as a structured array, with the fields the message declares."""
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in _POINTFIELD_TYPES:
            raise ValueError(f"field '{f.name}' has unknown PointField datatype {f.datatype}")
        base = _POINTFIELD_TYPES[f.datatype]
        fmt = base if base.endswith("1") else order + base
        names.append(f.name)
        formats.append(fmt if f.count <= 1 else (fmt, (f.count,)))
        offsets.append(f.offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": int(msg.point_step)})
    count = int(msg.width) * int(msg.height)
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < count * dtype.itemsize:
        raise ValueError(f"PointCloud2 has {data.size} bytes, need {count} x {dtype.itemsize}")
    return data[: count * dtype.itemsize].view(dtype).copy()


def track_state_of(row: np.void, labels: np.ndarray) -> TrackState:
    """A decoded /movseg/tracks record as a TrackState, its mask taken from the label map (for drawing)."""
    status = TrackStatus(int(row["status"]))
    mask = (labels == int(row["id"])) if status == TrackStatus.VISIBLE else None
    return TrackState(int(row["id"]), mask, (int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"])),
                      float(row["score"]), bool(row["moving"]), status, int(row["age"]), int(row["hits"]),
                      (float(row["vx"]), float(row["vy"])))
