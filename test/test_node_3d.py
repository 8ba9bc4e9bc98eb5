"""The real node with depth: 3D track fields against the scene's exact truth, moving points, markers.

The built-in scene now has metric depth and intrinsics; it is played to the node in its own process
with a registered 32FC1 depth image and CameraInfo per frame.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from visualization_msgs.msg import Marker  # noqa: E402

from movseg_ros.ros.image_codec import decode_label_map  # noqa: E402
from movseg_ros.ros.tracks_msg import tracks_from_cloud  # noqa: E402
from movseg_ros.scene import SceneConfig, make_scene  # noqa: E402
from ros_helpers import NodeProcess, RosHarness, stop_cleanly  # noqa: E402

pytestmark = [pytest.mark.ros]
TOPIC = "/depth_test/image"
FRAMES = 40


class Harness3D(RosHarness):
    def __init__(self) -> None:
        super(RosHarness, self).__init__(TOPIC, "movseg_depth_test", with_3d=True)


@pytest.fixture(scope="module")
def run(rclpy_session, node_env):
    """The scene sent frame by frame with depth (each output awaited), then a stamp going back."""
    scene = make_scene(SceneConfig(frames=FRAMES, stop_frame=FRAMES // 2))
    node = NodeProcess.start(node_env, remap=f"image:={TOPIC}", extra=[
        "-p", "depth.enabled:=true", "-p", "diagnostics_period:=0.2",
        "-r", f"camera_info:={TOPIC}/camera_info", "-r", f"depth/image:={TOPIC}/depth",
        "-r", f"depth/camera_info:={TOPIC}/depth/camera_info"])
    harness = Harness3D()
    stamps = list(itertools.islice(itertools.count(1_700_000_000_000_000_000, 66_666_667), FRAMES))
    try:
        harness.wait_connected(90.0, node)
        deadline = time.monotonic() + 10.0
        while (harness.depth.get_subscription_count() == 0 or harness.camera_info.get_subscription_count() == 0
               or harness.node.count_publishers("/movseg/moving_points") == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        for i, stamp in enumerate(stamps):
            harness.publish_depth(scene.depth[i], scene.intrinsics, stamp, "scene_camera")
            time.sleep(0.02)  # depth first, as a driver's aligned depth usually is
            harness.publish(scene.frames[i], stamp, "scene_camera")
            harness.wait_output(stamp, timeout=30.0)
        harness.wait_until(lambda got: stamps[-1] in got.points, 10.0)
        back = stamps[0] - 1_000_000_000  # no depth for it, and a reset: every marker goes
        harness.publish(scene.frames[0], back, "scene_camera")
        harness.wait_output(back, timeout=30.0)
        harness.wait_until(lambda got: any(m.action == Marker.DELETEALL for a in got.markers for m in a.markers), 10.0)
        diag = harness.wait_diagnostics(lambda d: int(d.get("robot input (depth stale)", "0")) >= 1, timeout=10.0)
        yield scene, stamps, harness.got, diag, node
    finally:
        code, log = stop_cleanly(node, harness)
        assert code == 0, log


def rows_for(got, scene, stamps, role: str) -> list[tuple[int, np.void]]:
    """(frame, table row) of the track that best covers `role`'s truth mask (IoU >= 0.5), frame by frame."""
    oid = scene.roles[role]
    out = []
    for i, stamp in enumerate(stamps):
        labels = decode_label_map(got.instances[stamp][0])
        table = tracks_from_cloud(got.tracks[stamp][0])
        truth = scene.ids[i] == oid
        best, best_iou = None, 0.0
        for row in table:
            mask = labels == row["id"]
            iou = (mask & truth).sum() / max((mask | truth).sum(), 1)
            if iou > best_iou:
                best, best_iou = row, iou
        if best is not None and best_iou >= 0.5:
            out.append((i, best))
    return out


@pytest.mark.timeout(300)
def test_moving_objects_get_3d_centroids_within_5_percent_of_the_distance(run) -> None:
    scene, stamps, got, _, _ = run
    for role in ("mover", "stopper"):
        rows = [(i, r) for i, r in rows_for(got, scene, stamps, role) if r["has_3d"]]
        assert len(rows) >= FRAMES // 2, f"{role}: 3D in {len(rows)} of {FRAMES} frames"
        truth = [scene.centroids[i][scene.roles[role]] for i, _ in rows]
        errors = [np.linalg.norm(np.array([r["x"], r["y"], r["z"]]) - t) / t[2] for (_, r), t in zip(rows, truth)]
        assert np.median(errors) <= 0.05, f"{role}: median centroid error {np.median(errors):.3f} of the distance"
        sizes = np.array([[r["size_x"], r["size_y"], r["size_z"]] for _, r in rows])
        assert (sizes[:, :2] > 0.05).all() and (sizes[:, :2] < 2.0).all()


@pytest.mark.timeout(300)
def test_points_of_the_static_object_are_never_published_as_moving(run) -> None:
    scene, stamps, got, _, _ = run
    k = scene.intrinsics
    static, counted = scene.roles["static"], 0
    for i, stamp in enumerate(stamps):
        for msg in got.points.get(stamp, []):
            pts = tracks_from_cloud(msg)
            assert msg.header.frame_id == "scene_camera" and len(pts) <= 5000
            if not len(pts):
                continue
            u = np.clip(np.round(k.fx * pts["x"] / pts["z"] + k.cx).astype(int), 0, k.width - 1)
            v = np.clip(np.round(k.fy * pts["y"] / pts["z"] + k.cy).astype(int), 0, k.height - 1)
            assert not (scene.ids[i][v, u] == static).any(), f"frame {i}: static object's points published as moving"
            counted += len(pts)
    assert counted > 1000, "no moving points were published"


