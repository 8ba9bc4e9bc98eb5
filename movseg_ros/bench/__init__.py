"""Benchmarks of the ROS-free core."""
