"""Two-Piece Assembly: put a square piece (held in the hand at the start) into a narrow receptacle.

The receptacle (3.5 x 3.5 cm opening, 2.5 cm deep walls) is sampled in a 10 x 10 cm region; the
piece is 3 x 3 x 5 cm (2.5 mm clearance per side). Noise on the observed receptacle position:
+-4 cm per axis (x, y) with >= 1 cm in one, so the naive motion lands the piece on the rim.
Contact piece-receptacle reveals the receptacle pose (full) or the unit vector from the piece
toward the true receptacle at the first contact (partial).
Success: piece inside the receptacle (bottom >= 1.5 cm below the rim, centred within 4 mm).
"""

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.sim.corruption import box_noise_with_minimum
from imgen_ros.sim.model import add_box, add_free_body
from imgen_ros.sim.task import ContactChannel, SubtaskSpec
from imgen_ros.sim.tasks.common import add_mocap_body
from imgen_ros.sim.tasks.insertion import HeldInsertionTask

PIECE_HALF = 0.015
PIECE_HALF_Z = 0.025
OPENING_HALF = 0.0175
OUTER_HALF = 0.0375
WALL_HEIGHT = 0.025
GRASP_DEPTH = 0.012  # TCP below the piece's top face


class TwoPieceAssembly(HeldInsertionTask):
    name = "two_piece_assembly"
    horizon = 400  # see Task.horizon: 2x+ the simulated operator's longest source intervention
    subtasks = (SubtaskSpec("receptacle", None),)
    object_names = ("piece", "receptacle")
    channel = ContactChannel("piece", "receptacle", revealed="receptacle", partial_cue="direction")
    held = "piece"
    target = "receptacle"
    held_bottom = PIECE_HALF_Z
    target_top = WALL_HEIGHT
    inserted_z = PIECE_HALF_Z + 0.002
    grasp_offset = np.array([0.0, 0.0, PIECE_HALF_Z - GRASP_DEPTH])  # piece centre, TCP frame (z down)
    finger_gap = 2 * PIECE_HALF
    align_tol = 0.004
    insert_depth = 0.015

    def build(self, spec: mujoco.MjSpec) -> None:
        rec = add_mocap_body(spec, "receptacle", (0.55, 0.0, 0.0))
        wall = (OUTER_HALF - OPENING_HALF) / 2
        mid = OPENING_HALF + wall
        kw = {"rgba": (0.3, 0.5, 0.75, 1.0)}
        z = WALL_HEIGHT / 2
        add_box(rec, "receptacle_wall_px", (wall, OUTER_HALF, z), pos=(mid, 0, z), **kw)
        add_box(rec, "receptacle_wall_nx", (wall, OUTER_HALF, z), pos=(-mid, 0, z), **kw)
        add_box(rec, "receptacle_wall_py", (OPENING_HALF, wall, z), pos=(0, mid, z), **kw)
        add_box(rec, "receptacle_wall_ny", (OPENING_HALF, wall, z), pos=(0, -mid, z), **kw)
        piece = add_free_body(spec, "piece", (0.45, 0.0, 0.2))
        add_box(piece, "piece_geom", (PIECE_HALF, PIECE_HALF, PIECE_HALF_Z), rgba=(0.2, 0.7, 0.3, 1.0),
                mass=0.06, friction=[1.2, 0.01, 0.001], condim=4)

    def sample_corruption(self, rng: np.random.Generator) -> dict[str, NDArray[np.float64]]:
        return {"receptacle": box_noise_with_minimum(rng, 0.04, 0.01)}


TASK = TwoPieceAssembly
