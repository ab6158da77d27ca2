"""Perception: depth image -> point cloud -> ICP pose of the 5 cm cube (open3d); RealSense frame sources.

ROS-free and MuJoCo-free. ``estimator.CubePoseEstimator`` is the entry point; ``sources`` yields
depth frames from a live D415, a RealSense recording (.bag/.db3) or ROS image messages.
"""
