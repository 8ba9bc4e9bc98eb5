"""The ROS 2 layer: the only part of movseg_ros that imports rclpy."""