@pytest.mark.timeout(300)
def test_markers_box_each_track_and_all_go_at_a_reset(run) -> None:
    _, stamps, got, diag, _ = run
    table = tracks_from_cloud(got.tracks[stamps[-1]][0])
    with_3d = {int(r["id"]) for r in table if r["has_3d"]}
    last_adds = {}
    for array in got.markers:
        for m in array.markers:
            if m.action == Marker.ADD and m.type == Marker.CUBE:
                last_adds[m.id] = m
            elif m.action == Marker.DELETE:
                last_adds.pop(m.id, None)
            elif m.action == Marker.DELETEALL:
                last_adds.clear()
    assert with_3d, "no track with 3D at the end of the scene"
    assert any(a.markers and a.markers[0].action == Marker.DELETEALL for a in got.markers)
    assert not last_adds, "markers left after the stream reset"
    assert int(diag["robot input (depth stale)"]) >= 1  # the frame sent without depth is counted


@pytest.mark.timeout(300)
def test_imu_rates_give_each_frame_its_rotation_and_gaps_are_counted(rclpy_session, node_env) -> None:
    from sensor_msgs.msg import Imu

    from movseg_ros.ros.image_codec import header_of
    from movseg_ros.ros.node_session import DEEP_RELIABLE

    scene = make_scene(SceneConfig(frames=12))
    topic = "/imu_test/image"
    node = NodeProcess.start(node_env, remap=f"image:={topic}", extra=[
        "-p", "imu.enabled:=true", "-p", "camera_from_sensor_rpy:=[0.0, 0.0, 0.0]", "-p", "diagnostics_period:=0.2",
        "-r", f"camera_info:={topic}/camera_info", "-r", f"imu:={topic}/imu"])
    harness = RosHarness(topic, "movseg_imu_test")
    imu = harness.node.create_publisher(Imu, f"{topic}/imu", DEEP_RELIABLE)
    period = 66_666_667
    stamps = [1_700_000_000_000_000_000 + i * period for i in range(len(scene.frames))]

    def send_imu(t0: int, t1: int, w: np.ndarray) -> None:
        for t in range(t0, t1 + 5_000_000, 5_000_000):  # 200 Hz, through the frame's stamp
            msg = Imu(header=header_of(t, "imu"))
            msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(v) for v in w)
            imu.publish(msg)

    try:
        harness.wait_connected(90.0, node)
        deadline = time.monotonic() + 10.0
        while (imu.get_subscription_count() == 0 or harness.camera_info.get_subscription_count() == 0) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        from movseg_ros.ros.node_session import camera_info_of

        for i, stamp in enumerate(stamps[:8]):
            harness.camera_info.publish(camera_info_of(scene.intrinsics, header_of(stamp, "scene_camera")))
            if i:
                send_imu(stamps[i - 1], stamp, scene.angular_velocity[i])
            time.sleep(0.05)
            harness.publish(scene.frames[i], stamp, "scene_camera")
            harness.wait_output(stamp, timeout=30.0)
        covered = harness.wait_diagnostics(lambda d: int(d["frames processed"]) >= 8 and d["queue depth"] == "0")
        assert int(covered.get("robot input (rotation missing)", "0")) == 0, covered
        for stamp in stamps[8:]:  # the IMU goes quiet: each frame is counted, and still segmented
            harness.publish(scene.frames[stamps.index(stamp)], stamp, "scene_camera")
            harness.wait_output(stamp, timeout=30.0)
        gaps = harness.wait_diagnostics(lambda d: int(d.get("robot input (rotation missing)", "0")) >= 4)
        assert int(gaps["frames processed"]) >= 12
    finally:
        code, log = stop_cleanly(node, harness)
        assert code == 0, log


def test_the_pipeline_takes_the_frames_rotation_out_of_track_velocities() -> None:
    from movseg_ros.frame import Frame
    from movseg_ros.pipeline import Pipeline, PipelineConfig

    # a pure pan (no zoom, no roll); the stopper stops at frame 6 and is then only seen to move by the camera
    scene = make_scene(SceneConfig(frames=16, stop_frame=6, pan_speed=6.0, zoom_amplitude=0.0, roll_degrees=0.0))
    speeds = {}
    for use_rotation in (False, True):
        pipe = Pipeline(PipelineConfig.from_dict({"geometric": {"appearance": "none"}}))  # motion alone suffices here
        found = []
        for i in range(len(scene.frames)):
            frame = Frame(scene.frames[i], (i + 1) * 33_333_333, "c", i, depth=scene.depth[i],
                          intrinsics=scene.intrinsics, rotation=scene.rotations[i] if use_rotation else None)
            for out in pipe.process(frame):
                truth = scene.ids[i] == scene.roles["stopper"]
                for t in out.tracks:
                    g = t.geometry
                    if i >= 9 and g is not None and g.valid and t.mask is not None and (t.mask & truth).sum() > 0.5 * truth.sum():
                        found.append(float(np.linalg.norm(g.velocity)))
        speeds[use_rotation] = float(np.median(found)) if found else None
    assert speeds[False] is not None and speeds[True] is not None, speeds
    assert speeds[True] < 0.5 * speeds[False], speeds
