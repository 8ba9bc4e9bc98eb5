"""ament_python package movseg_ros; also a plain pip package whose core needs no ROS."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "movseg_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "opencv-contrib-python-headless>=4.8",
        "scipy>=1.10",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "psutil>=5.9",
        "rosbags>=0.11",
        "pycocotools>=2.0.7",
        "scikit-image>=0.22",
        "pillow>=9",
        "tabulate>=0.9",  # trackeval's own dependency: trackeval is installed with --no-deps (see Makefile)
    ],
    extras_require={
        "ros": ["ros-rclpy[fastrtps]", "ros-sensor-msgs", "ros-std-msgs", "ros-diagnostic-msgs", "ros-builtin-interfaces",
                "ros-lifecycle-msgs", "ros-std-srvs", "ros-geometry-msgs", "ros-nav-msgs", "ros-visualization-msgs"],
        "test": ["pytest>=7", "pytest-timeout>=2"],
        # exact pins: an unpinned torch pulls the newest release, which torchvision's ops do not match
        "ml": ["torch==2.14.1", "torchvision==0.29.1", "onnxruntime>=1.17,<1.26"],
    },
    zip_safe=True,
    maintainer="movseg_ros developers",
    maintainer_email="movseg@example.com",
    description="Segment and track independently moving objects in a camera stream (ROS 2).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "movseg = movseg_ros.cli:main",
            "segment_node = movseg_ros.ros.segment_node:main",
        ],
    },
)
