"""The LightningModule: one GRPO step, top to bottom.

Every ``gradient_accumulation_steps * num_iterations`` micro-steps (a *window*) the module
makes a rollout: it samples G completions for each prompt of the batch, scores them with the
reward functions, turns rewards into group-relative advantages, and (only when needed) stores
the old log-probs (μ > 1) and the reference log-probs (β > 0). Each micro-step then takes a
``per_device_train_batch_size`` slice of the rollout, recomputes its log-probs with gradient
and returns the GRPO loss; Lightning accumulates, clips (``configure_gradient_clipping``) and
steps the optimizer. This is TRL's schedule with ``steps_per_generation =
gradient_accumulation_steps``: one rollout per optimizer step, reused for μ optimizer steps.

Metrics, named like TRL's, are logged once per optimizer step; sample completions go to
``completions.jsonl`` beside the logger's ``metrics.csv`` (and to TensorBoard as text).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from transformers import get_scheduler

from llm_exploration.grpo.advantages import combine_rewards, group_advantages, nanstd
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import apply_template
from llm_exploration.grpo.loss import grpo_loss, loss_metrics
from llm_exploration.grpo.rewards import REWARD_FUNCS
from llm_exploration.grpo.rollout import Rollout, generate, per_token_logps, tokenize_prompts


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; training stops instead of silently running on NaNs."""


@dataclass
class RolloutBuffer:
    """One rollout plus what the loss needs, kept for the micro-steps of its window."""

    window_start: int  # index of the first micro-step of the window
    rollout: Rollout
    advantages: Tensor  # (B,)
    old_logps: Tensor | None  # (B, C) at μ > 1
    ref_logps: Tensor | None  # (B, C) at β > 0
    num_items_in_batch: Tensor  # completion tokens of the rollout over all processes

    def state(self) -> dict[str, Any]:
        """Plain dict of tensors (for checkpoints)."""
        return {"window_start": self.window_start, "rollout": dict(vars(self.rollout)),
                "advantages": self.advantages, "old_logps": self.old_logps, "ref_logps": self.ref_logps,
                "num_items_in_batch": self.num_items_in_batch}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device | str = "cpu") -> RolloutBuffer:
        def move(x: Any) -> Any:
            return x.to(device) if isinstance(x, Tensor) else x

        rollout = Rollout(**{k: move(v) for k, v in state["rollout"].items()})
        return cls(**{k: move(v) for k, v in state.items() if k != "rollout"}, rollout=rollout)


def load_policy(config: GRPOConfig) -> tuple[torch.nn.Module, Any]:
    """The policy and tokenizer named by ``config.model`` (embedded name, folder or hub id)."""
    from llm_exploration.models import load_causal_lm

    return load_causal_lm(config.model, attn_implementation=config.attn_implementation)


