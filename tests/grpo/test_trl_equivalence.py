"""The engine's update and TRL's, fed the same rollouts, end at the same weights; both trainers
see the prompts in the same order for any seed.

The rollouts (prompts, completions, advantages) are made once, outside both trainers, and
injected into each: TRL's ``GRPOTrainer._generate_and_score_completions`` and the engine's
``GRPOModule.make_rollout`` return them instead of sampling. Everything after that is each
trainer's own code: the forward pass, the loss, backward, gradient clipping, the optimizer
(TRL's default ``adamw_torch_fused``; the engine's fused AdamW) and the schedule.
"""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from trl import GRPOTrainer

from llm_exploration.grpo.advantages import group_advantages
from llm_exploration.grpo.compare import named_reward_funcs, training_rows, trl_args
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import PromptStream, apply_template, build_messages
from llm_exploration.grpo.module import GRPOModule, RolloutBuffer
from llm_exploration.grpo.rollout import generate, tokenize_prompts
from llm_exploration.grpo.train import fit

EASY = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}
STEPS = 3


def _config(tmp_path, **kw) -> GRPOConfig:
    base = {"dataset": "basic_arithmetic", "dataset_kwargs": EASY, "train_size": 24, "eval_size": 0,
            "few_shot": 0, "num_generations": 4, "per_device_train_batch_size": 8, "max_completion_length": 6,
            "max_steps": STEPS, "learning_rate": 1e-3, "max_grad_norm": 1.0, "loss_type": "dapo",
            "scale_rewards": "group", "lr_scheduler_type": "linear", "warmup_steps": 1, "seed": 0,
            "output_dir": str(tmp_path / "ours"), "run_name": "t", "logger": "none", "save_last": False,
            "log_completions": 0}
    base.update(kw)
    return GRPOConfig(**base)


def _rollouts(model, tokenizer, cfg: GRPOConfig) -> list[dict[str, torch.Tensor]]:
    """One fixed rollout per optimizer step: real samples of ``model``, random rewards."""
    rows = training_rows(cfg)
    out = []
    g = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        chunk = rows[step * cfg.prompts_per_step:(step + 1) * cfg.prompts_per_step]
        ids, mask = tokenize_prompts(tokenizer, [apply_template(tokenizer, r["prompt"]) for r in chunk])
        torch.manual_seed(step)
        r = generate(model, tokenizer, ids, mask, cfg.num_generations, max_completion_length=cfg.max_completion_length)
        # completions of different lengths (a random tiny model never ends on its own)
        ids_c, mask_c = r.completion_ids.clone(), r.completion_mask.clone()
        for i, n in enumerate(torch.randint(1, ids_c.size(1) + 1, (ids_c.size(0),), generator=g).tolist()):
            ids_c[i, n - 1] = tokenizer.eos_token_id
            ids_c[i, n:] = tokenizer.pad_token_id
            mask_c[i, n:] = 0
        rewards = torch.randn(r.completion_ids.size(0), generator=g)
        adv = group_advantages(rewards, cfg.num_generations, cfg.scale_rewards).advantages
        out.append({"prompt_ids": r.prompt_ids, "prompt_mask": r.prompt_mask, "completion_ids": ids_c,
                    "completion_mask": mask_c, "advantages": adv, "num_items_in_batch": mask_c.sum()})
    assert any((x["prompt_mask"] == 0).any() for x in out)  # left padding is exercised
    return out


def _train_trl(model, tokenizer, cfg, rollouts, tmp_path):
    trainer = GRPOTrainer(model=model, args=trl_args(cfg, tmp_path / "trl"), processing_class=tokenizer,
                          reward_funcs=named_reward_funcs(["correctness"]),
                          train_dataset=Dataset.from_list(training_rows(cfg)))
    assert trainer.args.optim == "adamw_torch_fused"
    calls = iter(rollouts)
    trainer._generate_and_score_completions = lambda inputs: dict(next(calls))
    trainer.train()
    return trainer.model


def _train_ours(model, tokenizer, cfg, rollouts, monkeypatch):
    def injected(self: GRPOModule, batch, window_start):
        r = rollouts[self.global_step]
        from llm_exploration.grpo.rollout import Rollout

        rollout = Rollout(r["prompt_ids"], r["prompt_mask"], r["completion_ids"], r["completion_mask"],
                          torch.zeros(r["completion_ids"].size(0), dtype=torch.bool))
        return RolloutBuffer(window_start, rollout, r["advantages"], None, None, r["num_items_in_batch"])

    monkeypatch.setattr(GRPOModule, "make_rollout", injected)
    result = fit(cfg, model=model, tokenizer=tokenizer, reward_funcs=named_reward_funcs(["correctness"]),
                 enable_progress_bar=False, enable_checkpointing=False)
    return result.module.policy


