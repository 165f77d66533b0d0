"""TRL's GRPOTrainer driven by the engine's config: settings copied, names aligned, a real run."""

import dataclasses

import numpy as np
import torch

import pandas as pd
import pytest
from trl.trainer.utils import get_callable_name

from llm_exploration.grpo.compare import (
    SHARED_SETTINGS,
    StepTimer,
    accuracy_table,
    completions_table,
    named_reward_funcs,
    reward_summary,
    speed_table,
    train_ours,
    train_trl,
    trl_args,
)
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.evaluate import EvalResult
from llm_exploration.grpo.rewards import REWARD_FUNCS
from llm_exploration.models import embedded_model_path


def test_trl_args_copies_every_shared_setting(tmp_path):
    cfg = GRPOConfig(num_generations=3, per_device_train_batch_size=6, gradient_accumulation_steps=2,
                     max_completion_length=17, temperature=0.7, top_p=0.9, top_k=20, loss_type="dr_grpo",
                     beta=0.04, epsilon=0.1, epsilon_high=0.28, scale_rewards="none", num_iterations=2,
                     learning_rate=3e-5, max_steps=7, seed=11, lr_scheduler_type="linear", warmup_steps=2,
                     reward_weights=[0.5, 2.0], max_grad_norm=0.3)
    args = trl_args(cfg, tmp_path)
    assert set(SHARED_SETTINGS) <= {f.name for f in dataclasses.fields(cfg)}
    for name in SHARED_SETTINGS:
        assert getattr(args, name) == getattr(cfg, name), name
    assert args.use_cpu and args.logging_steps == 1


def test_named_reward_funcs_keep_the_engine_names_and_values():
    funcs = named_reward_funcs(["format_soft", "correctness"])
    assert [get_callable_name(f) for f in funcs] == ["format_soft", "correctness"]
    completions = [[{"role": "assistant", "content": "<think>1+1</think><answer>2</answer>"}],
                   [{"role": "assistant", "content": "it is 3"}]]
    kw = {"answer": ["2", "2"], "trainer_state": None}
    for f, name in zip(funcs, ["format_soft", "correctness"]):
        assert f(["p", "p"], completions, **kw) == REWARD_FUNCS[name](["p", "p"], completions, **kw)
    with pytest.raises(ValueError, match="Unknown reward function 'nope'"):
        named_reward_funcs(["nope"])


def test_step_timer_measures_between_step_ends():
    timer = StepTimer()
    timer.on_train_begin(None, None, None)
    for _ in range(3):
        timer.on_step_end(None, None, None)
    assert len(timer.step_times) == 3 and all(t >= 0 for t in timer.step_times)


def test_ours_and_trl_runs_log_the_same_metrics():
    """One real step of each trainer on the embedded SmolLM2 (tiny settings), same config."""
    rows = [{"prompt": [{"role": "user", "content": f"What is {a} + 1?"}], "question": f"What is {a} + 1?",
             "answer": str(a + 1)} for a in range(4)]
    cfg = GRPOConfig(num_generations=2, per_device_train_batch_size=4, max_completion_length=4,
                     max_steps=1, learning_rate=1e-5, train_size=4, eval_size=0, seed=3, few_shot=0,
                     dataset_kwargs={"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1})
    trl = train_trl(cfg, rows, embedded_model_path("smollm2-135m-instruct"))
    ours = train_ours(cfg)
    for run, name in [(trl, "TRL"), (ours, "ours")]:
        m = run.metrics
        assert (run.trainer, run.seed, list(m["step"]), list(m["seed"])) == (name, 3, [1], [3])
        for col in ["reward", "rewards/format_soft/mean", "rewards/correctness/mean", "frac_reward_zero_std",
                    "completions/mean_length", "step_time", "completion_tokens_per_s", "loss", "grad_norm"]:
            assert col in m, (name, col)
        assert 0 < m["completions/mean_length"].iloc[0] <= 4
        assert m["completion_tokens"].iloc[0] == pytest.approx(m["completions/mean_length"].iloc[0] * 4)
        assert m["step_time"].iloc[0] > 0 and run.model is not None
    speed = speed_table([ours, trl])
    assert list(speed.index) == ["ours", "TRL", "ours / TRL"]
    ratio = speed.loc["ours / TRL", "step time, median (s)"]
    assert ratio == pytest.approx(ours.metrics["step_time"].iloc[0] / trl.metrics["step_time"].iloc[0])


def _logs():
    rows = []
    for trainer, seed in [("ours", 0), ("ours", 1), ("TRL", 0)]:
        for step in range(1, 7):
            rows.append({"trainer": trainer, "seed": seed, "step": step, "reward": 0.1 * step + seed,
                         "rewards/format_soft/mean": 0.1 * step, "rewards/correctness/mean": float(seed)})
    return pd.DataFrame(rows)


def test_reward_summary_first_and_last_windows():
    s = reward_summary(_logs(), ["format_soft", "correctness"], window=2)
    row = s[(s["trainer"] == "ours") & (s["seed"] == 1) & (s["reward"] == "total")].iloc[0]
    assert row["first steps"] == pytest.approx(1.15) and row["last steps"] == pytest.approx(1.55)
    assert row["change"] == pytest.approx(0.4)
    assert s.attrs["window"] == 2 and len(s) == 3 * 3


def test_accuracy_and_completions_tables():
    def result(strict, text):
        return EvalResult(n_questions=2, n_samples=1, strict_accuracy=strict, lenient_accuracy=0.5, format_rate=0.0,
                          strict_pass_at_n=strict, lenient_pass_at_n=0.5, strict_stderr=0.1, lenient_stderr=0.2,
                          samples=[{"question": f"q{i}", "answer": str(i), "completion": f" {text}{i} "}
                                   for i in range(2)])

    results = {"base": result(0.0, "a"), "TRL": result(1.0, "b")}
    acc = accuracy_table(results)
    assert list(acc["model"]) == ["base", "TRL"] and list(acc["strict"]) == [0.0, 1.0]
    comp = completions_table(results, k=5)
    assert comp.to_dict("records") == [{"question": "q0", "answer": "0", "base": "a0", "TRL": "b0"},
                                       {"question": "q1", "answer": "1", "base": "a1", "TRL": "b1"}]


def test_trl_rollouts_run_in_the_engines_precision():
    """TRL 1.16 generates outside its autocast context; the wrapper puts bf16 rollouts under it."""
    from types import SimpleNamespace

    from llm_exploration.grpo.compare import _bf16_generation

    class Fake:
        accelerator = SimpleNamespace(device=torch.device("cpu"))

        def __init__(self, bf16):
            self.args = SimpleNamespace(bf16=bf16)

        def _generate_single_turn(self, *args, **kwargs):
            return torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")

    assert _bf16_generation(Fake)(True)._generate_single_turn() == (True, torch.bfloat16)
    assert _bf16_generation(Fake)(False)._generate_single_turn()[0] is False


def test_t_interval_over_seed_gains():
    from llm_exploration.grpo.stats import t_interval_gain

    base = np.zeros(4)
    iv, df = t_interval_gain(np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 1.0]]), base)
    assert df == 2 and iv.mean == pytest.approx(0.5833, abs=1e-3)
    # per-seed gains 0.5, 0.5, 0.75: half-width t(0.975, 2) * s / sqrt(3)
    assert iv.high - iv.mean == pytest.approx(4.303 * np.std([0.5, 0.5, 0.75], ddof=1) / np.sqrt(3), rel=1e-3)
    with pytest.raises(ValueError, match="seeds >= 2"):
        t_interval_gain(np.ones((1, 4)), base)
