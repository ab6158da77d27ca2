"""Contact queries on MuJoCo data: which bodies touch, and where."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from numpy.typing import NDArray

# Group names understood by ``BodyGeoms.of`` besides plain body names.
GROUPS = {"fingers": ("left_finger", "right_finger")}


@dataclass(frozen=True)
class BodyGeoms:
    """Boolean mask over the model's geoms selecting the collision geoms of some bodies."""

    name: str
    mask: NDArray[np.bool_]

    @classmethod
    def of(cls, model: mujoco.MjModel, name: str) -> BodyGeoms:
        """Collision geoms of body ``name`` and its descendants; ``"table"`` is the table geom,
        ``"fingers"`` both fingers. Unknown names raise ValueError."""
        mask = np.zeros(model.ngeom, dtype=bool)
        if name == "table":
            mask[model.geom("table").id] = True
            return cls(name, mask)
        roots = []
        for body in GROUPS.get(name, (name,)):
            bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if bid < 0:
                raise ValueError(f"no body named {body!r} in the scene")
            roots.append(bid)
        bodies = set(roots)
        for bid in range(model.nbody):  # parents precede children in MuJoCo's body order
            if model.body_parentid[bid] in bodies and bid != 0:
                bodies.add(bid)
        for gid in range(model.ngeom):
            collides = model.geom_contype[gid] != 0 or model.geom_conaffinity[gid] != 0
            if collides and model.geom_bodyid[gid] in bodies:
                mask[gid] = True
        return cls(name, mask)


def _pair_mask(data: mujoco.MjData, a: BodyGeoms, b: BodyGeoms) -> NDArray[np.bool_]:
    g1 = data.contact.geom1
    g2 = data.contact.geom2
    return (a.mask[g1] & b.mask[g2]) | (a.mask[g2] & b.mask[g1])


def in_contact(data: mujoco.MjData, a: BodyGeoms, b: BodyGeoms) -> bool:
    """True when some active contact joins a geom of ``a`` and a geom of ``b``."""
    if data.ncon == 0:
        return False
    return bool(_pair_mask(data, a, b).any())


def contact_positions(data: mujoco.MjData, a: BodyGeoms, b: BodyGeoms) -> NDArray[np.float64]:
    """World positions (n, 3) of the active contacts between ``a`` and ``b``."""
    if data.ncon == 0:
        return np.zeros((0, 3))
    return np.asarray(data.contact.pos)[_pair_mask(data, a, b)].copy()
