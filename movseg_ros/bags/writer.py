"""Write rosbag2 bags: frames (and ground-truth label maps) at a fixed rate, or raw CDR recordings."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from movseg_ros.bags.errors import BagError
from movseg_ros.bags.image_msgs import encode_image, ros2_typestore, serialize
from movseg_ros.bags.topics import IMAGE_MSGTYPE, IMAGE_TOPIC, TRUTH_TOPIC

STORAGES: dict[str, StoragePlugin] = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
START_NS = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC: a realistic wall-clock epoch for bag stamps


@dataclass
class BagMakeConfig:
    """How frames become a bag: rate, storage, topic names, frame id and the first stamp."""

    rate_hz: float = 30.0
    storage: str = "sqlite3"  # "sqlite3" | "mcap"
    image_topic: str = IMAGE_TOPIC
    truth_topic: str = TRUTH_TOPIC
    frame_id: str = "camera"
    start_ns: int = START_NS

    def __post_init__(self) -> None:
        check_storage(self.storage)
        if not (self.rate_hz > 0 and np.isfinite(self.rate_hz)):
            raise ValueError(f"rate_hz must be a positive number of frames per second, got {self.rate_hz}")
        if self.start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, got {self.start_ns}")
        for name in ("image_topic", "truth_topic"):
            topic = getattr(self, name)
            if not topic.startswith("/") or topic.endswith("/") or " " in topic:
                raise ValueError(f"{name} must be an absolute ROS topic name like /camera/image_raw, got '{topic}'")
        if self.image_topic == self.truth_topic:
            raise ValueError(f"image_topic and truth_topic must differ, both are '{self.image_topic}'")

    def stamp_ns(self, index: int) -> int:
        """Header (and bag) stamp of frame `index`: start_ns + round(index * 1e9 / rate_hz)."""
        return self.start_ns + round(index * 1e9 / self.rate_hz)


@dataclass(frozen=True)
class BagSummary:
    """What write_image_bag wrote."""

    path: Path
    storage: str
    frames: int
    truth_frames: int
    duration_ns: int  # last stamp - first stamp
    image_topic: str
    truth_topic: str
    start_ns: int = START_NS
    rate_hz: float = 30.0
    width: int = 0
    height: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def check_storage(storage: str) -> StoragePlugin:
    """The rosbags storage plugin for a storage name, or a ValueError naming the choices."""
    if storage not in STORAGES:
        raise ValueError(f"unknown storage '{storage}' (choose {' or '.join(STORAGES)})")
    return STORAGES[storage]


def write_image_bag(path: str | Path, frames: Iterable[tuple[np.ndarray, np.ndarray | None]],
                    config: BagMakeConfig | None = None, overwrite: bool = False) -> BagSummary:
    """Write (RGB image, label map or None) pairs as rgb8 images and mono16 truth with equal stamps.

    Frame i is stamped config.stamp_ns(i) in its header and as its bag timestamp. All frames must
    have the size of the first. A failed write removes the half-written bag.
    """
    config = config or BagMakeConfig()
    path = Path(path)
    prepare_new_bag(path, overwrite)
    store = ros2_typestore()
    count = truth_count = 0
    size: tuple[int, int] | None = None
    writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=check_storage(config.storage))
    try:
        writer.open()
        image_conn = writer.add_connection(config.image_topic, IMAGE_MSGTYPE, typestore=store)
        truth_conn = None
        for index, (image, truth) in enumerate(frames):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise BagError(path, f"frame {index}: need HxWx3 uint8 RGB, "
                                     f"got shape {image.shape} dtype {image.dtype}")
            size = size or image.shape[:2]
            if image.shape[:2] != size:
                raise BagError(path, f"frame {index} is {image.shape[1]}x{image.shape[0]}, "
                                     f"but frame 0 is {size[1]}x{size[0]}; all frames must have one size")
            stamp = config.stamp_ns(index)
            msg = encode_image(store, image, "rgb8", stamp, config.frame_id)
            writer.write(image_conn, stamp, serialize(store, msg, IMAGE_MSGTYPE))
            count += 1
            if truth is None:
                continue
            if truth.shape[:2] != size:
                raise BagError(path, f"frame {index}: truth is {truth.shape[1]}x{truth.shape[0]} "
                                     f"but the image is {size[1]}x{size[0]}")
            try:
                label_msg = encode_image(store, truth, "mono16", stamp, config.frame_id)
            except ValueError as e:
                raise BagError(path, f"frame {index}: bad truth label map: {e}") from None
            if truth_conn is None:
                truth_conn = writer.add_connection(config.truth_topic, IMAGE_MSGTYPE, typestore=store)
            writer.write(truth_conn, stamp, serialize(store, label_msg, IMAGE_MSGTYPE))
            truth_count += 1
        if count == 0:
            raise BagError(path, "no frames to write")
        writer.close()
    except BaseException as e:
        writer.abort()
        shutil.rmtree(path, ignore_errors=True)  # never leave a bag without metadata behind
        if isinstance(e, WriterError):
            raise BagError(path, f"cannot write bag: {e}") from e
        raise
    height, width = size or (0, 0)
    return BagSummary(path, config.storage, count, truth_count, config.stamp_ns(count - 1) - config.start_ns,
                      config.image_topic, config.truth_topic, config.start_ns, config.rate_hz, width, height)


def prepare_new_bag(path: Path, overwrite: bool) -> None:
    """Make room for a new bag at `path`: refuse an existing path unless overwrite, and never delete a non-bag."""
    if not path.exists() and not path.is_symlink():
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise BagError(path, "already exists; not overwriting (pass overwrite=True / --overwrite to replace it)")
    if not path.is_dir() or path.is_symlink():
        raise BagError(path, "exists and is not a bag folder; refusing to replace it")
    entries = list(path.iterdir())
    if entries and not (path / "metadata.yaml").is_file():
        raise BagError(path, "exists and is not a rosbag2 bag (no metadata.yaml); refusing to delete it")
    shutil.rmtree(path)


class BagRecorder:
    """Record raw CDR messages (e.g. from rclpy subscriptions made with raw=True) into a new bag.

    rclpy and rosbags share the CDR serialization, so the bytes go to the bag as they are.
    `write` may be called from any thread and does not block: every storage call runs on one
    thread owned by the recorder (sqlite3 connections may only be used by the thread that made
    them). Use as a context manager: leaving the block closes the bag (also on an exception, so
    what was recorded stays readable).
    """

    def __init__(self, path: str | Path, storage: str = "sqlite3", overwrite: bool = False) -> None:
        self.path = Path(path)
        self.storage = storage
        plugin = check_storage(storage)
        prepare_new_bag(self.path, overwrite)
        self._store = ros2_typestore()
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bag-recorder")
        self._writer: Writer | None = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []  # writes that failed on the storage thread
        try:
            self._thread.submit(self._writer.open).result()
        except WriterError as e:
            self._thread.shutdown()
            raise BagError(self.path, f"cannot create bag: {e}") from e

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic and its type (like "sensor_msgs/msg/Image") before writing to it."""
        with self._lock:
            writer = self._open_writer()
            if topic in self._connections:
                known = self._connections[topic].msgtype
                if known != msgtype:
                    raise BagError(self.path, f"topic {topic} was added as {known}, cannot add it again as {msgtype}")
                return
            if msgtype not in self._store.types:
                raise BagError(self.path, f"message type '{msgtype}' is unknown to the ROS 2 typestore "
                                          f"(expected a standard type such as {IMAGE_MSGTYPE})")
            self._connections[topic] = self._thread.submit(
                writer.add_connection, topic, msgtype, typestore=self._store).result()
            self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, rawdata: bytes | memoryview) -> None:
        """Queue one serialized message with its bag timestamp for the storage thread."""
        with self._lock:
            writer = self._open_writer()
            connection = self._connections.get(topic)
            if connection is None:
                raise BagError(self.path, f"topic {topic} was not added (added: {sorted(self._connections) or 'none'})")
            self._thread.submit(self._write, writer, connection, topic, int(timestamp_ns), bytes(rawdata))

    def _write(self, writer: Writer, connection: Any, topic: str, timestamp_ns: int, rawdata: bytes) -> None:
        try:
            writer.write(connection, timestamp_ns, rawdata)
            self.counts[topic] += 1
        except Exception as e:  # noqa: BLE001 - one failed write is reported, the recording goes on
            self.errors.append(f"{topic} at {timestamp_ns}: {type(e).__name__}: {e}")

    def close(self) -> None:
        """Write what is queued and finish the bag (writes metadata.yaml); closing twice is harmless."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    self._thread.submit(writer.close).result()
                finally:
                    self._thread.shutdown()

    @property
    def closed(self) -> bool:
        return self._writer is None

    def _open_writer(self) -> Writer:
        if self._writer is None:
            raise BagError(self.path, "recorder is closed")
        return self._writer

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
