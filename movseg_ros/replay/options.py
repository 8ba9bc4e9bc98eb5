"""What a replay reads, runs and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from movseg_ros.bags.topics import TRUTH_TOPIC
from movseg_ros.pipeline import PipelineConfig


@dataclass(frozen=True)
class ReplayOptions:
    """One replay of one bag; fields marked live are used by the live mode only."""

    bag: Path
    out: Path
    image_topic: str | None = None  # None: the bag's only image topic
    truth_topic: str = TRUTH_TOPIC  # scored when present in the bag
    config: PipelineConfig = field(default_factory=PipelineConfig)
    max_frames: int | None = None
    missing_as_empty: bool = False  # score frames without an output as empty masks
    speed: float = 1.0  # live: publish at this multiple of the recorded rate
    params_file: Path | None = None  # live: node parameters (default: the installed segment.yaml)
    storage: str = "sqlite3"  # live: storage of the bag the node's outputs are recorded into
    settle_s: float = 10.0  # live: how long to wait for the node to finish after the last frame

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"replay speed must be positive, got {self.speed}")
        if self.max_frames is not None and self.max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {self.max_frames}")
        if self.storage not in ("sqlite3", "mcap"):
            raise ValueError(f"storage must be sqlite3 or mcap, got {self.storage!r}")
