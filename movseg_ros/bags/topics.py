"""Default topic names and the message types the bag tools read and write."""

from __future__ import annotations

IMAGE_TOPIC = "/camera/image_raw"  # camera frames, sensor_msgs/msg/Image rgb8
TRUTH_TOPIC = "/camera/ground_truth"  # mono16 label maps: 0 = background, instance ids otherwise
INSTANCES_TOPIC = "/movseg/instances"  # the node's output: mono16 label maps with the input image's header
TRACKS_TOPIC = "/movseg/tracks"  # the node's tracks table (sensor_msgs/msg/PointCloud2)
OVERLAY_TOPIC = "/movseg/overlay"  # the node's bgr8 picture of its output

IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
COMPRESSED_MSGTYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_MSGTYPES = (IMAGE_MSGTYPE, COMPRESSED_MSGTYPE)

# topics that carry label maps or pictures of results, never camera input
NOT_CAMERA_TOPICS = (TRUTH_TOPIC, INSTANCES_TOPIC, OVERLAY_TOPIC)
