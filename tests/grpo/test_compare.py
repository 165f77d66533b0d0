"""TRL's GRPOTrainer driven by the engine's config: settings copied, names aligned, a real run."""

import dataclasses

import pytest
from trl.trainer.utils import get_callable_name

from llm_exploration.grpo.compare import SHARED_SETTINGS, StepTimer, named_reward_funcs, train_trl, trl_args
from llm_exploration.grpo.config import GRPOConfig
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


def test_train_trl_runs_and_logs_under_engine_names():
    """One real TRL step on the embedded SmolLM2 (tiny settings)."""
    rows = [{"prompt": [{"role": "user", "content": f"What is {a} + 1?"}], "answer": str(a + 1)} for a in range(4)]
    cfg = GRPOConfig(num_generations=2, per_device_train_batch_size=4, max_completion_length=4,
                     max_steps=1, learning_rate=1e-5, train_size=4, seed=3)
    run = train_trl(cfg, rows, embedded_model_path("smollm2-135m-instruct"))
    m = run.metrics
    assert (run.trainer, run.seed, list(m["step"]), list(m["seed"])) == ("TRL", 3, [1], [3])
    for col in ["reward", "rewards/format_soft/mean", "rewards/correctness/mean", "frac_reward_zero_std",
                "completions/mean_length", "step_time", "completion_tokens_per_s", "loss", "grad_norm"]:
        assert col in m, col
    assert 0 < m["completions/mean_length"].iloc[0] <= 4
    assert m["completion_tokens"].iloc[0] == pytest.approx(m["completions/mean_length"].iloc[0] * 4)
    assert run.peak_rss_mb > 100 and run.model is not None
