"""The demo: the real node, in its own process, segments the built-in scene over real topics.

A scene with a moving camera, an object that moves throughout, one that stops half-way and a
static object is played to the node on a camera topic; everything on /movseg/instances and
/movseg/tracks is recorded and checked against the scene's truth; a contact sheet, an overlay
video and a one-screen summary (also JSON) are written. With depth (the default; --no-depth turns
it off) the scene's metric depth and CameraInfo go with each frame, and the 3D outputs
(/movseg/tracks' 3D fields, /movseg/moving_points, /movseg/markers) are checked against its truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from movseg_ros.evaluation.davis_metrics import jaccard
from movseg_ros.output import TrackStatus
from movseg_ros.overlay import contact_sheet, draw_overlay, write_video
from movseg_ros.scene import Scene, SceneConfig, make_scene

IMAGE_TOPIC = "/movseg_demo/image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--frames", type=int, default=90, help="scene length in frames (default 90)")
    p.add_argument("--rate", type=float, default=15.0, help="camera rate in Hz (default 15)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--seed", type=int, default=0, help="scene seed")
    p.add_argument("--params-file", type=Path, help="node parameters (default: the installed config/segment.yaml)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of the table")
    p.add_argument("--no-depth", action="store_true", help="send no depth: 2D outputs only")


def run(args: argparse.Namespace) -> int:
    from movseg_ros.ros.node_session import NodeProcess, StreamClient, init_rclpy, random_domain, ros_env

    import rclpy

    scene = make_scene(SceneConfig(width=args.width, height=args.height, frames=args.frames,
                                   fps=args.rate, seed=args.seed, stop_frame=args.frames // 2))
    env = ros_env(random_domain())
    depth = [] if args.no_depth else [
        "-p", "depth.enabled:=true", "-r", f"camera_info:={IMAGE_TOPIC}/camera_info",
        "-r", f"depth/image:={IMAGE_TOPIC}/depth", "-r", f"depth/camera_info:={IMAGE_TOPIC}/depth/camera_info"]
    node = NodeProcess.start(env, args.params_file, remap=f"image:={IMAGE_TOPIC}", extra=depth)
    init_rclpy(env)
    client = StreamClient(IMAGE_TOPIC, "movseg_demo", with_3d=not args.no_depth)
    try:
        client.wait_connected(30.0, node)
        stamps, sent_at = _play(client, scene, args.rate, with_depth=not args.no_depth)
        client.wait_until(lambda got: all(s in got.instances and s in got.tracks for s in stamps), 10.0)
        time.sleep(1.5)  # one more diagnostics period
        exit_code = node.stop()
    except (RuntimeError, TimeoutError) as e:
        print(f"movseg demo: {e}\nnode log: {node.log_path}", file=sys.stderr)
        node.close(keep_log=True)
        return 1
    finally:
        client.close()
        rclpy.try_shutdown()
    summary = _summarise(scene, stamps, sent_at, client, exit_code, args)
    node.close()
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(_human(summary))
    return 0 if exit_code == 0 else 1


def _play(client: Any, scene: Scene, rate: float, with_depth: bool) -> tuple[list[int], dict[int, float]]:
    """Publish the scene at `rate` with wall-clock stamps (depth first); returns the stamps and send times."""
    stamps, sent_at = [], {}
    if with_depth:
        deadline = time.monotonic() + 10.0
        while client.depth.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    start = time.monotonic()
    for i, image in enumerate(tqdm(scene.frames, desc="playing scene", unit="frame", file=sys.stderr)):
        stamp = time.time_ns()
        if with_depth:
            client.publish_depth(scene.depth[i], scene.intrinsics, stamp, "demo_camera")
        sent_at[stamp] = time.monotonic()
        client.publish(image, stamp, "demo_camera")
        stamps.append(stamp)
        time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    return stamps, sent_at


def _summarise(scene: Scene, stamps: list[int], sent_at: dict[int, float], client: Any, exit_code: int,
               args: argparse.Namespace) -> dict[str, Any]:
    from movseg_ros.ros.image_codec import decode_label_map
    from movseg_ros.ros.tracks_msg import track_state_of, tracks_from_cloud

    got = client.got
    args.out.mkdir(parents=True, exist_ok=True)
    overlays, captions, latencies = [], [], []
    per_track: dict[int, dict[str, int]] = {}
    truth_iou: dict[str, list[float]] = {role: [] for role in scene.roles}
    truth_ids: dict[str, set[int]] = {role: set() for role in scene.roles}
    static_reported_moving = 0
    centroid_errors: dict[str, list[float]] = {role: [] for role in scene.roles}
    for i, stamp in enumerate(stamps):
        if stamp not in got.instances or stamp not in got.tracks:
            continue
        labels = decode_label_map(got.instances[stamp][0])
        table = tracks_from_cloud(got.tracks[stamp][0])
        latencies.append(1000.0 * (got.instance_times[stamp][0] - sent_at[stamp]))
        states = [track_state_of(row, labels) for row in table]
        for s in states:
            if s.status == TrackStatus.VISIBLE:
                rec = per_track.setdefault(s.id, {"first": i, "last": i, "moving": 0, "static": 0})
                rec["last"] = i
                rec["moving" if s.moving else "static"] += 1
        for role, oid in scene.roles.items():
            truth = scene.ids[i] == oid
            best = max(((jaccard(labels == s.id, truth), s) for s in states if s.mask is not None),
                       default=(0.0, None), key=lambda x: x[0])
            truth_iou[role].append(best[0])
            if best[1] is not None and best[0] >= 0.5:
                truth_ids[role].add(best[1].id)
                if role == "static" and best[1].moving:
                    static_reported_moving += 1
                row = table[table["id"] == best[1].id][0]
                if row["has_3d"]:
                    true = scene.centroids[i][oid]
                    centroid_errors[role].append(float(np.linalg.norm(
                        np.array([row["x"], row["y"], row["z"]]) - true) / true[2]))
        overlays.append(draw_overlay(scene.frames[i], labels, states))
        captions.append(f"frame {i}")
    diag = got.diagnostics[-1] if got.diagnostics else {}
    video = write_video(args.out / "overlay.mp4", overlays, args.rate) if overlays else None
    picks = np.linspace(0, len(overlays) - 1, min(12, len(overlays))).astype(int) if overlays else []
    sheet_path = args.out / "contact_sheet.png"
    if overlays:
        import cv2

        sheet = contact_sheet([overlays[k] for k in picks], columns=4, width=1280, captions=[captions[k] for k in picks])
        cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    lat = np.array(latencies) if latencies else np.array([np.nan])
    summary = {
        "frames_in": len(stamps), "frames_out": len(latencies),
        "node": {k: diag.get(k) for k in ("frames received", "frames processed", "frames dropped", "frames bad",
                                          "pipeline", "device")},
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                       "max": float(np.max(lat))},
        "tracks": {str(k): v for k, v in sorted(per_track.items())},
        "truth": {role: {"mean_iou": float(np.mean(v[2:])) if len(v) > 2 else 0.0,
                         "track_ids": sorted(truth_ids[role])} for role, v in truth_iou.items()},
        "static_object_reported_moving_frames": static_reported_moving,
        "3d": _summarise_3d(scene, stamps, got, centroid_errors) if not args.no_depth else None,
        "stop_frame": args.frames // 2, "rate_hz": args.rate, "resolution": f"{args.width}x{args.height}",
        "node_exit_code": exit_code,
        "files": {"overlay_video": str(video) if video else None, "contact_sheet": str(sheet_path)},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary



def _summarise_3d(scene: Scene, stamps: list[int], got: Any, errors: dict[str, list[float]]) -> dict[str, Any]:
    """Centroid errors against the truth, and where the published moving points fall in the truth."""
    from visualization_msgs.msg import Marker

    from movseg_ros.ros.tracks_msg import tracks_from_cloud

    k, static = scene.intrinsics, scene.roles["static"]
    points = on_static = 0
    for i, stamp in enumerate(stamps):
        for msg in got.points.get(stamp, []):
            pts = tracks_from_cloud(msg)
            if not len(pts):
                continue
            u = np.clip(np.round(k.fx * pts["x"] / pts["z"] + k.cx).astype(int), 0, k.width - 1)
            v = np.clip(np.round(k.fy * pts["y"] / pts["z"] + k.cy).astype(int), 0, k.height - 1)
            points += len(pts)
            on_static += int((scene.ids[i][v, u] == static).sum())
    actions = [m.action for a in got.markers for m in a.markers]
    return {
        "centroid_error_of_distance": {role: {"median": float(np.median(e)) if e else None, "frames": len(e)}
                                       for role, e in errors.items()},
        "moving_points": {"clouds": sum(len(v) for v in got.points.values()), "points": points,
                          "on_the_static_object": on_static},
        "markers": {"added": actions.count(Marker.ADD), "deleted": actions.count(Marker.DELETE)},
    }


def _human(s: dict[str, Any]) -> str:
    n = s["node"]
    lines = [
        f"movseg demo: built-in scene {s['resolution']} at {s['rate_hz']:g} Hz through the real node "
        f"(pipeline {n['pipeline']} on {n['device']})",
        f"  frames in {s['frames_in']}   frames out {s['frames_out']}   node: received {n['frames received']}, "
        f"processed {n['frames processed']}, dropped {n['frames dropped']}, bad {n['frames bad']}",
        f"  latency camera -> /movseg/instances   p50 {s['latency_ms']['p50']:.1f} ms   p95 {s['latency_ms']['p95']:.1f} ms",
        "  tracks (frames visible: moving / static):",
    ]
    for tid, t in s["tracks"].items():
        lines.append(f"    id {tid:>3}: frames {t['first']}-{t['last']}   moving {t['moving']}   static {t['static']}")
    lines.append(f"  against the scene's truth (the 'stopper' stops at frame {s['stop_frame']}):")
    for role, t in s["truth"].items():
        lines.append(f"    {role:<8} mean IoU {t['mean_iou']:.2f}   track ids {t['track_ids']}")
    lines.append(f"    static object reported as moving in {s['static_object_reported_moving_frames']} frames")
    if s.get("3d"):
        d = s["3d"]
        lines.append("  3D (scene depth as 32FC1 with its CameraInfo):")
        for role, e in d["centroid_error_of_distance"].items():
            median = "n/a" if e["median"] is None else f"{100 * e['median']:.2f} % of the distance"
            lines.append(f"    {role:<8} centroid error median {median} over {e['frames']} frames")
        mp = d["moving_points"]
        lines.append(f"    /movseg/moving_points: {mp['clouds']} clouds, {mp['points']} points, "
                     f"{mp['on_the_static_object']} on the static object")
        lines.append(f"    /movseg/markers: {d['markers']['added']} added, {d['markers']['deleted']} deleted")
    lines.append(f"  wrote {s['files']['contact_sheet']}, {s['files']['overlay_video']}, summary.json")
    return "\n".join(lines)
