"""The `movseg` node: camera images in, instance masks, tracks, overlay and diagnostics out.

The subscription callback only admits a message (checks its fields and a compressed image's
header, ros/admission.py), timestamps it and hands it to a drop-oldest queue; one worker thread
decodes, runs the pipeline and publishes, so a slow pipeline costs dropped frames (counted)
rather than a growing backlog or stale outputs, and a malformed message is counted as bad, never
as dropped. Frames that never reached the pipeline are a gap before the next one (Frame.gap_before):
a near-online pipeline ends its clips there rather than join frames that are not consecutive. When
no frame comes for `flush_after` seconds, the worker hands over the frames such a pipeline holds.
Strings from messages and files are escaped and cut before they are logged.
It is a managed (lifecycle) node: configure builds the pipeline and starts the worker, activate
subscribes the inputs, deactivate unsubscribes, cleanup stops the worker. With `autostart` (the
default) it configures and activates itself, so nobody waits on an unconfigured node. A
`~/enable` (std_srvs/SetBool) service pauses and resumes processing; paused frames are counted
as skipped.
Run: `segment_node --ros-args --params-file config/segment.yaml -r image:=/camera/image_raw`
(with use_compressed, remap `image/compressed` too: `-r image:=X` leaves it alone; the launch file does both).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Union

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu, PointCloud2
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from movseg_ros.frame import Frame
from movseg_ros.geometry3d import sample_points
from movseg_ros.model_files import ModelFileError
from movseg_ros.output import FrameOutput
from movseg_ros.overlay import draw_overlay
from movseg_ros.pipeline import Pipeline
from movseg_ros.ros.admission import AdmissionLimits, admit
from movseg_ros.ros.drop_queue import DropOldestQueue
from movseg_ros.ros.outputs_3d import TrackMarkers, moving_points_cloud
from movseg_ros.ros.rate_gate import RateGate
from movseg_ros.ros.robot_inputs import DepthPairing, RotationSource
from movseg_ros.ros.image_codec import (BadImage, decode_compressed, decode_image, encode_image,
                                        encode_label_map, header_of, stamp_ns_of)
from movseg_ros.ros.node_stats import NodeStats
from movseg_ros.ros.params_file import ParamsFileError, check_params_files
from movseg_ros.ros.parameters import (NodeSettings, ParameterError, node_specs, read_settings, unknown_overrides,
                                       weights_parameter)
from movseg_ros.ros.tracks_msg import tracks_to_cloud
from movseg_ros.rotation_prior import rotation_from_rpy_degrees
from movseg_ros.safe_text import printable

NODE_NAME = "movseg"
LOG_THROTTLE_S = 5.0
LOG_TEXT_LIMIT = 400  # characters of one logged error text
PLAUSIBLE_AHEAD_S = 1.0  # a stamp at most this far ahead of the clock still gives a camera latency
IDLE_WAIT_S = 0.5  # the worker wakes at least this often to see whether it should stop
InputMsg = Union[Image, CompressedImage]


def input_qos(settings: NodeSettings) -> QoSProfile:
    """Camera subscription: sensor-data style (best effort, keep last) unless configured reliable."""
    reliability = ReliabilityPolicy.RELIABLE if settings.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


# IMU and odometry come at hundreds of Hz: keep enough of them between two worker wake-ups.
SENSOR_STREAM_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.BEST_EFFORT,
                               durability=DurabilityPolicy.VOLATILE)
# Outputs: reliable keep-last, so a subscriber keeping up gets every result and a slow one the newest.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


class SegmentNode(LifecycleNode):
    """Subscribes `image` (and optionally `image/compressed`); publishes under /movseg and /diagnostics."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        try:
            self.settings = read_settings(self)
        except ParameterError:
            self.destroy_node()
            raise
        for name in unknown_overrides(self, node_specs()):
            self.get_logger().warning(f"ignoring unknown parameter '{printable(name)}' (typo?)")
        self.limits = AdmissionLimits(self.settings.max_input_pixels, self.settings.pipeline)
        self.stats = NodeStats()
        self.pipeline: Pipeline | None = None
        self.queue: DropOldestQueue[tuple[InputMsg, float, int]] = DropOldestQueue(self.settings.queue_size)
        self._admitted = 0  # messages put in the queue, numbered so the worker knows which never reached it
        self._last_seq: int | None = None  # number of the last message that reached the pipeline (worker)
        self._flush_at: float | None = None  # monotonic time the held frames are flushed if no frame comes (worker)
        self._worker: threading.Thread | None = None
        self._subscriptions_in: list = []
        self._enabled = True
        self._publish_overlay = self.settings.publish_overlay
        self._rate_gate = RateGate(self.settings.max_rate)
        self._arrivals: dict[int, float] = {}
        self._index = 0
        self._loggers: dict[str, RcutilsLogger] = {}
        self._configure_error: ParameterError | None = None
        self.cameras = DepthPairing(self.settings.depth_max_stamp_diff)
        self.rotations = RotationSource(rotation_from_rpy_degrees(*self.settings.camera_from_sensor_rpy),
                                        self.settings.imu_enabled, self.settings.odom_enabled)
        self.markers = TrackMarkers()
        self._last_stamp: int | None = None

        self.pub_instances = self.create_publisher(Image, "/movseg/instances", OUTPUT_QOS)
        self.pub_tracks = self.create_publisher(PointCloud2, "/movseg/tracks", OUTPUT_QOS)
        self.pub_overlay = self.create_publisher(Image, "/movseg/overlay", OUTPUT_QOS)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_QOS)
        self.pub_points = self.create_publisher(PointCloud2, "/movseg/moving_points", OUTPUT_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, "/movseg/markers", OUTPUT_QOS)
        self._diag_timer = self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        if self.settings.autostart:
            self._autostart()

    def _autostart(self) -> None:
        """Configure and activate now; a pipeline that cannot be built is a ParameterError (exit 2)."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            error = self._configure_error or ParameterError("pipeline", "configuring the node failed")
            self.destroy_node()
            raise error
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.destroy_node()
            raise ParameterError("autostart", "activating the node failed")

    # --- lifecycle --------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the pipeline and start the worker."""
        try:
            self.pipeline = Pipeline(self.settings.pipeline)
        except ModelFileError as e:
            self._configure_error = ParameterError(weights_parameter(self.settings.pipeline, e.path),
                                                   printable(e, LOG_TEXT_LIMIT))
        except (ValueError, OSError, RuntimeError) as e:  # e.g. a missing module
            self._configure_error = ParameterError("pipeline", f"cannot build pipeline "
                                                   f"'{self.settings.pipeline.pipeline}': {printable(e, LOG_TEXT_LIMIT)}")
        if self._configure_error is not None:
            self.get_logger().error(f"cannot configure: {self._configure_error}")
            return TransitionCallbackReturn.FAILURE
        self._warm_up()
        self.queue = DropOldestQueue(self.settings.queue_size)
        self._index = 0
        self._last_seq = None
        self._flush_at = None
        self._worker = threading.Thread(target=self._work, name="movseg-worker", daemon=True)
        self._worker.start()
        self.get_logger().info(f"configured: pipeline '{self.pipeline.name}' on {self.pipeline.device}; "
                               f"queue {self.settings.queue_size}")
        return TransitionCallbackReturn.SUCCESS

    def _warm_up(self) -> None:
        """The pipeline's per-size set-up on a built-in stream of warmup_size, before any camera frame; a failure
        is logged and left to the first frame (which then does the set-up, or fails as that frame)."""
        width, height = self.settings.warmup_size
        if width == 0:
            return
        start = time.monotonic()
        try:
            frames = self.pipeline.warm_up(width, height)
        except Exception as e:  # noqa: BLE001 - the node still runs; the camera's frames show what is wrong
            self._log("warm_up").warning(f"warm-up at {width}x{height} failed: {type(e).__name__}: "
                                         f"{printable(e, LOG_TEXT_LIMIT)}")
            return
        self.get_logger().info(f"warmed up at {width}x{height} ({frames} frames, {time.monotonic() - start:.1f} s)")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe the inputs: frames flow from now on."""
        qos = input_qos(self.settings)
        self._subscriptions_in = [self.create_subscription(Image, "image", self._on_image, qos)]
        if self.settings.use_compressed:
            self._subscriptions_in.append(self.create_subscription(CompressedImage, "image/compressed",
                                                                   self._on_image, qos))
        self._subscriptions_in += self._robot_subscriptions(qos)
        self.get_logger().info(
            f"active: input '{self.resolve_topic_name('image')}' ({self.settings.reliability}, depth "
            f"{self.settings.depth}){' + compressed' if self.settings.use_compressed else ''}")
        return super().on_activate(state)

    def _robot_subscriptions(self, qos: QoSProfile) -> list:
        """Depth, camera infos, IMU and odometry, as the parameters ask."""
        s = self.settings
        subs = []
        if s.camera_info_needed:
            subs.append(self.create_subscription(CameraInfo, "camera_info", self.cameras.add_colour_info, qos))
        if s.depth_enabled:
            subs.append(self.create_subscription(Image, "depth/image", self.cameras.add_depth, qos))
            subs.append(self.create_subscription(CameraInfo, "depth/camera_info", self.cameras.add_depth_info, qos))
        if s.imu_enabled:
            subs.append(self.create_subscription(Imu, "imu", self.rotations.add_imu, SENSOR_STREAM_QOS))
        if s.odom_enabled:
            subs.append(self.create_subscription(Odometry, "odom", self.rotations.add_odometry, SENSOR_STREAM_QOS))
        return subs

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe the inputs; the worker finishes what is queued."""
        for sub in self._subscriptions_in:
            self.destroy_subscription(sub)
        self._subscriptions_in = []
        self.get_logger().info("inactive: inputs unsubscribed")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker and let the pipeline go (configure builds a fresh one)."""
        self.stop()
        self.pipeline = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if state.label == "active":
            self.on_deactivate(state)
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """~/enable: false pauses processing (frames are counted as skipped), true resumes it."""
        self._enabled = bool(request.data)
        response.success = True
        response.message = "processing" if self._enabled else "paused: frames are counted as skipped"
        self.get_logger().info(f"~/enable {self._enabled}: {response.message}")
        return response

    # --- callbacks (thin) -------------------------------------------------------------------

    def _on_image(self, msg: InputMsg) -> None:
        arrival = time.monotonic()
        self.stats.on_received(arrival)
        if not self._enabled:
            self.stats.on_skipped()
            return
        try:
            admit(msg, self.limits)
        except BadImage as e:
            self._bad(e)
            return
        if not self._rate_gate.admit(stamp_ns_of(msg.header)):
            self.stats.on_skipped()  # max_rate: not a drop, so no gap before the next frame
            return
        self._admitted += 1
        self.queue.put((msg, arrival, self._admitted))

    def _bad(self, e: BadImage) -> None:
        """Count a refused message by its reason and say why (throttled per reason)."""
        self.stats.on_bad(e.kind)
        self._log(f"bad_input.{e.kind}").warning(f"skipping bad input ({e.kind}): {printable(e, LOG_TEXT_LIMIT)}",
                                                 throttle_duration_sec=LOG_THROTTLE_S)

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        for p in params:
            if p.name == "publish_overlay":
                self._publish_overlay = bool(p.value)
            elif p.name == "max_rate":
                self._rate_gate.set_rate(float(p.value))
            elif p.name == "diagnostics_period":
                self._diag_timer.cancel()
                self.destroy_timer(self._diag_timer)
                self._diag_timer = self.create_timer(float(p.value), self._publish_diagnostics)

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        pipeline = self.pipeline
        msg.status = [self.stats.status(f"{NODE_NAME}: segmentation",
                                        pipeline.name if pipeline else self.settings.pipeline.pipeline,
                                        pipeline.device if pipeline else "none", self.queue.dropped, len(self.queue),
                                        self._state_label(), pipeline.latency_frames if pipeline else 0)]
        self.pub_diagnostics.publish(msg)

    # --- worker -----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self.queue.closed:
            item = self.queue.get(timeout=self._idle_wait())
            try:
                if item is None:
                    self._flush_if_silent()
                else:
                    self._handle(*item)
            except Exception as e:  # noqa: BLE001 - the worker must outlive any one frame
                if self.queue.closed or not rclpy.ok(context=self.context):
                    return
                self._log("publish").error(f"publishing failed: {type(e).__name__}: {printable(e, LOG_TEXT_LIMIT)}",
                                           throttle_duration_sec=LOG_THROTTLE_S)

    def _idle_wait(self) -> float:
        """Seconds the worker waits for a frame: until held frames are due to be flushed, at most IDLE_WAIT_S."""
        if self._flush_at is None:
            return IDLE_WAIT_S
        return min(IDLE_WAIT_S, max(0.0, self._flush_at - time.monotonic()))

    def _flush_if_silent(self) -> None:
        """No frame for flush_after seconds: segment and publish the frames the pipeline holds, with their own
        headers. The next frame starts new clips with the same ids (the same camera, paused)."""
        if self._flush_at is None or time.monotonic() < self._flush_at or self.pipeline is None:
            return
        self._flush_at = None
        try:
            outputs = self.pipeline.finish()
        except Exception as e:  # noqa: BLE001 - the held frames are lost, the stream goes on
            self.pipeline.reset()
            self._log("failure").error(f"flushing the held frames failed: {type(e).__name__}: "
                                       f"{printable(e, LOG_TEXT_LIMIT)}; the next frame starts a new stream",
                                       throttle_duration_sec=LOG_THROTTLE_S)
            return
        if not outputs:
            return
        self.stats.on_flush()
        self._log("flush").info(f"no frame for {self.settings.flush_after:g} s: published the {len(outputs)} "
                                f"held frame(s)", throttle_duration_sec=LOG_THROTTLE_S)
        for out in outputs:
            self._publish(out)

    def _handle(self, msg: InputMsg, arrival: float, seq: int) -> None:
        try:
            image = decode_compressed(msg) if isinstance(msg, CompressedImage) else decode_image(msg)
        except BadImage as e:
            self._bad(e)
            return
        missing = 0 if self._last_seq is None else max(0, seq - self._last_seq - 1)  # dropped or undecodable
        self._last_seq = seq
        frame = self._frame(image, stamp_ns_of(msg.header), msg.header.frame_id, missing)
        self._index += 1
        self._arrivals[frame.index] = arrival
        try:
            outputs = self.pipeline.process(frame)
        except Exception as e:  # noqa: BLE001 - one bad frame must not stop the stream
            self.stats.on_failed()
            self._log("failure").error(f"pipeline failed on frame {frame.index}: {type(e).__name__}: "
                                       f"{printable(e, LOG_TEXT_LIMIT)}",
                                       throttle_duration_sec=LOG_THROTTLE_S)
            return
        reset, gap = self.pipeline.last_reset, self.pipeline.last_gap
        if reset is not None:
            self._log(f"reset.{reset.reason}").warning(f"stream reset ({reset.reason}): {reset.detail}",
                                                       throttle_duration_sec=LOG_THROTTLE_S)
        if gap is not None and self.pipeline.latency_frames > 0:
            self._log("gap").info(f"stream gap, clips end there: {gap.detail}", throttle_duration_sec=LOG_THROTTLE_S)
        self.stats.on_processed([reset.reason] if reset is not None else [], gap is not None)
        if self.pipeline.latency_frames > 0 and self.settings.flush_after > 0:
            self._flush_at = arrival + self.settings.flush_after
        for out in outputs:
            self._publish(out, reset is not None)
        if len(self._arrivals) > 1024:  # outputs that never came (near-online pipeline reset)
            for k in sorted(self._arrivals)[:-64]:
                del self._arrivals[k]

    def _frame(self, image: np.ndarray, stamp_ns: int, frame_id: str, gap_before: int) -> Frame:
        """The frame with what the robot knows at its stamp: registered depth and intrinsics, the rotation,
        and how many frames went missing just before it."""
        s = self.settings
        h, w = image.shape[:2]
        depth, k, rotation = None, None, None
        if s.depth_enabled:
            match = self.cameras.match(stamp_ns, w, h)
            depth, k = match.depth, match.intrinsics
            if match.problem is not None:
                self.stats.on_input_problem(f"depth {match.problem}")
                self._log(f"depth.{match.problem.replace(' ', '_')}").warning(
                    f"frame without 3D: {self.cameras.describe(match.problem)}", throttle_duration_sec=LOG_THROTTLE_S)
        elif s.camera_info_needed:
            k = self.cameras.colour_intrinsics(w, h)
        if (s.imu_enabled or s.odom_enabled) and self._last_stamp is not None and k is not None:
            rotation = self.rotations.frame_rotation(self._last_stamp, stamp_ns)
            if rotation is None:
                self.stats.on_input_problem("rotation missing")
        self._last_stamp = stamp_ns
        return Frame(image, stamp_ns, frame_id, self._index, depth=depth, intrinsics=k, rotation=rotation,
                     gap_before=gap_before)

    def _publish(self, out: FrameOutput, stream_reset: bool = False) -> None:
        """Every output topic for one frame, with its own header; `stream_reset` clears the markers first."""
        header = header_of(out.frame.stamp_ns, out.frame.frame_id)
        self.pub_instances.publish(encode_label_map(out.label_map, header))
        self.pub_tracks.publish(tracks_to_cloud(out.tracks, header))
        now = time.monotonic()
        arrival = self._arrivals.pop(out.frame.index, now)
        camera_latency = (self.get_clock().now().nanoseconds - out.frame.stamp_ns) * 1e-9
        plausible = -PLAUSIBLE_AHEAD_S <= camera_latency <= self.settings.pipeline.max_stamp_jump
        self.stats.on_published(now, now - arrival, camera_latency if plausible else None)
        if stream_reset and self.settings.depth_enabled:
            self.pub_markers.publish(self.markers.clear(header))
        if self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(self.markers.update(out.tracks, header))
        if self.pub_points.get_subscription_count() > 0:
            self.pub_points.publish(moving_points_cloud(self._moving_points(out), header))
        if self._publish_overlay and self.pub_overlay.get_subscription_count() > 0:
            overlay = draw_overlay(out.frame.image, out.label_map, out.tracks)
            self.pub_overlay.publish(encode_image(overlay, header, "bgr8"))

    def _moving_points(self, out: FrameOutput) -> np.ndarray:
        """[x, y, z, id] rows of the moving tracks' pixels with depth (none without depth)."""
        f = out.frame
        moving = [t.id for t in out.visible if t.moving]
        if f.depth is None or f.intrinsics is None or not moving:
            return np.zeros((0, 4), np.float32)
        return sample_points(out.label_map, moving, f.depth, f.intrinsics, self.settings.points_budget)

    def _log(self, topic: str) -> RcutilsLogger:
        """A child logger per problem kind, so throttling one kind never hides another."""
        if topic not in self._loggers:
            self._loggers[topic] = self.get_logger().get_child(topic)
        return self._loggers[topic]

    def _state_label(self) -> str:
        """The lifecycle state, and whether processing is paused by ~/enable."""
        label = self._state_machine.current_state[1]
        return label if self._enabled else f"{label}, paused"

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the worker; True if it ended within `timeout` seconds (or none was running)."""
        self.queue.close()
        if self._worker is None:
            return True
        self._worker.join(timeout)
        stopped = not self._worker.is_alive()
        self._worker = None if stopped else self._worker
        return stopped


def main(args: list[str] | None = None) -> int:
    """Entry point: spin until SIGINT/SIGTERM; exit 2 with one line on a bad parameter or params file."""
    try:
        check_params_files(sys.argv[1:] if args is None else args)
        rclpy.init(args=args)
    except ParamsFileError as e:
        print(f"[FATAL] [{NODE_NAME}]: {e}; not starting", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - rcl's own parse error for what the YAML check let through
        if "params file" not in str(e):
            raise
        print(f"[FATAL] [{NODE_NAME}]: {printable(str(e).splitlines()[0], LOG_TEXT_LIMIT)}; not starting",
              file=sys.stderr)
        return 2
    try:
        node = SegmentNode()
    except ParameterError as e:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"bad parameter, not starting: {e}")
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - a signal can shut the context down inside a wait
        if rclpy.ok():
            raise
    finally:
        if not node.stop():
            node.get_logger().error("worker did not stop within 5 s")
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