def _updates(tokenizer, make_tiny, tmp_path, monkeypatch, loss_type, bf16=False):
    """(start, ours, TRL) flat parameters after STEPS optimizer steps on the same rollouts."""
    cfg = _config(tmp_path / loss_type, loss_type=loss_type, bf16=bf16)
    start = make_tiny()
    with torch.no_grad():  # larger weights than the init, so completions and gradients vary
        for p in start.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    rollouts = _rollouts(start, tokenizer, cfg)
    trl_model = _train_trl(copy.deepcopy(start), tokenizer, cfg, rollouts, tmp_path / loss_type)
    ours = _train_ours(copy.deepcopy(start), tokenizer, cfg, rollouts, monkeypatch)

    def flat(model):
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    return flat(start), flat(ours), flat(trl_model)


def _check_same_weights(tokenizer, make_tiny, tmp_path, monkeypatch, loss_type):
    cfg = _config(tmp_path)
    p0, ours, trl = _updates(tokenizer, make_tiny, tmp_path, monkeypatch, loss_type)
    diff, move = (ours - trl).abs(), (trl - p0).abs()
    # Adam moves almost every weight by about lr per step (lr is 0 at step 1: warmup); the two
    # trainers agree to a tiny fraction of one step's move everywhere
    assert (move > 0).float().mean() > 0.99 and move.mean() > 0.3 * cfg.learning_rate
    assert diff.max() < 1e-2 * cfg.learning_rate, (diff.max(), move.mean())
    assert diff.mean() < 1e-5 * move.mean(), (diff.mean(), move.mean())
    return ours


def test_same_rollouts_give_the_same_weights_as_trl(tokenizer, make_tiny, tmp_path, monkeypatch):
    """Three optimizer steps of dapo and of grpo (per-sequence means) on the same rollouts."""
    dapo = _check_same_weights(tokenizer, make_tiny, tmp_path, monkeypatch, "dapo")
    grpo = _check_same_weights(tokenizer, make_tiny, tmp_path, monkeypatch, "grpo")
    assert (dapo - grpo).abs().max() > 0.1 * 1e-3  # the loss types really differ on these rollouts


def test_same_rollouts_give_the_same_weights_as_trl_in_bf16(tokenizer, make_tiny, tmp_path, monkeypatch):
    """The post's precision: both updates under bf16 autocast (Lightning's bf16-mixed, TRL's
    ``compute_loss_context_manager``). bf16 rounds each product to 8 mantissa bits, so the two
    code paths agree to a small fraction of the move, not to float32's last bits."""
    p0, ours, trl = _updates(tokenizer, make_tiny, tmp_path, monkeypatch, "dapo", bf16=True)
    diff, move = (ours - trl).abs(), (trl - p0).abs()
    assert diff.mean() < 2e-2 * move.mean(), (diff.mean(), move.mean())
    assert ((ours - p0).sign() == (trl - p0).sign()).float().mean() > 0.99


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_prompt_order_matches_trl_for_any_seed(tokenizer, make_tiny, tmp_path, seed):
    """The prompts of the engine's first 2 epochs equal the order of TRL's own train dataloader."""
    cfg = _config(tmp_path, seed=seed, train_size=12, per_device_train_batch_size=8, num_generations=4)
    rows = training_rows(cfg)
    trainer = GRPOTrainer(model=make_tiny(), args=trl_args(cfg, tmp_path / "trl"), processing_class=tokenizer,
                          reward_funcs=named_reward_funcs(["correctness"]), train_dataset=Dataset.from_list(rows))
    loader = trainer.get_train_dataloader()
    windows = len(rows) // cfg.prompts_per_step
    trl_order = []
    for _ in range(2):  # two epochs, as the Trainer iterates them
        for batch in loader:
            trl_order.append([x["question"] for x in batch[::cfg.num_generations]])
    assert len(trl_order) == 2 * windows
    stream = PromptStream(rows, cfg.prompts_per_step, cfg.gradient_accumulation_steps * cfg.num_iterations,
                          cfg.seed, few_shot=cfg.few_shot)
    ours = [stream[i]["question"] for i in range(2 * windows)]
    assert ours == trl_order
    assert trl_order[:windows] != trl_order[windows:]  # reshuffled each epoch
