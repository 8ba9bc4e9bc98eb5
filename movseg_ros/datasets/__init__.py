"""Data set readers (DAVIS, FBMS, KITTI-MOTS / MOTSChallenge, YouTube-VOS, image folders, videos)
and prediction writers (DAVIS PNGs, MOTS text), all ROS-free and lazy."""

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.registry import KINDS, detect_kind, open_dataset
from movseg_ros.datasets.sequence import VideoSequence

__all__ = ["DatasetError", "KINDS", "VideoSequence", "detect_kind", "open_dataset"]
