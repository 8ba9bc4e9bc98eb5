"""Learned optical flow (RAFT) behind the FlowEstimator interface, its loss and its training pairs."""

from movseg_ros.learned_flow.loss import end_point_error, sequence_loss
from movseg_ros.learned_flow.raft import ARCHS, RaftFinalFlow, RaftFlow, RaftFlowConfig, RaftFlowError, build_raft

__all__ = ["ARCHS", "RaftFinalFlow", "RaftFlow", "RaftFlowConfig", "RaftFlowError", "build_raft",
           "end_point_error", "sequence_loss"]
