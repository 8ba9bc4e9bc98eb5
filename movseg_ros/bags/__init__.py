"""rosbag2 bags (sqlite3 and mcap) through `rosbags`, without rclpy: write frames, read images and labels."""
