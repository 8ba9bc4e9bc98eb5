"""Read rosbag2 bags: what they hold, their camera images in order, and label maps by stamp.

A bag is a rosbag2 folder (metadata.yaml + .db3 or .mcap files) or a single .db3 / .mcap file.
Every failure, from a missing path to a corrupt message, is a BagError naming the bag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.rosbag2 import Reader

from movseg_ros.bags.errors import BagError
from movseg_ros.bags.image_msgs import (ImageDecodeError, decode_image, decode_label_map, ros2_typestore,
                                        stamp_ns_of)
from movseg_ros.bags.topics import IMAGE_MSGTYPE, IMAGE_MSGTYPES, IMAGE_TOPIC, NOT_CAMERA_TOPICS

STORAGE_SUFFIXES = {".db3": "sqlite3", ".mcap": "mcap"}
ON_ERROR = ("raise", "skip")


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, message type and message count."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagInfo:
    """What a bag holds, from its index: storage, time span (bag timestamps) and topics."""

    path: Path
    storage: str  # "sqlite3" | "mcap"
    start_ns: int  # first bag timestamp (0 when empty)
    end_ns: int  # last bag timestamp (0 when empty)
    duration_ns: int  # end_ns - start_ns
    message_count: int
    topics: list[TopicInfo]
    size_bytes: int = 0  # on disk, all storage files together

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out

    def topic(self, name: str) -> TopicInfo | None:
        return next((t for t in self.topics if t.name == name), None)

    def image_topics(self) -> list[str]:
        """Topics of sensor_msgs/msg/Image or CompressedImage, in bag order."""
        return [t.name for t in self.topics if t.msgtype in IMAGE_MSGTYPES]

    def describe_topics(self) -> str:
        """'name (type, N msgs), ...' for error messages."""
        return ", ".join(f"{t.name} ({t.msgtype}, {t.count} msgs)" for t in self.topics) or "none"


@dataclass(frozen=True)
class BagImage:
    """One decoded image message: HxWx3 uint8 RGB, or HxW uint16 for mono16 / 16UC1."""

    index: int  # position on its topic, 0-based, in bag order
    stamp_ns: int  # header stamp
    log_ns: int  # bag (receive/record) timestamp
    frame_id: str
    encoding: str  # the message's encoding, or the compressed format
    image: np.ndarray


@dataclass
class ReadReport:
    """What a read got: decoded messages, the ones it could not decode, and why it stopped early."""

    read: int = 0
    bad: list[tuple[int, int | None, str]] = field(default_factory=list)  # (index, header stamp or None, problem)
    duplicates: int = 0  # label maps dropped because an earlier one had the same stamp (keep-first)
    stopped: str | None = None  # the storage error that ended a skip-mode read early

    @property
    def partial(self) -> bool:
        """True when anything in the topic was not delivered."""
        return bool(self.bad) or self.stopped is not None

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "bad": [list(b) for b in self.bad], "duplicates": self.duplicates,
                "stopped": self.stopped, "partial": self.partial}


def open_reader(path: str | Path) -> Reader:
    """An open rosbags Reader, or a BagError saying why the path is not a readable bag."""
    path = Path(path)
    check_bag_path(path)
    try:
        reader = Reader(path)
        reader.open()
    except Exception as e:  # rosbags, apsw, struct and yaml errors alike: the bag is unreadable
        raise BagError(path, f"cannot open bag, truncated or corrupt? ({describe(e)})") from e
    return reader


def check_bag_path(path: Path) -> None:
    """Errors for the common non-bags: a missing path, a folder without metadata.yaml, another file."""
    if not path.exists():
        raise BagError(path, "no such bag (file or folder does not exist)")
    if path.is_dir():
        if not (path / "metadata.yaml").is_file():
            storage_files = sorted(p.name for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
            hint = (f"; it holds {', '.join(storage_files)}: pass one of those files to read it without metadata"
                    if storage_files else "")
            raise BagError(path, f"not a rosbag2 bag: no metadata.yaml in this folder{hint}")
        return
    if path.suffix not in STORAGE_SUFFIXES:
        raise BagError(path, "not a bag: expected a rosbag2 folder with metadata.yaml, or a .db3 or .mcap file")
    if path.stat().st_size == 0:
        raise BagError(path, "empty file, not a bag")


def describe(error: BaseException) -> str:
    """An exception as 'Type: message' for wrapping into a BagError."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def storage_of(path: Path) -> str:
    """'sqlite3' or 'mcap': from metadata.yaml for a folder, from the suffix for a file."""
    if path.is_file():
        return STORAGE_SUFFIXES[path.suffix]
    try:
        meta = yaml.safe_load((path / "metadata.yaml").read_text(encoding="utf-8"))
        return str(meta["rosbag2_bagfile_information"]["storage_identifier"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise BagError(path, f"bad metadata.yaml ({describe(e)})") from e


def storage_files(path: Path) -> list[Path]:
    """The files that hold the messages."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and p.name != "metadata.yaml")


def info_of(reader: Reader, path: Path) -> BagInfo:
    """BagInfo of an open reader."""
    try:
        topics = [TopicInfo(name, t.msgtype or "/".join(sorted({c.msgtype for c in t.connections})), t.msgcount)
                  for name, t in reader.topics.items()]
        count = int(reader.message_count)
        start = int(reader.start_time) if count else 0
        end = int(reader.end_time) - 1 if count else 0  # rosbags' end_time is one past the last message
    except Exception as e:
        raise BagError(path, f"cannot read the bag index, truncated or corrupt? ({describe(e)})") from e
    order = {c.topic: c.id for c in reversed(reader.connections)}
    topics.sort(key=lambda t: order.get(t.name, 0))
    size = sum(p.stat().st_size for p in storage_files(path))
    return BagInfo(path, storage_of(path), start, end, end - start, count, topics, size)


def bag_info(path: str | Path) -> BagInfo:
    """What the bag at `path` (a rosbag2 folder or a .db3 / .mcap file) holds, from its index."""
    path = Path(path)
    reader = open_reader(path)
    try:
        return info_of(reader, path)
    finally:
        reader.close()


def select_image_topic(info: BagInfo, requested: str | None = None) -> str:
    """The camera topic to read: `requested` (must exist and be an image topic), else the only candidate.

    Candidates are Image / CompressedImage topics other than ground truth, /movseg/instances and
    /movseg/overlay; with several, the default /camera/image_raw wins if present.
    """
    images = info.image_topics()
    if requested is not None:
        topic = info.topic(requested)
        if topic is None:
            raise BagError(info.path, f"topic {requested} is not in the bag; it has: {info.describe_topics()}")
        if topic.msgtype not in IMAGE_MSGTYPES:
            raise BagError(info.path, f"topic {requested} has type {topic.msgtype}, "
                                      f"not an image type ({' or '.join(IMAGE_MSGTYPES)})")
        return requested
    candidates = [t for t in images if t not in NOT_CAMERA_TOPICS]
    if len(candidates) == 1:
        return candidates[0]
    if IMAGE_TOPIC in candidates:
        return IMAGE_TOPIC
    if not candidates:
        raise BagError(info.path, f"no camera image topic in the bag; it has: {info.describe_topics()}")
    raise BagError(info.path, f"several image topics, pick one: {', '.join(candidates)}")


def check_topic(info: BagInfo, topic: str, msgtypes: tuple[str, ...]) -> TopicInfo:
    """The topic's info, or a BagError if it is absent (listing the topics) or of another type."""
    found = info.topic(topic)
    if found is None:
        raise BagError(info.path, f"topic {topic} is not in the bag; it has: {info.describe_topics()}")
    if found.msgtype not in msgtypes:
        raise BagError(info.path, f"topic {topic} has type {found.msgtype}, expected {' or '.join(msgtypes)}")
    return found


class _TopicMessages:
    """Deserialized messages of one topic in bag order, with errors mapped to BagError or to the report."""

    def __init__(self, path: str | Path, topic: str, msgtypes: tuple[str, ...], on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got '{on_error}'")
        self.path = Path(path)
        self.topic = topic
        self.on_error = on_error
        self.report = ReadReport()
        self._reader = open_reader(self.path)
        self._started = False
        try:
            self.info = info_of(self._reader, self.path)
            self.count = check_topic(self.info, topic, msgtypes).count
        except BaseException:
            self._reader.close()
            raise

    def close(self) -> None:
        """Release the bag (also done when the messages run out)."""
        self._release()

    def _release(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def messages(self) -> Iterator[tuple[int, int, object | None, str | None]]:
        """(index, log_ns, message or None, problem or None) per message of the topic."""
        store = ros2_typestore()
        connections = [c for c in self._reader.connections if c.topic == self.topic]
        index = 0
        try:
            stream = self._reader.messages(connections=connections)
            while True:
                try:
                    connection, log_ns, raw = next(stream)
                except StopIteration:
                    break
                except Exception as e:
                    problem = f"storage error after {index} messages on {self.topic}, truncated or corrupt? " \
                              f"({describe(e)})"
                    if self.on_error == "raise":
                        raise BagError(self.path, problem) from e
                    self.report.stopped = problem
                    break
                try:
                    msg = store.deserialize_cdr(raw, connection.msgtype)
                except Exception as e:
                    yield index, log_ns, None, f"cannot deserialize {connection.msgtype} ({describe(e)})"
                else:
                    yield index, log_ns, msg, None
                index += 1
        finally:
            self._release()

    def fail(self, index: int, log_ns: int, stamp_ns: int | None, problem: str) -> None:
        """A message that cannot be used: raise (default) or count it in the report (skip)."""
        if self.on_error == "raise":
            where = f"stamp {stamp_ns} ns" if stamp_ns is not None else f"bag time {log_ns} ns"
            raise BagError(self.path, f"{self.topic}: message {index} ({where}): {problem}")
        self.report.bad.append((index, stamp_ns, problem))


def _decoded(messages: _TopicMessages, decode: Callable[[Any], np.ndarray], what: str
             ) -> Iterator[tuple[int, int, int, Any, np.ndarray]]:
    """(index, bag time, header stamp, message, decoded array) of every message `decode` accepts;
    the others go to `messages.fail` (raised or recorded, as its on_error says)."""
    for index, log_ns, msg, problem in messages.messages():
        stamp = stamp_ns_of(msg) if msg is not None else None
        if msg is None:
            messages.fail(index, log_ns, stamp, problem or "undecodable")
            continue
        try:
            array = decode(msg)
        except ImageDecodeError as e:
            messages.fail(index, log_ns, stamp, f"bad {what} ({e.kind}): {e}")
            continue
        messages.report.read += 1
        yield index, log_ns, stamp, msg, array


class ImageStream(_TopicMessages):
    """Iterator of BagImage over one image topic; `.report` says what was read and what was bad."""

    def __init__(self, path: str | Path, topic: str, on_error: str = "raise") -> None:
        super().__init__(path, topic, IMAGE_MSGTYPES, on_error)
        self._images = self._decode()

    def __iter__(self) -> ImageStream:
        return self

    def __next__(self) -> BagImage:
        return next(self._images)

    def __len__(self) -> int:
        """Messages on the topic (from the index; a skip-mode read may deliver fewer)."""
        return self.count

    def close(self) -> None:
        self._images.close()
        super().close()

    def __enter__(self) -> ImageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self) -> Iterator[BagImage]:
        for index, log_ns, stamp, msg, image in _decoded(self, decode_image, "image"):
            encoding = str(getattr(msg, "encoding", None) or getattr(msg, "format", ""))
            yield BagImage(index, stamp, log_ns, str(msg.header.frame_id), encoding, image)


def read_images(path: str | Path, topic: str, on_error: str = "raise") -> ImageStream:
    """The images of `topic` in bag order (opens the bag now: a bad bag or topic fails here).

    on_error="raise" (default) raises BagError at the first undecodable message, naming its index
    and stamp; "skip" leaves it out and records it in `.report.bad` so results can be marked partial.
    """
    return ImageStream(path, topic, on_error)


class LabelMaps(dict):
    """Label maps (HxW uint16) keyed by header stamp, with the ReadReport of the read."""

    def __init__(self, report: ReadReport, info: BagInfo, topic: str) -> None:
        super().__init__()
        self.report = report
        self.info = info
        self.topic = topic


def read_label_maps(path: str | Path, topic: str, on_error: str = "raise") -> LabelMaps:
    """All label maps of `topic` (mono16, 16UC1 or mono8 Images) keyed by header stamp.

    A later message with an already-seen stamp is dropped (keep-first) and counted in
    `.report.duplicates`. on_error as for read_images.
    """
    messages = _TopicMessages(path, topic, (IMAGE_MSGTYPE,), on_error)
    out = LabelMaps(messages.report, messages.info, topic)
    for _, _, stamp, _, labels in _decoded(messages, decode_label_map, "label map"):
        if stamp in out:
            messages.report.duplicates += 1
            continue
        out[stamp] = labels
    return out
