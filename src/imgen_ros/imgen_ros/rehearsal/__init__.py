"""The deployment rehearsal (``imgen rehearse``): the real robot's ROS 2 graph against the simulator.

The zero-shot sim-to-real proxy of issue 9 section C. ``sim_node`` stands in for the FR3 and the
D415 (rendered depth, no simulated human, no observed pose of its own); everything else is the real
graph's nodes as separate processes over DDS in a private network namespace: cube_pose_estimator
(ICP on the rendered depth, a calibration file as on the robot), policy_node (``pose_error: task``),
intervention_arbiter (the real robot's ``config/arbiter.yaml``), contact_detector (the real reveal),
joy_teleop (an idle SpaceMouse) and the recorder. Episode ``i`` uses scene seed
``EVAL_SEED_BASE + i``, as ``imgen eval`` does.

Modules: ``plan`` (rows, node command lines, the perturbations' parameters; ROS-free),
``perturbations`` (the perturbed calibration file, the cube push; ROS-free), ``results`` (per-episode
records and per-row statistics; ROS-free), ``report`` (results.md; ROS-free), ``processes`` (node
processes: start, watch, stop; ROS-free) and ``driver`` (the one rclpy module: a node that drives
episodes and records what the graph publishes).
"""

# The rows a checkpoint can be rehearsed in (``--perturb``); here so that ``imgen --help`` stays light.
PERTURBATIONS: dict[str, str] = {
    "none": "the deployment as configured",
    "extrinsics": "the estimator's calibration off by 5 mm / 2 deg from the true camera pose",
    "depth_noise": "the simulated D415's axial depth noise doubled",
    "push": "the cube pushed 3 cm sideways at control step 10 (0.5 s, the hand still above the cube)",
}

# Time scales a rehearsal accepts (``--time-scale``; plan.TIME_SCALED): below 0.5 the arbiter's
# valid-pose time-out and the policy's maximum object age (1 s, ranges up to 2 s) leave their ranges.
TIME_SCALE_RANGE: tuple[float, float] = (0.5, 1.0)
