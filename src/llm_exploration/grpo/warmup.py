"""Format seeding by a short supervised warm-up on the model's own answers, re-wrapped.

SmolLM2-135M-Instruct never writes ``<answer>`` tags from the system prompt alone, so a reward
paid inside the tags has nothing to reinforce. Worked examples in the prompt fix that but make
every prompt several times longer than the answer. The alternative here costs a few seconds
once: take the model's own greedy answers to some *training* questions, wrap each one as
``<think>{its text}</think>\\n<answer>{its last number}</answer>`` and fine-tune on them for a
few steps (cross-entropy on the answer tokens only). The targets carry no new arithmetic: a
wrong answer stays wrong, so the warm-up moves the format and leaves correctness where it was
(the post measures both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from llm_exploration.grpo.data import apply_template, build_messages
from llm_exploration.grpo.rewards import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, last_number
from llm_exploration.grpo.rollout import generate, left_pad, tokenize_prompts


def wrap_in_format(text: str) -> str | None:
    """``<think>text</think>\\n<answer>N</answer>`` with N the text's last number (None if it has none).

    Tags already in the text are removed first, so the result has each tag exactly once."""
    for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE):
        text = text.replace(tag, " ")
    text = " ".join(text.split())
    number = last_number(text)
    if number is None:
        return None
    value = format(number.normalize(), "f") if number == number.to_integral_value() else str(number)
    if value in ("-0", "+0"):
        value = "0"
    return f"{THINK_OPEN}{text}{THINK_CLOSE}\n{ANSWER_OPEN}{value}{ANSWER_CLOSE}"


@torch.no_grad()
def own_answers_in_format(model: Any, tokenizer: Any, questions: Sequence[str], *, max_completion_length: int,
                          system_prompt: str | None = None, batch_size: int = 32) -> list[dict[str, str]]:
    """The model's greedy answer to each question (zero-shot prompt), re-wrapped by
    :func:`wrap_in_format`. Skipped: answers cut off at ``max_completion_length`` (their last
    number is often a truncated one), answers with no number, and targets that would not fit
    in ``max_completion_length`` tokens with their tags (a warm-up on them would teach answers
    that the trainer then truncates). Returns ``[{"question", "target"}]``."""
    out = []
    for s in range(0, len(questions), batch_size):
        chunk = list(questions[s:s + batch_size])
        texts = [apply_template(tokenizer, build_messages(q, system_prompt, 0)) for q in chunk]
        ids, mask = tokenize_prompts(tokenizer, texts)
        device = next(model.parameters()).device
        r = generate(model, tokenizer, ids.to(device), mask.to(device), 1,
                     max_completion_length=max_completion_length, do_sample=False)
        finished = (r.completion_ids == tokenizer.eos_token_id).any(1).tolist()
        for q, text, done in zip(chunk, tokenizer.batch_decode(r.completion_ids, skip_special_tokens=True), finished):
            target = wrap_in_format(text) if done else None
            if target is not None and len(tokenizer(target, add_special_tokens=False)["input_ids"]) < max_completion_length:
                out.append({"question": q, "target": target})
    return out


def supervised_batch(tokenizer: Any, examples: Sequence[dict[str, str]],
                     system_prompt: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask, loss_mask)`` (N, L) for zero-shot prompt + target + EOS; the loss
    mask is 1 on the target tokens and the EOS, 0 on the prompt and padding (left-padded)."""
    rows, loss_rows = [], []
    for ex in examples:
        prompt = tokenizer(apply_template(tokenizer, build_messages(ex["question"], system_prompt, 0)),
                           add_special_tokens=False)["input_ids"]
        target = tokenizer(ex["target"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt + target)
        loss_rows.append([0] * len(prompt) + [1] * len(target))
    ids, mask = left_pad(rows, tokenizer.pad_token_id)
    loss_mask, _ = left_pad(loss_rows, 0)
    return ids, mask, loss_mask


def format_warmup(model: Any, tokenizer: Any, examples: Sequence[dict[str, str]], *, steps: int,
                  learning_rate: float = 5e-5, batch_size: int = 8, bf16: bool = False,
                  system_prompt: str | None = None, seed: int = 0) -> list[float]:
    """Fine-tune ``model`` in place for ``steps`` AdamW steps of ``batch_size`` examples (cycling
    through ``examples`` in a seeded order), token-mean cross-entropy on the targets.
    Returns the loss of every step. The model is left in eval mode."""
    if steps < 1 or not examples:
        raise ValueError(f"format_warmup needs steps >= 1 and examples (got steps={steps}, "
                         f"{len(examples)} examples).")
    ids, mask, loss_mask = supervised_batch(tokenizer, examples, system_prompt)
    device = next(model.parameters()).device
    ids, mask, loss_mask = ids.to(device), mask.to(device), loss_mask.to(device)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    order = order * math.ceil(steps * batch_size / len(order))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate,
                                  weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        rows = torch.tensor(order[step * batch_size:(step + 1) * batch_size], device=device)
        keep = mask[rows].sum(0) > 0  # drop columns that are padding in every row of this batch
        b_ids, b_mask, b_loss = ids[rows][:, keep], mask[rows][:, keep], loss_mask[rows][:, keep]
        position = (b_mask.cumsum(-1) - 1).clamp(min=0)
        keep_last = int(b_loss.sum(1).max()) + 1  # the targets sit at the end of every row
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=b_ids, attention_mask=b_mask, position_ids=position,
                           logits_to_keep=keep_last).logits[:, :-1]
        target, weight = b_ids[:, -keep_last + 1:], b_loss[:, -keep_last + 1:].float()
        nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")
        loss = (nll * weight).sum() / weight.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return losses
