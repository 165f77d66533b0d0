"""Questions, prompts and the prompt stream of a GRPO run.

Rows are ``{"question": str, "answer": str}``: reasoning-gym tasks (``basic_arithmetic``,
``chain_sum``, ``gsm_symbolic``, any task name reasoning-gym knows) generated from a seed, or
GSM8K (``openai/gsm8k``) read through ``llm_exploration.data.load_dataset`` (its ``answer``
keeps the full solution ending in ``#### N``; the reward functions read the final number).

A prompt is a chat (TRL's conversational format): a system message asking for the
``<think>…</think><answer>…</answer>`` format, ``few_shot`` worked example turns that show the
format, then the question. SmolLM2-135M-Instruct never writes the answer tags from the system
message alone (DESIGN.md); one example turn makes it use them in a fair share of samples.

The training stream is indexed by micro-step: item ``i`` holds the prompts of micro-step ``i``,
a pure function of (seed, i, rank), so that a run resumed from a checkpoint sees exactly the
prompts it would have seen (``GRPODataModule.state_dict`` remembers the next index).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

SYSTEM_PROMPT = (
    "You are a careful assistant that solves math problems. First reason step by step inside "
    "<think> </think> tags, then write only the final number inside <answer> </answer> tags."
)

FEW_SHOT_EXAMPLES: list[tuple[str, str]] = [
    ("Calculate 14 + 29 - 5.",
     "<think>14 + 29 = 43. 43 - 5 = 38.</think>\n<answer>38</answer>"),
    ("A box holds 6 rows of 7 eggs. 9 eggs break. How many eggs are left?",
     "<think>6 * 7 = 42 eggs. 42 - 9 = 33.</think>\n<answer>33</answer>"),
    ("State the final answer to the following arithmetic problem: 12 - 30 + 8 =",
     "<think>12 - 30 = -18. -18 + 8 = -10.</think>\n<answer>-10</answer>"),
]
"""Worked examples in the target format, phrased like the tasks' questions; ``load_rows`` never
returns one of these questions."""

GSM8K = "openai/gsm8k"
_EVAL_SEED_OFFSET = 1_000_003
HELD_OUT_EVERY = 4
"""One question in four (by hash) is held out: see :func:`held_out`."""


def build_messages(question: str, system_prompt: str | None = None, few_shot: int = 3) -> list[dict[str, str]]:
    """The chat for one question: system message, ``few_shot`` example turns, the question."""
    if few_shot > len(FEW_SHOT_EXAMPLES):
        raise ValueError(f"few_shot={few_shot}: only {len(FEW_SHOT_EXAMPLES)} examples exist.")
    messages = [{"role": "system", "content": system_prompt or SYSTEM_PROMPT}]
    for q, a in FEW_SHOT_EXAMPLES[:few_shot]:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": question})
    return messages


def apply_template(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The chat-templated prompt text, ending with the assistant turn's header."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def held_out(question: str) -> bool:
    """Whether a question belongs to the held-out part of its task's problem space: a fixed
    1 in ``HELD_OUT_EVERY`` share chosen by a hash of the question text. Training never sees
    these questions, and both parts keep the task's mix of easy and hard questions (removing
    training questions from a held-out draw would leave only the hard ones where the easy part
    of the space is small, like the 100 one-digit products)."""
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % HELD_OUT_EVERY == 0


def load_rows(dataset: str, split: str, size: int, seed: int = 0,
              dataset_kwargs: dict[str, Any] | None = None,
              exclude: Sequence[str] = ()) -> list[dict[str, str]]:
    """``size`` rows of ``{"question", "answer"}``, distinct questions.

    reasoning-gym: questions are drawn with ``seed`` (``train``) or a disjoint seed (any other
    split) and kept when :func:`held_out` puts them in the split's part of the problem space
    (``train``: the rest; other splits: the held-out share), so the splits never share a
    question; questions in ``exclude`` are dropped too. Fewer rows, with a warning, when the
    space runs out. GSM8K: the first ``size`` rows of the split (``train`` / ``test``).
    """
    excluded = set(exclude) | {q for q, _ in FEW_SHOT_EXAMPLES}
    if dataset == GSM8K:
        from llm_exploration.data import load_dataset

        ds = load_dataset(GSM8K, "main", split=split)
        rows = [{"question": r["question"], "answer": r["answer"]} for r in ds.select(range(min(size, len(ds))))]
        return [r for r in rows if r["question"] not in excluded]
    import reasoning_gym

    kwargs = dict(dataset_kwargs or {})
    want_held_out = split != "train"
    rg_seed = seed + _EVAL_SEED_OFFSET if want_held_out else seed
    draws = (HELD_OUT_EVERY if want_held_out else 2) * 20 * (size + len(excluded)) + 100
    try:  # items are generated lazily: ask for many, stop at ``size`` distinct questions
        ds = reasoning_gym.create_dataset(dataset, size=draws, seed=rg_seed, **kwargs)
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"dataset={dataset!r} with dataset_kwargs={kwargs}: reasoning-gym refused it "
                         f"({err}). Use a reasoning-gym task name or {GSM8K!r}.") from err
    rows, seen = [], set()
    for item in ds:
        q = item["question"]
        if q in excluded or q in seen or held_out(q) != want_held_out:
            continue
        seen.add(q)
        rows.append({"question": q, "answer": str(item["answer"])})
        if len(rows) == size:
            break
    if not rows:
        raise ValueError(f"no {split} questions for {dataset!r}: the task's problem space is too small.")
    if len(rows) < size:
        warnings.warn(f"{dataset!r} {split}: only {len(rows)} distinct questions of the {size} asked "
                      "(the task's problem space is small).", stacklevel=2)
    return rows


class PromptStream(Dataset):
    """Item ``i`` = the prompts of micro-step ``i`` on this rank (a dict of equal-length lists:
    ``prompt`` (chat messages), ``question``, ``answer``) plus ``index = i``.

    Micro-steps come in windows of ``repeats = gradient_accumulation_steps * num_iterations``
    that share one rollout (the same prompts); windows walk through a fresh permutation of
    the rows each epoch, each rank taking its own disjoint slice. The permutations are TRL's
    (``RepeatSampler``): epoch e uses the e-th ``torch.randperm`` of one generator seeded with
    ``seed``, so for any seed both trainers see the prompts in the same order.
    """

    def __init__(self, rows: list[dict[str, str]], prompts_per_step: int, repeats: int, seed: int,
                 rank: int = 0, world_size: int = 1, system_prompt: str | None = None,
                 few_shot: int = 3, length: int = 10**9) -> None:
        self.rows, self.pps, self.repeats, self.seed = rows, prompts_per_step, repeats, seed
        self.rank, self.world = rank, world_size
        self.windows_per_epoch = len(rows) // (prompts_per_step * world_size)
        if self.windows_per_epoch == 0:
            raise ValueError(f"{len(rows)} training questions cannot fill one rollout of "
                             f"{prompts_per_step} prompts on {world_size} process(es); raise train_size.")
        self.system_prompt, self.few_shot, self.length = system_prompt, few_shot, length
        self._generator = torch.Generator().manual_seed(seed)
        self._perms: list[list[int]] = []

    def __len__(self) -> int:
        return self.length

    def indices(self, i: int) -> list[int]:
        window = i // self.repeats
        epoch, w = divmod(window, self.windows_per_epoch)
        while len(self._perms) <= epoch:  # the generator's draws in order, as RepeatSampler makes them
            self._perms.append(torch.randperm(len(self.rows), generator=self._generator).tolist())
        start = (w * self.world + self.rank) * self.pps
        return self._perms[epoch][start:start + self.pps]

    def __getitem__(self, i: int) -> dict[str, Any]:
        rows = [self.rows[k] for k in self.indices(i)]
        batch: dict[str, Any] = {k: [r[k] for r in rows] for k in rows[0]}
        batch["prompt"] = [build_messages(r["question"], self.system_prompt, self.few_shot) for r in rows]
        batch["index"] = i
        return batch


def _identity(item: Any) -> Any:
    return item


class _ResumableLoader(DataLoader):
    """Marks the loader as resumable for Lightning (the DataModule holds the real position)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class GRPODataModule(L.LightningDataModule):
    """Training prompts for ``GRPOModule`` and held-out rows for evaluation."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.next_index = 0
        self.train_rows: list[dict[str, str]] = []
        self.eval_rows: list[dict[str, str]] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_rows:
            return
        c = self.config
        self.train_rows = load_rows(c.dataset, "train", c.train_size, c.seed, c.dataset_kwargs)
        if c.eval_size > 0:
            split = "test" if c.dataset == GSM8K else "eval"
            self.eval_rows = load_rows(c.dataset, split, c.eval_size, c.seed, c.dataset_kwargs,
                                       exclude=[r["question"] for r in self.train_rows])

    def train_dataloader(self) -> DataLoader:
        c = self.config
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        stream = PromptStream(self.train_rows, c.prompts_per_step,
                              c.gradient_accumulation_steps * c.num_iterations, c.seed, rank, world,
                              c.system_prompt, c.few_shot)
        start = self.next_index
        return _ResumableLoader(stream, batch_size=None, sampler=range(start, len(stream)),
                                collate_fn=_identity)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "index" in batch:
            self.next_index = int(batch["index"]) + 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"next_index": self.next_index}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.next_index = int(state_dict["next_index"])
