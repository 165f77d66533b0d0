"""The post's experiment around the trainers: choosing a task by the base model's pass@k,
measuring a way of seeding the answer format, held-out scores per question, and the table of
both trainers' settings read from their configs.

Held-out scores are per question (the fraction of its ``k`` samples that are correct), so that
:mod:`llm_exploration.grpo.stats` can bootstrap over questions and seeds; pass@k uses the
unbiased estimator with ``n = k`` samples (then simply "any sample correct").
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from llm_exploration.grpo.compare import SHARED_SETTINGS, generation_precision
from llm_exploration.grpo.config import GRPOConfig
from llm_exploration.grpo.data import apply_template, build_messages, load_rows
from llm_exploration.grpo.evaluate import EvalResult, evaluate
from llm_exploration.intervals import pass_at_k


def score(model: Any, tokenizer: Any, rows: list[dict[str, str]], *, k: int, max_completion_length: int,
          temperature: float = 1.0, few_shot: int = 0, bf16: bool = True, batch_size: int = 64,
          seed: int = 0) -> EvalResult:
    """``k`` samples per question at ``temperature`` (``k = 1``: greedy), in bf16 autocast on CPU."""
    device = next(model.parameters()).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        return evaluate(model, tokenizer, rows, n_samples=k, temperature=temperature if k > 1 else 0.0,
                        max_completion_length=max_completion_length, batch_size=batch_size,
                        few_shot=few_shot, seed=seed)


def per_question(result: EvalResult, key: str = "lenient") -> np.ndarray:
    """(questions,) fraction of each question's samples that are correct (``key``: ``lenient``,
    ``strict`` or ``format``)."""
    values = np.array([float(s[key] or 0.0) for s in result.samples])
    return values.reshape(result.n_questions, result.n_samples).mean(1)


def pass_at(result: EvalResult, k: int, key: str = "lenient") -> float:
    """Mean over questions of the unbiased pass@k from the result's ``n_samples`` samples."""
    n = result.n_samples
    correct = np.rint(per_question(result, key) * n).astype(int)
    return float(np.mean([pass_at_k(n, int(c), k) for c in correct]))


def survey(model: Any, tokenizer: Any, candidates: dict[str, tuple[str, dict[str, Any]]], *, n_questions: int,
           k: int, max_completion_length: int, temperature: float = 1.0, baseline_temperature: float = 1.0,
           few_shot: int = 0) -> pd.DataFrame:
    """The base model on each candidate task (lenient: the last number in the text): greedy
    accuracy; pass@1 at ``baseline_temperature`` when it differs from ``temperature``; pass@1,
    pass@k and the share of questions with 0 < correct < k (the groups GRPO can learn from) at
    ``temperature``, the rollouts' sampling temperature."""
    rows = []
    for name, (dataset, kwargs) in candidates.items():
        questions = load_rows(dataset, "train", n_questions, 0, kwargs)
        common = {"max_completion_length": max_completion_length, "few_shot": few_shot}
        row: dict[str, Any] = {"task": name, "greedy": score(model, tokenizer, questions, k=1, **common).lenient_accuracy}
        if baseline_temperature != temperature:
            row[f"pass@1, T={baseline_temperature:g}"] = score(
                model, tokenizer, questions, k=k, temperature=baseline_temperature, **common).lenient_accuracy
        sampled = score(model, tokenizer, questions, k=k, temperature=temperature, **common)
        frac = per_question(sampled)
        row.update({f"pass@1, T={temperature:g}": sampled.lenient_accuracy, f"pass@{k}, T={temperature:g}": pass_at(sampled, k),
                    "mixed groups": float(np.mean((frac > 0) & (frac < 1))), "questions": len(questions)})
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


def seeding_row(name: str, model: Any, tokenizer: Any, rows: list[dict[str, str]], *, few_shot: int,
                max_completion_length: int, setup_s: float = 0.0, result: EvalResult | None = None) -> dict[str, Any]:
    """One way of seeding the format, measured on ``rows`` by greedy decoding (or read from
    ``result``, greedy answers already taken): prompt length, format rate, strict and lenient
    accuracy, finished share, and the seconds it took (setup + evaluation)."""
    start = time.perf_counter()
    r = result or score(model, tokenizer, rows, k=1, max_completion_length=max_completion_length, few_shot=few_shot)
    prompt = apply_template(tokenizer, build_messages(rows[0]["question"], None, few_shot))
    return {"seeding": name, "prompt tokens": len(tokenizer(prompt, add_special_tokens=False)["input_ids"]),
            "format": r.format_rate, "strict": r.strict_accuracy, "lenient": r.lenient_accuracy,
            "finished": r.finished_rate, "seconds": setup_s + time.perf_counter() - start}


_EXTRA_TRL = ("optim", "adam_epsilon", "min_p", "repetition_penalty", "mask_truncated_completions",
              "importance_sampling_level", "top_entropy_quantile", "generation_batch_size", "steps_per_generation",
              "shuffle_dataset", "data_seed", "use_vllm", "fp16", "torch_compile")


def settings_table(cfg: GRPOConfig, trl_cfg: Any) -> pd.DataFrame:
    """Every shared setting as the two configs hold it at run time (``same`` says whether they
    agree), then TRL-only settings that change the update or the sampling, next to what the
    engine does instead (its config's value where it has the field, else its fixed behaviour)."""
    fixed = {"optim": "adamw fused (torch.optim.AdamW, fused=True)", "adam_epsilon": "1e-08 (torch default)",
             "min_p": "none", "repetition_penalty": "none (1.0)", "mask_truncated_completions": "False",
             "importance_sampling_level": "token", "top_entropy_quantile": "1.0 (all tokens)",
             "steps_per_generation": "gradient_accumulation_steps", "shuffle_dataset": "True (TRL's RepeatSampler order)",
             "data_seed": "None (seed)", "use_vllm": "False", "fp16": "False", "torch_compile": "False"}
    rows = []
    for name in SHARED_SETTINGS:
        ours, trl = getattr(cfg, name), getattr(trl_cfg, name)
        trl = getattr(trl, "value", trl)  # enums (lr_scheduler_type) as their string
        rows.append({"setting": name, "ours": str(ours), "TRL": str(trl), "same": ours == trl})
    precision = generation_precision(cfg)
    rows.append({"setting": "generation precision", "ours": precision, "TRL": precision + " (rollouts wrapped)",
                 "same": True})
    for name in _EXTRA_TRL:
        if not hasattr(trl_cfg, name):
            continue
        ours = str(getattr(cfg, name)) if hasattr(cfg, name) else fixed.get(name, "n/a")
        trl = getattr(trl_cfg, name)
        trl = getattr(trl, "value", trl)  # enums (optim) as their string
        rows.append({"setting": name, "ours": ours, "TRL": str(trl), "same": None})
    return pd.DataFrame(rows)
