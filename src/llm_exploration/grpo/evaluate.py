"""Accuracy of a policy on held-out questions: strict (inside ``<answer>`` tags) and lenient
(the last number anywhere), with n samples per question, as a table and JSON.

``n_samples=1, temperature=0`` is greedy decoding; otherwise each question gets n sampled
completions and accuracies are means over all question × sample pairs (``pass@1`` estimated
from n samples), with ``pass@n`` (any sample correct) beside them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from llm_exploration.grpo.data import apply_template, build_messages
from llm_exploration.grpo.rewards import (
    correctness_reward,
    format_strict_reward,
    lenient_correctness_reward,
)
from llm_exploration.grpo.rollout import generate, tokenize_prompts


@dataclass
class EvalResult:
    """Accuracies in [0, 1] over ``n_questions * n_samples`` completions."""

    n_questions: int
    n_samples: int
    strict_accuracy: float
    lenient_accuracy: float
    format_rate: float  # completions in the exact think/answer format
    strict_pass_at_n: float
    lenient_pass_at_n: float
    strict_stderr: float  # binomial standard error of strict_accuracy over questions
    lenient_stderr: float
    finished_rate: float = 1.0  # completions that ended with EOS within max_completion_length
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def table(self) -> str:
        """A small Markdown table of the headline numbers."""
        rows = [("strict accuracy (answer tags)", f"{self.strict_accuracy:.3f} ± {self.strict_stderr:.3f}"),
                ("lenient accuracy (last number)", f"{self.lenient_accuracy:.3f} ± {self.lenient_stderr:.3f}"),
                ("format rate (strict tags)", f"{self.format_rate:.3f}"),
                (f"strict pass@{self.n_samples}", f"{self.strict_pass_at_n:.3f}"),
                (f"lenient pass@{self.n_samples}", f"{self.lenient_pass_at_n:.3f}")]
        head = f"| metric ({self.n_questions} questions × {self.n_samples} samples) | value |\n|---|---|\n"
        return head + "\n".join(f"| {a} | {b} |" for a, b in rows)

    def to_json(self, path: str | Path | None = None, with_samples: bool = True) -> str:
        data = asdict(self)
        if not with_samples:
            data.pop("samples")
        text = json.dumps(data, indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text


def _stderr(per_question: list[float]) -> float:
    n = len(per_question)
    if n < 2:
        return 0.0
    mean = sum(per_question) / n
    return math.sqrt(sum((x - mean) ** 2 for x in per_question) / (n - 1) / n)


def evaluate(model: torch.nn.Module, tokenizer: Any, rows: list[dict[str, str]], *, n_samples: int = 1,
             temperature: float = 0.0, max_completion_length: int = 128, batch_size: int = 16,
             system_prompt: str | None = None, few_shot: int = 3, seed: int = 0) -> EvalResult:
    """Score ``rows`` (``{"question", "answer"}``) with ``n_samples`` completions each."""
    if n_samples < 1:
        raise ValueError(f"n_samples={n_samples} must be >= 1.")
    if n_samples > 1 and temperature <= 0:
        raise ValueError("n_samples > 1 with temperature 0 repeats the greedy answer; set temperature > 0.")
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    per_prompt = max(1, batch_size // n_samples)
    samples: list[dict[str, Any]] = []
    for s in range(0, len(rows), per_prompt):
        chunk = rows[s:s + per_prompt]
        messages = [build_messages(r["question"], system_prompt, few_shot) for r in chunk]
        ids, mask = tokenize_prompts(tokenizer, [apply_template(tokenizer, m) for m in messages])
        r = generate(model, tokenizer, ids.to(device), mask.to(device), n_samples,
                     max_completion_length=max_completion_length, temperature=max(temperature, 1e-5),
                     do_sample=temperature > 0)
        texts = tokenizer.batch_decode(r.completion_ids, skip_special_tokens=True)
        answers = [row["answer"] for row in chunk for _ in range(n_samples)]
        strict = correctness_reward(None, texts, answer=answers)
        lenient = lenient_correctness_reward(None, texts, answer=answers)
        fmt = format_strict_reward(None, texts)
        finished = (~r.is_truncated).tolist()
        for k, text in enumerate(texts):
            row = chunk[k // n_samples]
            samples.append({"question": row["question"], "answer": row["answer"], "completion": text,
                            "strict": strict[k], "lenient": lenient[k] or 0.0, "format": fmt[k],
                            "finished": bool(finished[k])})
    by_q: dict[int, list[dict[str, Any]]] = {}
    for i, smp in enumerate(samples):
        by_q.setdefault(i // n_samples, []).append(smp)
    q_strict = [sum(x["strict"] for x in v) / n_samples for v in by_q.values()]
    q_lenient = [sum(x["lenient"] for x in v) / n_samples for v in by_q.values()]
    n = len(samples)
    return EvalResult(
        n_questions=len(rows), n_samples=n_samples,
        strict_accuracy=sum(x["strict"] for x in samples) / n,
        lenient_accuracy=sum(x["lenient"] for x in samples) / n,
        format_rate=sum(x["format"] for x in samples) / n,
        strict_pass_at_n=sum(any(x["strict"] for x in v) for v in by_q.values()) / len(by_q),
        lenient_pass_at_n=sum(any(x["lenient"] for x in v) for v in by_q.values()) / len(by_q),
        strict_stderr=_stderr(q_strict), lenient_stderr=_stderr(q_lenient),
        finished_rate=sum(x["finished"] for x in samples) / n, samples=samples)
