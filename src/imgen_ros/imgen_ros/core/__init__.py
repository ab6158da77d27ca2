"""ROS-free types and math: poses, the action shape, corruption models, the safety filter."""
