"""A full pass over a bag for `movseg bag info`: rates, header-stamp order, image sizes, truth pairing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from movseg_ros.bags.errors import BagError
from movseg_ros.bags.image_msgs import ros2_typestore, stamp_ns_of
from movseg_ros.bags.reader import BagInfo, describe, info_of, open_reader, select_image_topic
from movseg_ros.bags.topics import IMAGE_MSGTYPE, IMAGE_MSGTYPES, INSTANCES_TOPIC, TRUTH_TOPIC


@dataclass
class TopicSurvey:
    """One topic after reading every message: rate from bag timestamps, order of header stamps, first image."""

    name: str
    msgtype: str
    count: int = 0
    first_log_ns: int | None = None
    last_log_ns: int | None = None
    rate_hz: float | None = None  # (count - 1) / (last - first bag timestamp)
    has_header: bool = False
    stamps_back: int = 0  # header stamps earlier than the one before
    stamps_repeated: int = 0  # header stamps equal to the one before
    undecodable: int = 0  # messages that could not be deserialized
    encoding: str | None = None  # first image message: encoding (or compressed format)
    width: int | None = None
    height: int | None = None

    @property
    def stamps_monotonic(self) -> bool | None:
        """True when header stamps strictly increase; None when the type has no header."""
        return (self.stamps_back == 0 and self.stamps_repeated == 0) if self.has_header else None


@dataclass(frozen=True)
class Pairing:
    """How the camera images' header stamps match a label topic's (ground truth or the node's output)."""

    image_topic: str
    label_topic: str
    images: int
    with_label: int
    without_label: int
    labels_without_image: int


@dataclass
class BagSurvey:
    """The index (BagInfo) plus what only reading every message tells."""

    info: BagInfo
    topics: list[TopicSurvey]
    image_topic: str | None
    pairings: list[Pairing] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        topics = []
        for t in self.topics:
            row = asdict(t)
            row["stamps_monotonic"] = t.stamps_monotonic
            topics.append(row)
        return {"info": self.info.to_dict(), "image_topic": self.image_topic, "topics": topics,
                "pairings": [asdict(p) for p in self.pairings]}


def survey_bag(path: str | Path, image_topic: str | None = None, truth_topic: str = TRUTH_TOPIC,
               progress: bool = False) -> BagSurvey:
    """Read every message of the bag at `path` once; a storage failure anywhere is a BagError."""
    path = Path(path)
    store = ros2_typestore()
    reader = open_reader(path)
    try:
        info = info_of(reader, path)
        chosen = _camera_topic(info, image_topic)
        topics = {t.name: TopicSurvey(t.name, t.msgtype) for t in info.topics}
        last_stamp: dict[str, int] = {}
        stamps: dict[str, list[int]] = {name: [] for name in (chosen, truth_topic, INSTANCES_TOPIC) if name}
        messages = tqdm(reader.messages(), total=info.message_count, desc=path.name, unit="msg",
                        disable=not progress or None)
        seen = 0
        try:
            for connection, log_ns, raw in messages:
                seen += 1
                t = topics[connection.topic]
                t.count += 1
                t.first_log_ns = log_ns if t.first_log_ns is None else min(t.first_log_ns, log_ns)
                t.last_log_ns = log_ns if t.last_log_ns is None else max(t.last_log_ns, log_ns)
                if connection.msgtype not in store.types:
                    continue
                try:
                    msg = store.deserialize_cdr(raw, connection.msgtype)
                except Exception:
                    t.undecodable += 1
                    continue
                if not hasattr(msg, "header"):
                    continue
                _note_stamp(t, stamp_ns_of(msg), last_stamp)
                if t.name in stamps:
                    stamps[t.name].append(stamp_ns_of(msg))
                if connection.msgtype in IMAGE_MSGTYPES and t.encoding is None:
                    _note_first_image(t, msg)
        except BagError:
            raise
        except Exception as e:
            raise BagError(path, f"storage error after {seen} messages, truncated or corrupt? ({describe(e)})") from e
    finally:
        reader.close()
    for t in topics.values():
        if t.count > 1 and t.last_log_ns > t.first_log_ns:
            t.rate_hz = (t.count - 1) * 1e9 / (t.last_log_ns - t.first_log_ns)
    pairings = [_pair(chosen, stamps[chosen], label, stamps[label])
                for label in dict.fromkeys((truth_topic, INSTANCES_TOPIC))
                if chosen and label in topics and topics[label].msgtype == IMAGE_MSGTYPE and label != chosen]
    return BagSurvey(info, list(topics.values()), chosen, pairings)


def _camera_topic(info: BagInfo, requested: str | None) -> str | None:
    """The camera topic for pairing: the requested one (must exist), else the obvious one, else None."""
    if requested is not None:
        return select_image_topic(info, requested)
    try:
        return select_image_topic(info, None)
    except BagError:
        return None  # no (or no single) camera topic: describe the bag without pairing


def _note_stamp(t: TopicSurvey, stamp: int, last_stamp: dict[str, int]) -> None:
    t.has_header = True
    previous = last_stamp.get(t.name)
    if previous is not None:
        t.stamps_back += stamp < previous
        t.stamps_repeated += stamp == previous
    last_stamp[t.name] = stamp


def _note_first_image(t: TopicSurvey, msg: object) -> None:
    if hasattr(msg, "encoding"):
        t.encoding = str(msg.encoding)
        t.width, t.height = int(msg.width), int(msg.height)
    else:  # CompressedImage: the size needs decoding, which `bag info` does not do
        t.encoding = str(msg.format) or "compressed"


def _pair(image_topic: str, images: list[int], label_topic: str, labels: list[int]) -> Pairing:
    """Image messages whose header stamp has a label message, and label stamps with no image."""
    label_set, image_set = set(labels), set(images)
    both = sum(stamp in label_set for stamp in images)
    return Pairing(image_topic, label_topic, len(images), both, len(images) - both, len(label_set - image_set))
