"""Episode videos: MP4 writing/decoding, frame checks, intervention borders."""

from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
from imgen_ros.sim.cameras import OffscreenRenderer
from imgen_ros.sim.video import HUMAN_BORDER_RGB, VideoWriter, add_border, read_video_frames, record_episode


def test_writer_roundtrip_frame_count_and_size(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=20) as writer:
        for i in range(12):
            frame = np.zeros((96, 128, 3), dtype=np.uint8)
            frame[:, : 10 * (i + 1)] = 200  # a growing bright band
            writer.append(frame)
    frames = read_video_frames(path)
    assert len(frames) == 12
    assert frames[0].shape == (96, 128, 3)
    assert frames[-1][:, :100].mean() > 150 and frames[0][:, 40:].mean() < 30


def test_writer_rejects_bad_paths_and_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.mp4"):
        VideoWriter(tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "clip.mp4")
    with VideoWriter(tmp_path / "ok.mp4") as writer:
        with pytest.raises(ValueError, match="multiple of 16"):
            writer.append(np.zeros((100, 128, 3), dtype=np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.append(np.zeros((96, 128, 3), dtype=np.float32))
        writer.append(np.zeros((96, 128, 3), dtype=np.uint8))
        with pytest.raises(ValueError, match="differs"):
            writer.append(np.zeros((128, 128, 3), dtype=np.uint8))


class _SlidingBoxEnv:
    """A tiny env honouring the TaskEnv protocol: action[0] pushes a mocap box along x."""

    horizon = 10

    def __init__(self) -> None:
        spec = mujoco.MjSpec.from_string("""
        <mujoco><worldbody><light pos="0 0 2" dir="0 0 -1"/>
          <geom type="plane" size="1 1 0.1" rgba=".3 .3 .3 1"/>
          <body name="box" mocap="true" pos="0 0 0.05"><geom type="box" size="0.05 0.05 0.05" rgba="1 1 1 1"
            contype="0" conaffinity="0"/></body>
          <camera name="top" pos="0 0 1.2"/>
        </worldbody></mujoco>""")
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.renderer = OffscreenRenderer(self.model)

    def reset(self, seed: int) -> dict:
        self.data.mocap_pos[0] = [-0.2, 0.0, 0.05]
        mujoco.mj_forward(self.model, self.data)
        return {}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, dict]:
        self.data.mocap_pos[0, 0] += 0.05 * action[0]
        mujoco.mj_forward(self.model, self.data)
        success = bool(self.data.mocap_pos[0, 0] >= 0.1 - 1e-9)
        return {}, float(success), success, {"success": success}

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        return self.renderer.rgb(self.data, camera, width, height)


class _PushPolicy:
    """Pushes right; 'intervenes' from the fourth step on."""

    def __init__(self) -> None:
        self.steps = 0
        self.is_intervening = False

    def reset(self) -> None:
        self.steps = 0
        self.is_intervening = False

    def act(self, obs: dict) -> np.ndarray:
        self.is_intervening = self.steps >= 3
        self.steps += 1
        return np.array([1.0, 0, 0, 0, 0, 0, -1.0])


def test_record_episode_renders_every_step_and_marks_interventions(tmp_path: Path) -> None:
    env = _SlidingBoxEnv()
    path = tmp_path / "episode.mp4"
    try:
        with VideoWriter(path, fps=20) as writer:
            result = record_episode(env, _PushPolicy(), seed=0, writer=writer, camera="top", width=160, height=128,
                                    hold_last_s=0.25)
    finally:
        env.renderer.close()
    assert result.success and result.steps == 6 and result.intervention_steps == 3
    frames = read_video_frames(path)
    assert len(frames) == 1 + 6 + 5  # first frame, one per step, 0.25 s hold at 20 fps
    red = np.array(HUMAN_BORDER_RGB, dtype=float)
    border = lambda f: f[:3, 20:-20].reshape(-1, 3).mean(axis=0)  # noqa: E731
    assert np.abs(border(frames[1]) - red).max() > 60  # robot step: no red border
    assert np.abs(border(frames[5]) - red).max() < 40  # human step: red border
    # the box moves right across the frames (its bright centroid column increases)
    cols = [np.nonzero(f.mean(axis=2)[64] > 235)[0].mean() for f in frames[:4]]
    assert cols[0] < cols[1] < cols[2] < cols[3]


def test_add_border_does_not_modify_input() -> None:
    frame = np.zeros((32, 32, 3), dtype=np.uint8)
    out = add_border(frame, (255, 0, 0), width=2)
    assert frame.sum() == 0 and tuple(out[0, 0]) == (255, 0, 0) and tuple(out[16, 16]) == (0, 0, 0)


def test_cli_sim_video_writes_an_mp4_and_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from imgen_ros.cli.main import main

    out = tmp_path / "coffee.mp4"
    rc = main(["sim", "video", "--task", "coffee", "--policy", "expert", "--noise", "off", "--episodes", "1",
               "--seed", "7", "--out", str(out), "--width", "160", "--height", "128", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 1 and summary["successes"] == 1
    frames = read_video_frames(out)
    assert len(frames) == summary["frames"] and frames[0].shape == (128, 160, 3)
    for bad, message in ((["--task", "nope"], "valid tasks"),
                         (["--task", "coffee", "--policy", "robot"], "valid policies"),
                         (["--task", "coffee", "--camera", "wrist"], "available"),
                         (["--task", "coffee", "--width", "100"], "multiples of 16")):
        assert main(["sim", "video", *bad, "--out", str(tmp_path / "x.mp4")]) == 2
        assert message in capsys.readouterr().err


def test_cli_sim_video_refuses_an_existing_mp4_unless_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from imgen_ros.cli.main import main

    out = tmp_path / "clip.mp4"
    out.write_bytes(b"an earlier video")
    argv = ["sim", "video", "--task", "block_grasp", "--noise", "off", "--width", "64", "--height", "48", "--json"]
    assert main([*argv, "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"imgen: error: {out} exists; pass --overwrite to replace it\n"
    assert out.read_bytes() == b"an earlier video"
    under_a_file = tmp_path / "hostname" / "x.mp4"
    under_a_file.parent.write_text("a file, not a directory")
    assert main([*argv, "--out", str(under_a_file)]) == 2
    assert capsys.readouterr().err == f"imgen: error: cannot write {under_a_file}: Not a directory\n"
    stale = tmp_path / ".clip.mp4.99999999.imgen-tmp.mp4"  # left by a killed run (above any pid_max)
    stale.write_bytes(b"half a video")
    assert main([*argv, "--out", str(out), "--overwrite"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(read_video_frames(out)) == summary["frames"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "hostname"]
