"""Training end to end: the smoke config through the CLI on the embedded model, exact resume,
non-finite stops, LoRA + gradient checkpointing + bf16, DDP on CPU, evaluation."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from llm_exploration.grpo.cli import main
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.evaluate import evaluate
from llm_exploration.grpo.module import GRPOModule, NonFiniteError
from llm_exploration.grpo.rewards import completion_text
from llm_exploration.grpo.train import fit

ROOT = Path(__file__).resolve().parents[2]
EASY = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}
TRL_METRICS = [
    "reward", "reward_std", "frac_reward_zero_std", "rewards/format_soft_reward/mean",
    "rewards/format_soft_reward/std", "rewards/correctness_reward/mean", "rewards/correctness_reward/std",
    "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
    "completions/mean_terminated_length", "entropy", "kl", "clip_ratio/low_mean", "clip_ratio/high_mean",
    "clip_ratio/region_mean", "clip_ratio/low_min", "clip_ratio/high_max", "num_tokens", "loss", "grad_norm",
    "learning_rate", "step_time"]
OURS = ["zero_std_groups", "time/generate_s", "time/update_s", "tokens_per_second"]


def small_config(tmp_path, **kw) -> GRPOConfig:
    base = {"dataset": "basic_arithmetic", "dataset_kwargs": EASY, "train_size": 12, "eval_size": 0, "few_shot": 1,
                "num_generations": 2, "per_device_train_batch_size": 4, "max_completion_length": 6, "max_steps": 2,
                "learning_rate": 1e-2, "output_dir": str(tmp_path), "run_name": "t", "log_completions": 2, "seed": 0}
    base.update(kw)
    return GRPOConfig(**base)


def test_smoke_config_fit_through_cli_on_embedded_model_logs_every_metric(tmp_path, capsys):
    rc = main(["fit", "--config", str(ROOT / "configs/grpo/smoke.yaml"), "--set", f"output_dir={tmp_path}"])
    assert rc == 0
    log_dir = Path(capsys.readouterr().out.strip().splitlines()[-1].split("logs: ")[1])
    with open(log_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 1]
    for name in TRL_METRICS + OURS:  # every metric logged at every step, as a finite number
        # (clip_ratio/low_min and high_max are NaN when every completion is empty, as in TRL)
        values = [float(r[name]) for r in rows]
        if name not in ("clip_ratio/low_min", "clip_ratio/high_max"):
            assert all(math.isfinite(v) for v in values), name
    assert float(rows[-1]["num_tokens"]) > float(rows[0]["num_tokens"]) > 0
    with open(log_dir / "completions.jsonl") as f:
        samples = [json.loads(line) for line in f]
    assert samples and {"question", "completion", "advantage", "correctness_reward"} <= set(samples[0])


def length_reward(prompts, completions, **kwargs):
    """A reward a random tiny model's samples differ on (so advantages are nonzero)."""
    return [len(completion_text(c)) / 40 for c in completions]


def _weights(module):
    return {k: v.detach().clone() for k, v in module.policy.state_dict().items()}


def test_resume_is_exact(tokenizer, make_tiny, tmp_path):
    """Stopping after step 1 (in the middle of a μ = 2 window) and resuming from the checkpoint
    gives the same weights and the same logged metrics as one uninterrupted run."""
    kw = {"max_steps": 3, "num_iterations": 2, "save_steps": 1, "loss_type": "grpo", "beta": 0.1, "temperature": 1.3}
    full = fit(small_config(tmp_path / "a", **kw), model=make_tiny(), tokenizer=tokenizer,
               reward_funcs=[length_reward], enable_progress_bar=False)
    ckpt = tmp_path / "a" / "t" / "checkpoints" / "step1.ckpt"
    assert ckpt.is_file()
    resumed = fit(small_config(tmp_path / "b", resume_from_checkpoint=str(ckpt), **kw),
                  model=make_tiny(), tokenizer=tokenizer, reward_funcs=[length_reward],
                  enable_progress_bar=False)
    wa, wb = _weights(full.module), _weights(resumed.module)
    w0 = make_tiny().state_dict()
    assert any(not torch.equal(wa[k], w0[k]) for k in wa)  # it trained
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)
    last_a, last_b = full.metrics()[-1], resumed.metrics()[-1]
    for k in ("loss", "reward", "entropy", "kl", "grad_norm", "num_tokens"):
        assert last_a[k] == last_b[k], k


def test_non_finite_loss_stops_and_names_the_step(tokenizer, make_tiny, tmp_path, monkeypatch):
    """Weights turned NaN after the step-2 rollout: the loss is NaN and training stops."""
    make_rollout = GRPOModule.make_rollout

    def poisoned(self, batch, start):
        buffer = make_rollout(self, batch, start)
        if self.global_step == 1:
            with torch.no_grad():
                next(self.policy.parameters()).fill_(float("nan"))
        return buffer

    monkeypatch.setattr(GRPOModule, "make_rollout", poisoned)
    with pytest.raises(NonFiniteError, match="loss.*step 2"):
        fit(small_config(tmp_path, max_steps=3), model=make_tiny(), tokenizer=tokenizer,
            enable_progress_bar=False, enable_checkpointing=False)


