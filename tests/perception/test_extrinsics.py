"""Hand-eye calibration files: one source of truth for the camera pose (static TF + estimator), the
simulator's mount refused on the real robot unless allowed, clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from imgen_ros.core.pose import pose_distance
from imgen_ros.perception.estimator import CubePoseEstimatorConfig
from imgen_ros.perception.extrinsics import ExtrinsicsError, load_extrinsics, require_calibrated
from imgen_ros.perception.stream import CubePoseNodeConfig

SIM_FILE = Path(__file__).resolve().parents[2] / "config" / "camera_extrinsics_sim.yaml"


def _write(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(SIM_FILE.read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "hand_eye.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_sim_file_matches_the_estimator_defaults_and_is_refused_on_the_robot():
    ext = load_extrinsics(SIM_FILE)
    assert ext.simulated and ext.child_frame == "camera_depth_optical_frame" and ext.parent_frame == "fr3_link0"
    dt, dr = pose_distance(ext.pose, CubePoseEstimatorConfig().camera_pose)
    assert dt < 1e-9 and dr < 1e-6
    with pytest.raises(ExtrinsicsError, match=r"simulator's camera extrinsics.*allow_sim_extrinsics:=true"):
        require_calibrated(ext, allow_simulated=False)
    require_calibrated(ext, allow_simulated=True)


def test_a_calibration_drives_the_estimator_and_the_static_transform(tmp_path):
    path = _write(tmp_path, simulated=False, translation=[1.0, 0.3, 0.6], child_frame="d415_depth_optical_frame")
    ext = load_extrinsics(path)
    require_calibrated(ext, allow_simulated=False)
    args = ext.static_transform_arguments()
    assert args[args.index("--x") + 1] == "1.0" and args[-4:] == ["--frame-id", "fr3_link0", "--child-frame-id",
                                                                  "d415_depth_optical_frame"]
    node_cfg = CubePoseNodeConfig(extrinsics_file=str(path)).with_extrinsics()
    assert node_cfg.camera_frame_id == "d415_depth_optical_frame"
    np.testing.assert_allclose(node_cfg.estimator.camera_pose, ext.pose, atol=1e-9)


@pytest.mark.parametrize(("changes", "message"), [
    ({"translation": [1.0, 0.3]}, "'translation' must be a list of 3 numbers"),
    ({"translation": [1150.0, 350.0, 550.0]}, "units must be metres"),
    ({"rotation_xyzw": [0.0, 0.0, 0.0, 2.0]}, "unit quaternion"),
    ({"rotation_xyzw": [0.0, 0.0, float("nan"), 1.0]}, "must be finite"),
    ({"simulated": None}, "missing simulated"),
    ({"simulated": "no"}, "'simulated' must be true or false"),
    ({"child_frame": "/camera_depth_optical_frame"}, "without a leading '/'"),
    ({"translaton": [1.0, 0.3, 0.6]}, r"unknown key\(s\) \['translaton'\]"),
])
def test_bad_files_are_refused_naming_file_and_field(tmp_path, changes, message):
    path = _write(tmp_path, **changes)
    with pytest.raises(ExtrinsicsError, match=message) as err:
        load_extrinsics(path)
    assert str(path) in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ExtrinsicsError, match="cannot read camera calibration"):
        load_extrinsics(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("translation: [1, 2\n")
    with pytest.raises(ExtrinsicsError, match="not valid YAML"):
        load_extrinsics(bad)
    other = _write(tmp_path, parent_frame="world")
    with pytest.raises(ValueError, match="relative to 'world' but poses are published in frame_id 'fr3_link0'"):
        CubePoseNodeConfig(extrinsics_file=str(other)).with_extrinsics()
