"""Accelerator backends (TensorRT, torch.compile, eager) behind one interface, and their engine cache."""

from movseg_ros.accel.backends import CHAIN, AcceleratedModule, accelerate, backend_available, select_backend
from movseg_ros.accel.cache import EngineCache, model_hash
from movseg_ros.accel.config import AcceleratorConfig
from movseg_ros.accel.errors import AcceleratorConfigError, EngineCacheError
from movseg_ros.accel.per_shape import PerShapeAccelerated

__all__ = ["CHAIN", "AcceleratedModule", "AcceleratorConfig", "AcceleratorConfigError", "EngineCache",
           "EngineCacheError", "PerShapeAccelerated", "accelerate", "backend_available", "model_hash", "select_backend"]