def test_non_finite_weights_stop_at_sampling_and_name_the_step(tokenizer, make_tiny, tmp_path):
    class Poison(L.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            if trainer.global_step == 1:
                with torch.no_grad():
                    next(module.policy.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteError, match="sampling.*step 2"):
        fit(small_config(tmp_path, max_steps=3), model=make_tiny(), tokenizer=tokenizer,
            callbacks=[Poison()], enable_progress_bar=False, enable_checkpointing=False)


def test_non_finite_gradient_stops(tokenizer, make_tiny, tmp_path):
    model = make_tiny()
    model.model.norm.weight.register_hook(lambda g: g * float("inf"))
    with pytest.raises(NonFiniteError, match="gradient norm.*step 1"):
        fit(small_config(tmp_path, loss_type="dapo"), model=model, tokenizer=tokenizer,
            reward_funcs=[length_reward], enable_progress_bar=False, enable_checkpointing=False)


def test_lora_gradient_checkpointing_bf16_and_kl_through_disabled_adapter(tokenizer, make_tiny, tmp_path):
    model = make_tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = small_config(tmp_path, use_peft=True, lora_r=4, lora_target_modules=["q_proj", "v_proj"],
                       gradient_checkpointing=True, bf16=True, beta=0.5, max_steps=2, logger="tensorboard",
                       scale_rewards="batch")
    result = fit(cfg, model=model, tokenizer=tokenizer, reward_funcs=[length_reward], enable_progress_bar=False,
                 enable_checkpointing=False)
    policy = result.module.policy
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    base = policy.get_base_model().state_dict()
    for k, v in before.items():  # the base weights are untouched
        key = k if k in base else k.replace("q_proj.weight", "q_proj.base_layer.weight").replace(
            "v_proj.weight", "v_proj.base_layer.weight")
        torch.testing.assert_close(base[key].float(), v.float())
    assert any(p.abs().sum() > 0 for n, p in policy.named_parameters() if "lora_B" in n)  # it trained
    assert list((tmp_path / "t").rglob("events.out.tfevents*"))


DDP_SCRIPT = r"""
import json, sys, torch
sys.path.insert(0, {tests!r})
from conftest import tiny_llama
from llm_exploration.models import load_causal_lm
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.train import fit
torch.set_num_threads(1)
_, tok = load_causal_lm()
cfg = GRPOConfig(dataset="basic_arithmetic", dataset_kwargs={easy!r}, train_size=16, eval_size=0, few_shot=1,
                 num_generations=2, per_device_train_batch_size=4, max_completion_length=4, max_steps=2,
                 learning_rate=1e-2, output_dir={out!r}, run_name="ddp", accelerator="cpu", devices=2,
                 strategy="ddp", scale_rewards="batch")
seen = []
from llm_exploration.grpo import module as m
orig = m.GRPOModule.make_rollout
def spy(self, batch, start):
    seen.extend(batch["question"])
    return orig(self, batch, start)
m.GRPOModule.make_rollout = spy
def length_reward(prompts, completions, **kwargs):
    return [len(c[0]["content"]) / 40 for c in completions]
res = fit(cfg, model=tiny_llama(tok), tokenizer=tok, reward_funcs=[length_reward], enable_progress_bar=False,
          enable_checkpointing=False)
rank = res.trainer.global_rank
w = sum(p.double().sum().item() for p in res.module.policy.parameters())
json.dump({{"rank": rank, "world": res.trainer.world_size, "weights": w, "questions": seen,
           "steps": res.trainer.global_step}}, open({out!r} + f"/rank{{rank}}.json", "w"))
"""


def test_ddp_two_processes_on_cpu(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), easy=EASY, out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(script)], check=False, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == r1["world"] == 2 and r0["steps"] == r1["steps"] == 2
    assert r0["weights"] == r1["weights"]  # gradients were all-reduced
    assert not set(r0["questions"]) & set(r1["questions"])  # each rank had its own prompts
    assert (tmp_path / "ddp").rglob("metrics.csv")


def test_evaluate_strict_and_lenient(tokenizer, tiny, tmp_path):
    rows = [{"question": "Calculate 1 + 2.", "answer": "3"}, {"question": "Calculate 4 - 1.", "answer": "3"},
            {"question": "Calculate 2 + 2.", "answer": "4"}]
    res = evaluate(tiny, tokenizer, rows, n_samples=2, temperature=1.0, max_completion_length=4, few_shot=1)
    assert res.n_questions == 3 and len(res.samples) == 6
    for key in ("strict_accuracy", "lenient_accuracy", "format_rate", "strict_pass_at_n"):
        assert 0.0 <= getattr(res, key) <= 1.0
    assert "strict accuracy" in res.table()
    res.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["n_samples"] == 2
    greedy = evaluate(tiny, tokenizer, rows, max_completion_length=4, few_shot=1)
    assert len(greedy.samples) == 3
    with pytest.raises(ValueError, match="temperature"):
        evaluate(tiny, tokenizer, rows, n_samples=2, temperature=0.0)
