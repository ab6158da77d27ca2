"""ROS-free logic behind the ROS graph's nodes that needs the simulator or the policy stack
(``core`` holds what needs neither)."""
