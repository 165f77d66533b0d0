"""Config validation gives clear errors; the shipped YAML configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_exploration.grpo.cli import main
from llm_exploration.grpo.config import ConfigError, GRPOConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"])
def test_shipped_configs_load(name):
    cfg = GRPOConfig.from_yaml(ROOT / "configs" / "grpo" / f"{name}.yaml")
    assert cfg.generation_batch_size % cfg.num_generations == 0


@pytest.mark.parametrize("change, message", [
    ({"num_generations": 1}, "num_generations=1.*at least 2"),
    ({"per_device_train_batch_size": 6, "num_generations": 4}, "not divisible by num_generations=4"),
    ({"loss_type": "ppo"}, "loss_type='ppo' is invalid: expected one of 'grpo', 'dr_grpo', 'dapo'"),
    ({"beta": -0.1}, "beta=-0.1"),
    ({"beta": float("nan")}, "beta=nan"),
    ({"scale_rewards": "global"}, "scale_rewards='global'"),
    ({"reward_funcs": ["format_soft", "typo"]}, "Not allowed: 'typo'"),
    ({"reward_weights": [1.0]}, "reward_weights has 1 entries for 2 reward_funcs"),
    ({"temperature": 0}, "temperature=0"),
    ({"epsilon": 1.5}, "epsilon=1.5"),
    ({"logger": "wandb"}, "logger='wandb'"),
    ({"train_size": 1, "per_device_train_batch_size": 8, "num_generations": 4}, "train_size=1"),
])
def test_invalid_settings_name_the_setting(change, message):
    with pytest.raises(ConfigError, match=message):
        GRPOConfig(**change)


def test_derived_sizes_and_epsilons():
    cfg = GRPOConfig(per_device_train_batch_size=4, gradient_accumulation_steps=3, num_generations=6,
                     epsilon=0.2, epsilon_high=0.28)
    assert (cfg.generation_batch_size, cfg.prompts_per_step) == (12, 2)
    assert (cfg.epsilon_low, cfg.epsilon_high_value) == (0.2, 0.28)
    assert GRPOConfig().epsilon_high_value == 0.2


def test_yaml_unknown_field_and_cli_error(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("num_generation: 4\n")
    with pytest.raises(ConfigError, match="unknown setting 'num_generation'.*did you mean num_generations"):
        GRPOConfig.from_yaml(path)
    assert main(["fit", "--config", str(ROOT / "configs/grpo/smoke.yaml"), "--set", "loss_type=bogus"]) == 2
    assert "loss_type='bogus'" in capsys.readouterr().err
