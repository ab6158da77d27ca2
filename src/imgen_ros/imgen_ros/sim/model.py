"""The FR3 + Franka Hand scene in MuJoCo, built with ``mujoco.MjSpec``.

The arm and hand come from the installed ``franky-sim`` assets (``fr3.xml`` + meshes). On top of
them this module adds what the tasks need:

* a TCP site ``tcp`` on body ``hand`` at z = 0.1034 m (libfranka's end effector frame),
* gravity compensation on the arm (like the real robot's torque controller),
* a stronger gripper: actuator ``hand`` becomes a position servo on the finger tendon with
  ``ctrl`` in [-1, 1] (-1 open, +1 closed) that squeezes with up to ~35 N per finger,
* arm-link collisions off (only the hand and fingers touch things; it keeps stepping fast),
* a table whose top surface is the plane z = 0 (the robot base stands on it at the origin).

Task objects are added by the task modules as primitive geoms (boxes, cylinders).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

ARM_JOINTS = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")
HOME_Q = np.array([0.0, 0.0, 0.0, -2.2, 0.0, 2.2, 0.7854])  # TCP top-down, fingers along world y
TCP_OFFSET_Z = 0.1034
FINGER_OPEN_WIDTH = 0.08  # m, distance between the fingers when fully open
TABLE_SIZE = (0.9, 0.7, 0.02)  # half extents (x, y, z)
TABLE_CENTER_X = 0.5
PHYSICS_TIMESTEP = 0.002

# Arm position servos, stiffer than franky-sim's defaults and near-critically damped at home posture
# (a 5 cm step settles to ~1 mm within two 50 ms control periods under the FR3 torque limits).
ARM_KP = (13500.0, 13500.0, 10500.0, 10500.0, 6000.0, 6000.0, 6000.0)
ARM_KV = (290.0, 346.0, 253.0, 231.0, 50.0, 55.0, 43.0)

# Gripper servo on the tendon length L = (q1 + q2) / 2 (0 = closed, 0.04 = open).
_GRIP_KP = 1800.0
_GRIP_KV = 40.0
_GRIP_TARGET_OPEN = 0.04   # ctrl = -1
_GRIP_TARGET_CLOSED = -0.015  # ctrl = +1: beyond closed, so the fingers keep squeezing
_GRIP_FORCE_LIMIT = 70.0


def franky_sim_assets() -> Path:
    """Directory holding franky-sim's ``fr3.xml`` and ``meshes/``."""
    try:
        import franky_sim
    except ImportError as exc:  # pragma: no cover - the dependency is pinned
        raise RuntimeError("franky-sim is not installed; it provides the FR3 MuJoCo model") from exc
    path = Path(franky_sim.__file__).resolve().parent / "assets"
    if not (path / "fr3.xml").is_file():
        raise RuntimeError(f"franky-sim assets missing: {path / 'fr3.xml'} not found")
    return path


