"""Names of the ROS 2 graph's topics, services and actions, and the QoS class of each (ROS-free).

All names are relative, so one graph runs per robot namespace (e.g. ``/fr3``). Frames follow
REP-103/105: commands, robot state and object poses are in the base frame ``fr3_link0``; depth
images in ``camera_depth_optical_frame``. ``imgen_ros.core.qos`` describes the profile of each QoS
class (``imgen_ros.nodes._ros`` turns them into rclpy profiles, the recorder stores them in bags):

- ``STATE``: best effort, keep last 5, volatile. Periodic measurements where only the newest
  matters (robot state, pose estimates, loop timing); a best-effort subscriber also matches a
  reliable publisher (e.g. realsense-ros' default), never the other way round.
- ``SENSOR``: rclpy's sensor-data profile (best effort, keep last 5) for camera images and info.
- ``COMMAND``: reliable, keep last 10, volatile. Commands and the teleop deadman must not be
  silently dropped on a healthy link; stale ones are caught by time-outs, not by QoS.
- ``LATCHED``: reliable, transient local, keep last 1 (control state: a late joiner learns the mode).
- ``EVENTS``: reliable, transient local, keep last 100 (episode events: a late recorder still sees
  the START of the running episode).
- ``VIEW``: reliable, keep last 5, volatile. Standard-type mirrors for viewers (RViz, Foxglove,
  robot_state_publisher): a reliable publisher matches reliable (RViz's default) and best-effort
  subscribers alike.
"""

from __future__ import annotations

BASE_FRAME = "fr3_link0"
DEPTH_FRAME = "camera_depth_optical_frame"

# topic -> (message type, QoS class)
ROBOT_STATE = "robot_state"                 # imgen_msgs/RobotState, from the robot driver or sim_node
ROBOT_COMMAND = "robot/command"             # imgen_msgs/DeltaPoseCommand, safety-filtered, arbiter -> driver
POLICY_COMMAND = "policy/command"           # imgen_msgs/DeltaPoseCommand, policy_node -> arbiter
POLICY_TIMING = "policy/loop_timing"        # imgen_msgs/LoopTiming
POSE_ERROR = "policy/pose_error"            # imgen_msgs/PoseError, the episode's pose corruption (policy_node)
TELEOP_COMMAND = "teleop/command"           # imgen_msgs/DeltaPoseCommand, teleop node -> arbiter
TELEOP_ENGAGED = "teleop/engaged"           # std_msgs/Bool, deadman/takeover, published with every teleop tick
OBJECT_POSE = "object_pose"                 # imgen_msgs/ObjectPoseEstimate, what the robot believes (ICP / sim)
OBJECT_POSE_TRUE = "object_pose/true"       # imgen_msgs/ObjectPoseEstimate, simulator ground truth only
OBJECT_REVEALED = "object_pose/revealed"    # imgen_msgs/ObjectPoseEstimate, the observability channel (valid once
                                            # contact revealed the object: full = true pose, partial = cue position)
CONTROL_STATE = "control_state"             # imgen_msgs/ControlState
EPISODE_EVENTS = "episode_events"           # imgen_msgs/EpisodeEvent
# standard-type mirrors for viewers (fr3_link0), recorded so a bag shows the episode in 3D
JOINT_STATES = "joint_states"                           # sensor_msgs/JointState (fr3_joint1..7, fingers)
TCP_POSE = "tcp_pose"                                   # geometry_msgs/PoseStamped
BELIEVED_POSE = "object_pose/believed_pose"             # geometry_msgs/PoseStamped, the believed cube pose
TRUE_POSE = "object_pose/true_pose"                     # geometry_msgs/PoseStamped, simulator ground truth only
MARKERS = "viz/markers"                                 # visualization_msgs/MarkerArray
# realsense-ros 4.x names (camera namespace "camera", camera name "camera").
DEPTH_IMAGE = "camera/camera/depth/image_rect_raw"    # sensor_msgs/Image 16UC1 [mm]
DEPTH_INFO = "camera/camera/depth/camera_info"        # sensor_msgs/CameraInfo

QOS_CLASSES: dict[str, str] = {
    ROBOT_STATE: "STATE",
    ROBOT_COMMAND: "COMMAND",
    POLICY_COMMAND: "COMMAND",
    POLICY_TIMING: "STATE",
    POSE_ERROR: "LATCHED",
    TELEOP_COMMAND: "COMMAND",
    TELEOP_ENGAGED: "COMMAND",
    OBJECT_POSE: "STATE",
    OBJECT_POSE_TRUE: "STATE",
    OBJECT_REVEALED: "STATE",
    CONTROL_STATE: "LATCHED",
    EPISODE_EVENTS: "EVENTS",
    JOINT_STATES: "VIEW",
    TCP_POSE: "VIEW",
    BELIEVED_POSE: "VIEW",
    TRUE_POSE: "VIEW",
    MARKERS: "VIEW",
    DEPTH_IMAGE: "SENSOR",
    DEPTH_INFO: "SENSOR",
}

# services (imgen_msgs/srv) and actions
START_EPISODE = "start_episode"             # arbiter
STOP_EPISODE = "stop_episode"               # arbiter
SET_CONTROL_MODE = "set_control_mode"       # arbiter
SIM_RESET = "sim/reset"                     # sim_node: StartEpisode (task, seed) -> new scene
GENERATE_INTERVENTIONS = "generate_interventions"  # generation_server (also inside sim_node) action
