"""FR3 drivers behind one interface (``interface.RobotDriver``): ``sim`` (the MuJoCo world),
``libfranka`` (franky-control; its 1 kHz loop runs inside libfranka) and ``franka_ros2`` (a
Cartesian impedance controller's PoseStamped target + franka_msgs gripper actions).
Build one with ``factory.make_driver``."""