class GRPOModule(L.LightningModule):
    """GRPO on a causal LM. ``model``/``tokenizer`` default to ``config.model``;
    ``reward_funcs`` (TRL-signature callables) default to ``config.reward_funcs`` by name."""

    def __init__(self, config: GRPOConfig, model: torch.nn.Module | None = None, tokenizer: Any = None,
                 reward_funcs: Sequence[Callable[..., list]] | None = None) -> None:
        super().__init__()
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        if model is None:
            model, tokenizer = load_policy(config)
        if tokenizer is None:
            raise ValueError("Pass the tokenizer together with the model.")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.ref_model = None
        if config.beta > 0 and not config.use_peft:  # with LoRA, the reference is the adapter-free base
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        if config.gradient_checkpointing:
            model.config.use_cache = False
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.use_peft:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=config.lora_target_modules, task_type="CAUSAL_LM")
            model = get_peft_model(model, lora)
        self.policy = model.train()  # from_pretrained returns eval mode; LoRA dropout needs train
        self.reward_funcs = list(reward_funcs) if reward_funcs is not None else [
            REWARD_FUNCS[name] for name in config.reward_funcs]
        self.reward_names = [getattr(f, "__name__", f"reward_{i}") for i, f in enumerate(self.reward_funcs)]
        weights = config.reward_weights or [1.0] * len(self.reward_funcs)
        if len(weights) != len(self.reward_funcs):
            raise ValueError(f"{len(weights)} reward_weights for {len(self.reward_funcs)} reward functions.")
        self.register_buffer("reward_weights", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self.strict_loading = False  # checkpoints omit the frozen reference model
        self._buffer: RolloutBuffer | None = None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._num_tokens = 0.0
        self._t_step = 0.0  # wall time of the current optimizer step
        self._t_generate = 0.0  # of which: rollout (generation, rewards, old/ref log-probs)
        self._t_batch = 0.0

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        c = self.config
        params = [p for p in self.policy.parameters() if p.requires_grad]
        # fused AdamW, as TRL's default optimizer ``adamw_torch_fused``
        opt = torch.optim.AdamW(params, lr=c.learning_rate, betas=(c.adam_beta1, c.adam_beta2),
                                weight_decay=c.weight_decay, fused=True)

        # transformers' own schedules, so that the learning rate of every step is TRL's
        sched = get_scheduler(c.lr_scheduler_type, opt, num_warmup_steps=c.warmup_steps,
                              num_training_steps=c.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        params = [p for p in self.policy.parameters() if p.grad is not None]
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if not torch.isfinite(norm):
            raise NonFiniteError(f"Non-finite gradient norm ({norm.item()}) at optimizer step "
                                 f"{self.global_step + 1}: training stopped. Lower learning_rate, enable "
                                 "max_grad_norm, or check the rewards and the precision (bf16).")
        self._metrics["grad_norm"].append(norm.item())

    # ------------------------------------------------------------------ rollout
    def _gather(self, x: Tensor) -> Tensor:
        """Concatenate a per-process tensor over processes along dim 0 (identity on one)."""
        if self.trainer is None or self.trainer.world_size == 1:
            return x
        return self.all_gather(x).flatten(0, 1)

    def _chunked_logps(self, model: torch.nn.Module, r: Rollout) -> Tensor:
        bs, out = self.config.per_device_train_batch_size, []
        group = math.gcd(bs, self.config.num_generations)
        with torch.no_grad():
            for s in range(0, r.prompt_ids.size(0), bs):
                lp, _ = per_token_logps(model, r.prompt_ids[s:s + bs], r.prompt_mask[s:s + bs],
                                        r.completion_ids[s:s + bs], r.completion_mask[s:s + bs],
                                        temperature=self.config.temperature, group_size=group)
                out.append(lp)
        return torch.cat(out)

    def make_rollout(self, batch: dict[str, Any], window_start: int) -> RolloutBuffer:
        """Sample, score and normalise one rollout for the prompts of ``batch``."""
        c, G = self.config, self.config.num_generations
        t0 = time.perf_counter()
        prompt_texts = [apply_template(self.tokenizer, m) for m in batch["prompt"]]
        ids, mask = tokenize_prompts(self.tokenizer, prompt_texts, c.max_prompt_length)
        try:
            r = generate(self.policy, self.tokenizer, ids.to(self.device), mask.to(self.device), G,
                         max_completion_length=c.max_completion_length, temperature=c.temperature,
                         top_p=c.top_p, top_k=c.top_k, reuse_prompt_cache=c.reuse_prompt_cache)
        except RuntimeError as err:  # torch.multinomial on NaN/inf probabilities
            if "inf" not in str(err) and "nan" not in str(err):
                raise
            raise NonFiniteError(f"Non-finite logits while sampling the rollout of optimizer step "
                                 f"{self.global_step + 1}: the weights hold NaN/inf; training stopped. "
                                 "Lower learning_rate or check the precision (bf16).") from err
        texts = self.tokenizer.batch_decode(r.completion_ids, skip_special_tokens=True)
        completions = [[{"role": "assistant", "content": t}] for t in texts]  # conversational, as TRL
        prompts = [p for p in batch["prompt"] for _ in range(G)]
        columns = {k: [v for v in vals for _ in range(G)] for k, vals in batch.items()
                   if k not in ("prompt", "index")}
        completion_ids = [row[m.bool()].tolist() for row, m in zip(r.completion_ids, r.completion_mask)]
        rewards_per_func = torch.full((len(texts), len(self.reward_funcs)), math.nan)
        for j, func in enumerate(self.reward_funcs):
            values = func(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)
            if len(values) != len(texts):
                raise ValueError(f"reward function {self.reward_names[j]!r} returned {len(values)} "
                                 f"values for {len(texts)} completions.")
            rewards_per_func[:, j] = torch.tensor([math.nan if v is None else float(v) for v in values])
        rewards_per_func = rewards_per_func.to(self.device)
        rewards = combine_rewards(rewards_per_func, self.reward_weights)
        all_rewards = self._gather(rewards)
        adv = group_advantages(rewards, G, c.scale_rewards,
                               batch_std=nanstd(all_rewards) if c.scale_rewards == "batch" else None)
        old = self._chunked_logps(self.policy, r) if c.num_iterations > 1 else None
        ref = None
        if c.beta > 0:
            if self.ref_model is not None:
                ref = self._chunked_logps(self.ref_model, r)
            else:
                with self.policy.disable_adapter():
                    ref = self._chunked_logps(self.policy, r)
        lengths = self._gather(r.completion_lengths.float())
        truncated = self._gather(r.is_truncated.float())
        num_items = lengths.sum()
        prompt_tokens = self._gather(r.prompt_mask.sum().float().reshape(1)).sum()

        # --- metrics (TRL's names) ---
        m = self._metrics
        all_rpf = self._gather(rewards_per_func)
        for j, name in enumerate(self.reward_names):
            m[f"rewards/{name}/mean"].append(torch.nanmean(all_rpf[:, j]).item())
            m[f"rewards/{name}/std"].append(nanstd(all_rpf[:, j]).item())
        m["reward"].append(torch.nanmean(all_rewards).item())
        m["reward_std"].append(nanstd(all_rewards).item())
        m["frac_reward_zero_std"].append(self._gather(adv.is_std_zero.float()).mean().item())
        m["zero_std_groups"].append(self._gather(adv.group_std_zero.float()).sum().item())
        m["completions/mean_length"].append(lengths.mean().item())
        m["completions/min_length"].append(lengths.min().item())
        m["completions/max_length"].append(lengths.max().item())
        m["completions/clipped_ratio"].append(truncated.mean().item())
        term = lengths[truncated == 0]
        term = term if term.numel() else torch.zeros(1, device=lengths.device)
        m["completions/mean_terminated_length"].append(term.mean().item())
        self._num_tokens += (prompt_tokens + num_items).item()
        self._t_generate += time.perf_counter() - t0
        self._log_completions(batch, texts, rewards_per_func, adv.advantages)
        return RolloutBuffer(window_start, r, adv.advantages, old, ref, num_items)

    def _log_completions(self, batch: dict[str, Any], texts: list[str], rpf: Tensor, adv: Tensor) -> None:
        n = self.config.log_completions
        if n <= 0 or self.trainer is None or not self.trainer.is_global_zero or self.logger is None:
            return
        if self.global_step % max(1, self.config.logging_steps):
            return
        G = self.config.num_generations
        records = []
        for i in range(min(n, len(texts))):
            records.append({"step": self.global_step, "question": batch["question"][i // G]
                            if "question" in batch else None, "completion": texts[i],
                            **{name: rpf[i, j].item() for j, name in enumerate(self.reward_names)},
                            "advantage": adv[i].item()})
        log_dir = getattr(self.logger, "log_dir", None)
        if log_dir:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            with open(Path(log_dir) / "completions.jsonl", "a") as f:
                f.writelines(json.dumps(rec) + "\n" for rec in records)
        experiment = getattr(self.logger, "experiment", None)
        if hasattr(experiment, "add_text"):
            table = "| completion | advantage |\n|---|---|\n" + "\n".join(
                f"| {json.dumps(rec['completion'])[1:-1]} | {rec['advantage']:.3f} |" for rec in records)
            experiment.add_text("completions", table, self.global_step)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        c = self.config
        index = int(batch["index"])
        window = c.gradient_accumulation_steps * c.num_iterations
        window_start = index - index % window
        if self._buffer is None or self._buffer.window_start != window_start:
            self._buffer = self.make_rollout(batch, window_start)
        buf, r = self._buffer, self._buffer.rollout
        micro = index % c.gradient_accumulation_steps
        s = slice(micro * c.per_device_train_batch_size, (micro + 1) * c.per_device_train_batch_size)
        mask = r.completion_mask[s]
        logps, entropy = per_token_logps(
            self.policy, r.prompt_ids[s], r.prompt_mask[s], r.completion_ids[s], mask,
            temperature=c.temperature, group_size=math.gcd(c.per_device_train_batch_size, c.num_generations),
            compute_entropy=True)
        out = grpo_loss(
            logps, buf.advantages[s], mask, loss_type=c.loss_type, epsilon_low=c.epsilon_low,
            epsilon_high=c.epsilon_high_value,
            old_per_token_logps=None if buf.old_logps is None else buf.old_logps[s],
            beta=c.beta, ref_per_token_logps=None if buf.ref_logps is None else buf.ref_logps[s],
            max_completion_length=c.max_completion_length, num_items_in_batch=buf.num_items_in_batch,
            num_processes=self.trainer.world_size if self.trainer else 1,
            gradient_accumulation_steps=c.gradient_accumulation_steps)
        if not torch.isfinite(out.loss):
            raise NonFiniteError(f"Non-finite loss ({out.loss.item()}) at optimizer step {self.global_step + 1} "
                                 f"(micro-batch {micro}): training stopped. Check the rewards, the learning "
                                 "rate and the precision.")
        self._metrics["loss"].append(out.loss.detach().item())
        for k, v in loss_metrics(out, entropy, mask, self._gather).items():
            self._metrics[k].append(v)
        # Lightning divides the returned loss by gradient_accumulation_steps; TRL's dapo loss is
        # already normalised over the whole rollout, so undo that division for it.
        return out.loss * (c.gradient_accumulation_steps if c.loss_type == "dapo" else 1)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._t_batch = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # wall time of the micro-step: rollout (if any) + forward + backward + optimizer step
        self._t_step += time.perf_counter() - self._t_batch
        if (int(batch["index"]) + 1) % self.config.gradient_accumulation_steps:
            return  # not the end of an optimizer step
        metrics: dict[str, float] = {}
        for k, v in self._metrics.items():
            # sums: the step's loss (TRL logs the sum of its micro-batch losses) and group count
            if k in ("loss", "zero_std_groups"):
                metrics[k] = float(sum(v))
            else:
                metrics[k] = float(sum(v) / len(v))
        step_time = self._t_step
        metrics["num_tokens"] = self._num_tokens
        metrics["time/generate_s"] = self._t_generate
        metrics["time/update_s"] = step_time - self._t_generate
        metrics["step_time"] = step_time
        tokens = float(self._buffer.num_items_in_batch.item()) if self._buffer is not None else 0.0
        metrics["tokens_per_second"] = tokens / step_time if step_time > 0 else 0.0
        metrics["learning_rate"] = self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer else 0.0
        self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=False, sync_dist=False,
                      rank_zero_only=True)
        self._metrics.clear()
        self._t_generate = self._t_step = 0.0

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the frozen reference is rebuilt from config.model; do not store a second model copy
        for key in [k for k in checkpoint["state_dict"] if k.startswith("ref_model.")]:
            del checkpoint["state_dict"][key]
        checkpoint["grpo_state"] = {
            "num_tokens": self._num_tokens,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "buffer": None if self._buffer is None else self._buffer.state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("grpo_state")
        if state is None:
            return
        self._num_tokens = state["num_tokens"]
        self._pending_rng = (state["torch_rng"], state["cuda_rng"])
        self._buffer = None if state["buffer"] is None else RolloutBuffer.from_state(state["buffer"], self.device)

    def on_train_start(self) -> None:
        pending = getattr(self, "_pending_rng", None)
        if pending is not None:  # restore sampling RNG last, after Lightning's own setup
            torch.set_rng_state(pending[0])
            if pending[1] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(pending[1])
            self._pending_rng = None