def load_fr3_spec() -> mujoco.MjSpec:
    """FR3 + hand spec with the TCP site, gravity compensation, strong gripper and a table."""
    assets = franky_sim_assets()
    spec = mujoco.MjSpec.from_file(str(assets / "fr3.xml"))
    spec.meshdir = str(assets / "meshes")
    spec.option.timestep = PHYSICS_TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.modelname = "imgen_fr3"
    spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, 1280)
    spec.visual.global_.offheight = max(spec.visual.global_.offheight, 960)

    for body in spec.bodies:
        if body.name.startswith("fr3_link") or body.name in ("hand", "left_finger", "right_finger"):
            body.gravcomp = 1.0
    for geom in spec.geoms:
        body_name = geom.parent.name
        if body_name.startswith("fr3_link") and geom.contype != 0:
            geom.contype = 0
            geom.conaffinity = 0
        if body_name in ("left_finger", "right_finger") and geom.contype != 0:
            if geom.type == mujoco.mjtGeom.mjGEOM_MESH or geom.classname.name != "fingertip_pad_collision_1":
                geom.contype = 0  # mesh + tiny pads -> one box below (fewer, cheaper contacts)
                geom.conaffinity = 0
            else:
                geom.friction = [1.5, 0.05, 0.002]  # high torsional friction: long objects do not pivot
                geom.condim = 4
                geom.solref = [0.004, 1.0]
                geom.solimp = [0.95, 0.99, 0.0005, 0.5, 2.0]
                geom.solmix = 1000.0  # finger contacts stay stiff whatever the object (no creep)
    for name in FINGER_JOINTS:
        joint = spec.joint(name)
        joint.armature = 0.02
        joint.solref_limit = [0.004, 1.0]  # hard stops: a finger landing on an object is not pried open
    for finger in ("left_finger", "right_finger"):
        spec.body(finger).add_geom(name=f"{finger}_coll", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.0105, 0.0088, 0.026],
                                   pos=[0.0, 0.0123, 0.027], friction=[1.0, 0.01, 0.001], group=3, rgba=[0, 0, 0, 0],
                                   solref=[0.004, 1.0], solmix=1000.0)
    for name, kp, kv in zip(ARM_JOINTS, ARM_KP, ARM_KV, strict=True):
        act = spec.actuator(name)
        act.gainprm = [kp] + [0.0] * 9
        act.biasprm = [0.0, -kp, -kv] + [0.0] * 7
    _strengthen_gripper(spec)

    hand = spec.body("hand")
    hand.add_site(name="tcp", pos=[0.0, 0.0, TCP_OFFSET_Z], size=[0.004, 0.0, 0.0], rgba=[1, 0, 0, 0.5], group=4)
    _add_table(spec)
    spec.worldbody.add_camera(name="agentview", pos=[1.35, 0.0, 0.75], xyaxes=[0, 1, 0, -0.55, 0, 0.83], fovy=45)
    spec.worldbody.add_light(name="top_light", pos=[0.5, 0.0, 2.0], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
    return spec


def _strengthen_gripper(spec: mujoco.MjSpec) -> None:
    act = spec.actuator("hand")
    span = (_GRIP_TARGET_CLOSED - _GRIP_TARGET_OPEN) / 2.0
    mid = (_GRIP_TARGET_CLOSED + _GRIP_TARGET_OPEN) / 2.0
    gain = np.zeros(10)
    gain[0] = _GRIP_KP * span
    bias = np.zeros(10)
    bias[:3] = [_GRIP_KP * mid, -_GRIP_KP, -_GRIP_KV]
    act.gainprm = gain
    act.biasprm = bias
    act.ctrlrange = [-1.0, 1.0]
    act.forcerange = [-_GRIP_FORCE_LIMIT, _GRIP_FORCE_LIMIT]


def _add_table(spec: mujoco.MjSpec) -> None:
    sx, sy, sz = TABLE_SIZE
    spec.worldbody.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[sx, sy, sz],
        pos=[TABLE_CENTER_X, 0.0, -sz], rgba=[0.75, 0.7, 0.62, 1.0], friction=[1.0, 0.005, 0.0001],
    )


def add_box(parent: mujoco.MjsBody, name: str, half_size: tuple[float, float, float],
            pos: tuple[float, float, float] = (0.0, 0.0, 0.0), rgba: tuple[float, ...] = (0.6, 0.6, 0.6, 1.0),
            **kwargs) -> mujoco.MjsGeom:
    """Add a box geom (``half_size`` = half extents) to ``parent``."""
    return parent.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=list(half_size), pos=list(pos),
                           rgba=list(rgba), **kwargs)


def add_free_body(spec: mujoco.MjSpec, name: str, pos: tuple[float, float, float] = (0.5, 0.0, 0.1)) -> mujoco.MjsBody:
    """A body with a free joint named ``<name>_joint``."""
    body = spec.worldbody.add_body(name=name, pos=list(pos))
    body.add_freejoint(name=f"{name}_joint")
    return body
