"""movseg_ros: segment and track every independently moving object in a camera stream."""

__version__ = "0.1.0"
