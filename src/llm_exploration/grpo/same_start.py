"""Both trainers' rollouts from one start: each trainer's own sampling code on the same prompts.

The update paths are equal on identical rollouts (``tests/grpo/test_trl_equivalence.py``), so a
gap between the trainers' results has to come from what each one samples. Here both sample the
same prompts from the same weights, each with its own code: the engine's ``generate`` under the
bf16 autocast that Lightning's ``bf16-mixed`` puts around it, and TRL's ``GRPOTrainer._generate``
wrapped in the same autocast as in :func:`compare.train_trl`. The completions are scored with the
same reward functions. :func:`trl_sampling_settings` reads the sampling settings TRL's
``model.generate`` really uses, after transformers fills the ones TRL leaves unset (``None``)
from the model's generation config and its global defaults.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from llm_exploration.grpo import compare
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import apply_template, build_messages
from llm_exploration.grpo.rewards import REWARD_FUNCS
from llm_exploration.grpo.rollout import eos_token_ids, generate, tokenize_prompts

SAMPLING_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens")


def _score(cfg: GRPOConfig, rows: list[dict[str, str]], texts: list[str], tokens: list[int],
           finished: list[bool]) -> pd.DataFrame:
    G = cfg.num_generations
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    answers = [r["answer"] for r in rows for _ in range(G)]
    out = pd.DataFrame({"prompt": np.repeat(np.arange(len(rows)), G), "completion": texts,
                        "tokens": tokens, "finished": np.asarray(finished, float)})
    for name in dict.fromkeys([*cfg.reward_funcs, "lenient_correctness"]):
        out[name] = [np.nan if v is None else v for v in REWARD_FUNCS[name](None, completions, answer=answers)]
    return out


def sample_ours(model: Any, tokenizer: Any, cfg: GRPOConfig, rows: list[dict[str, str]], seed: int = 0) -> pd.DataFrame:
    """One completion per row of the result: the engine's rollouts, ``prompts_per_step`` prompts
    at a time as in training, ``num_generations`` samples each, scored."""
    torch.manual_seed(seed)
    texts, tokens, finished = [], [], []
    for s in range(0, len(rows), cfg.prompts_per_step):
        chunk = rows[s:s + cfg.prompts_per_step]
        prompts = [apply_template(tokenizer, build_messages(r["question"], cfg.system_prompt, cfg.few_shot)) for r in chunk]
        ids, mask = tokenize_prompts(tokenizer, prompts)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            r = generate(model, tokenizer, ids, mask, cfg.num_generations, max_completion_length=cfg.max_completion_length,
                         temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k)
        texts += tokenizer.batch_decode(r.completion_ids, skip_special_tokens=True)
        tokens += r.completion_lengths.tolist()
        finished += (~r.is_truncated).tolist()
    return _score(cfg, rows, texts, tokens, finished)


def trl_trainer(cfg: GRPOConfig, model: str | Path) -> Any:
    """TRL's ``GRPOTrainer`` at ``cfg`` (bf16 rollouts as in :func:`compare.train_trl`), not trained."""
    from datasets import Dataset
    from trl import GRPOTrainer

    return compare._bf16_generation(GRPOTrainer)(
        model=str(model), args=compare.trl_args(cfg, tempfile.mkdtemp(prefix="grpo-trl-sample-")),
        reward_funcs=compare.named_reward_funcs(cfg.reward_funcs),
        train_dataset=Dataset.from_list(compare.training_rows(cfg)))


def trl_sampling_settings(trainer: Any) -> dict[str, Any]:
    """The sampling settings of TRL's rollouts as ``generate`` resolves them (TRL's
    ``generation_config`` completed by the model's generation config and transformers' defaults)."""
    resolved, _ = trainer.model._prepare_generation_config(trainer.generation_config)
    return {name: getattr(resolved, name, None) for name in SAMPLING_FIELDS}


def sample_trl(trainer: Any, cfg: GRPOConfig, rows: list[dict[str, str]], seed: int = 0) -> pd.DataFrame:
    """As :func:`sample_ours`, with TRL's own rollout code (``GRPOTrainer._generate``): each prompt
    repeated ``num_generations`` times in a row, as TRL's ``RepeatSampler`` lays a batch out."""
    torch.manual_seed(seed)
    trainer.model.train()  # as during training
    eos = set(eos_token_ids(trainer.model, trainer.processing_class))
    texts, tokens, finished = [], [], []
    for s in range(0, len(rows), cfg.prompts_per_step):
        chunk = rows[s:s + cfg.prompts_per_step]
        prompts = [build_messages(r["question"], cfg.system_prompt, cfg.few_shot)
                   for r in chunk for _ in range(cfg.num_generations)]
        _, completion_ids, _, completions = trainer._generate(prompts)[:4]
        texts += [c[0]["content"] if isinstance(c, list) else c for c in completions]
        tokens += [len(c) for c in completion_ids]
        finished += [bool(len(c)) and int(c[-1]) in eos for c in completion_ids]
    return _score(cfg, rows, texts, tokens, finished)


def compare_samples(ours: pd.DataFrame, trl: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per measure (each reward, completion tokens, finished share): both trainers' means and the
    difference ours - TRL with a 95% bootstrap interval over prompts (paired: same prompts)."""
    rng = np.random.default_rng(seed)
    measures = [c for c in ours.columns if c not in ("prompt", "completion")]
    a, b = ours.groupby("prompt")[measures].mean(), trl.groupby("prompt")[measures].mean()
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    rows = []
    for m in measures:
        d = (a[m] - b[m]).to_numpy()
        boot = d[idx].mean(1)
        rows.append({"measure": m, "ours": a[m].mean(), "TRL": b[m].mean(), "ours - TRL": d.mean(),
                     "low": np.percentile(boot, 2.5), "high": np.percentile(boot, 97.5)})
    return pd.DataFrame(rows).set_index("measure")
