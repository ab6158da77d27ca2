"""robomimic 0.3.0 imports without torchvision; low-dim works, image encoders fail clearly."""

from __future__ import annotations

import sys

import pytest
from imgen_ros.policy.robomimic_compat import TorchvisionUnavailableError, robomimic_modules, torchvision_available

pytestmark = pytest.mark.skipif(torchvision_available(), reason="a real torchvision is installed: no stand-in")


def test_robomimic_imports_and_torchvision_stays_absent() -> None:
    rm = robomimic_modules()
    assert rm.version == "0.3.0"
    assert rm.torchvision is False
    assert "torchvision" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        import torchvision  # noqa: F401


def test_image_encoder_raises_clear_error() -> None:
    robomimic_modules()
    from robomimic.models.base_nets import ResNet18Conv

    with pytest.raises(TorchvisionUnavailableError, match="torchvision, which is not installed"):
        ResNet18Conv(input_channel=3)


def test_rgb_observation_encoder_raises_clear_error() -> None:
    rm = robomimic_modules()
    config = rm.config_factory("bc")
    with config.values_unlocked():
        config.observation.modalities.obs.low_dim = ["robot0_eef_pos"]
        config.observation.modalities.obs.rgb = ["agentview_image"]
    rm.ObsUtils.initialize_obs_utils_with_config(config)
    with pytest.raises(ImportError, match="torchvision"):
        rm.algo_factory("bc", config, obs_key_shapes={"robot0_eef_pos": [3], "agentview_image": [3, 84, 84]},
                        ac_dim=7, device="cpu")


def test_color_randomizer_transform_raises_clear_error() -> None:
    robomimic_modules()
    from robomimic.models.obs_core import ColorRandomizer

    randomizer = ColorRandomizer(input_shape=(3, 8, 8))
    with pytest.raises(TorchvisionUnavailableError, match="torchvision"):
        randomizer.get_transform()


def test_low_dim_bc_rnn_gmm_builds_and_acts() -> None:
    import numpy as np

    rm = robomimic_modules()
    config = rm.config_factory("bc")
    with config.values_unlocked():
        config.observation.modalities.obs.low_dim = ["robot0_eef_pos", "object"]
        config.observation.modalities.obs.rgb = []
        config.algo.rnn.enabled = True
        config.algo.rnn.hidden_dim = 16
        config.algo.gmm.enabled = True
        config.algo.actor_layer_dims = ()
    rm.ObsUtils.initialize_obs_utils_with_config(config)
    model = rm.algo_factory("bc", config, obs_key_shapes={"robot0_eef_pos": [3], "object": [4]}, ac_dim=7,
                            device="cpu")
    assert type(model).__name__ == "BC_RNN_GMM"
    policy = rm.RolloutPolicy(model)
    policy.start_episode()
    action = policy({"robot0_eef_pos": np.zeros(3), "object": np.zeros(4)})
    assert action.shape == (7,) and np.all(np.isfinite(action))
