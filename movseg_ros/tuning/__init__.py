"""`movseg tune`'s core, ROS-free: a search space of pipeline settings, a held-aside split of the
training sequences, and a seeded search that scores each candidate by DAVIS J on the rest."""

from movseg_ros.tuning.errors import TuneError
from movseg_ros.tuning.search import SearchSettings, TuneResult, tune
from movseg_ros.tuning.space import Dimension, SearchSpace, apply_settings, load_space
from movseg_ros.tuning.split import Split, named_split, split_sequences

__all__ = ["Dimension", "SearchSettings", "SearchSpace", "Split", "TuneError", "TuneResult", "apply_settings",
           "load_space", "named_split", "split_sequences", "tune"]
