"""Launch the movseg node on a camera topic with the installed default parameters.

    ros2 launch movseg_ros segment.launch.py image_topic:=/camera/image_raw
    ros2 launch movseg_ros segment.launch.py params_file:=/path/to/my.yaml use_shm_profile:=false

Unless use_shm_profile is false, FASTDDS_DEFAULT_PROFILES_FILE is set to the package's
config/fastdds_shm.xml (32 MB shared memory + loopback UDP) so camera-sized images arrive;
camera drivers on the same machine should run with the same profile.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "movseg_ros"


def generate_launch_description() -> LaunchDescription:
    """The node `movseg` (executable segment_node) with its topic remaps and parameters file."""
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "segment.yaml")
    shm_profile = os.path.join(share, "config", "fastdds_shm.xml")
    image_topic = LaunchConfiguration("image_topic")

    return LaunchDescription([
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic of the camera"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML with the node's parameters (movseg: ros__parameters: ...)"),
        DeclareLaunchArgument("use_shm_profile", default_value="true",
                              description="set FASTDDS_DEFAULT_PROFILES_FILE to the package's shared-memory profile"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", shm_profile,
                               condition=IfCondition(LaunchConfiguration("use_shm_profile"))),
        Node(
            package=PACKAGE,
            executable="segment_node",
            name="movseg",
            parameters=[LaunchConfiguration("params_file")],
            remappings=[
                ("image", image_topic),
                ("image/compressed", [image_topic, "/compressed"]),  # substitutions concatenate
            ],
            output="screen",
        ),
    ])
