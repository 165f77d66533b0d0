"""Rollouts: sample G completions per prompt, mask them, and score their tokens' log-probs.

Shapes: U unique prompts, G samples each, B = U * G completion rows laid out group by group
(rows ``[u*G, (u+1)*G)`` belong to prompt u); P the (left-padded) prompt length, C the
(right-padded) completion length.

Two places reuse the prompt's keys and values across its G samples instead of recomputing them:

- generation: the prompt (all but its last token) is encoded once per prompt, its KV cache is
  repeated G times, and ``generate`` continues from it (``reuse_prompt_cache``);
- the training forward: each distinct prompt in a micro-batch is encoded once *with gradient*,
  its cache is repeated (``repeat_interleave`` is differentiable: the gradients of the G copies
  add up), and the completions are run on top. The log-probs and gradients equal those of G
  separate prompt+completion forwards (checked in the tests); the prompt costs 1/G as much.

Log-probs are computed only at completion positions, from ``logits / temperature`` (TRL's
convention), in row chunks so that the (rows, C, vocab) float32 temporaries stay small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


@dataclass
class Rollout:
    """The tensors of one rollout, on one device."""

    prompt_ids: Tensor  # (B, P) left-padded
    prompt_mask: Tensor  # (B, P) 1 on prompt tokens
    completion_ids: Tensor  # (B, C) right-padded with pad_token_id
    completion_mask: Tensor  # (B, C) 1 up to and including the first EOS
    is_truncated: Tensor  # (B,) bool: no EOS within max_completion_length

    @property
    def completion_lengths(self) -> Tensor:
        return self.completion_mask.sum(dim=1)


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[Tensor, Tensor]:
    """Left-pad token lists into ``(ids (N, L), mask (N, L))``."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, s in enumerate(sequences):
        if len(s):
            ids[i, length - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, length - len(s):] = 1
    return ids, mask


def tokenize_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                     max_prompt_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Tokenize already chat-templated prompt strings (no extra special tokens) and left-pad."""
    token_lists = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    if max_prompt_length is not None:
        longest = max(len(t) for t in token_lists)
        if longest > max_prompt_length:
            raise ValueError(f"A prompt has {longest} tokens > max_prompt_length={max_prompt_length}; "
                             "raise max_prompt_length or use fewer few_shot examples.")
    return left_pad(token_lists, tokenizer.pad_token_id)


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions counted over real tokens only (0 on left padding), as ``generate`` does."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 0)


def completion_mask(completion_ids: Tensor, eos_token_ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Mask that keeps every token up to and including the first EOS and drops what follows.

    Works when the pad token is the EOS token (SmolLM2): the first EOS is the real end, later
    ones are padding. Returns ``(mask (B, C) long, is_truncated (B,) bool)``.
    """
    is_eos = torch.isin(completion_ids, torch.as_tensor(list(eos_token_ids), device=completion_ids.device))
    has_eos = is_eos.any(dim=1)
    first = torch.where(has_eos, is_eos.int().argmax(dim=1),
                        torch.full_like(has_eos, completion_ids.size(1), dtype=torch.long))
    idx = torch.arange(completion_ids.size(1), device=completion_ids.device).unsqueeze(0)
    return (idx <= first.unsqueeze(1)).long(), ~has_eos


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every token id that ends a completion (the generation config's and the tokenizer's)."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _sampler(temperature: float, top_k: int, top_p: float) -> LogitsProcessorList:
    """transformers' own logits warpers, in ``generate``'s order: temperature, top-k, top-p."""
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_k > 0:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    num_generations: int,
    *,
    max_completion_length: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    reuse_prompt_cache: bool = True,
    do_sample: bool = True,
) -> Rollout:
    """Sample ``num_generations`` completions for each of U prompts ((U, P) inputs) -> a Rollout
    of B = U * G rows, grouped. ``do_sample=False`` decodes greedily.

    The same samples as ``model.generate`` (the same warpers, then ``torch.multinomial``), with
    two savings: the prompt is encoded once and its KV cache repeated G times
    (``reuse_prompt_cache``), and a completion that has ended leaves the batch (its rows are
    dropped from the cache), so each decoding step costs what the unfinished rows cost, not
    what the longest one does. The model is put in eval mode (no dropout) while sampling.
    """
    was_training = model.training
    model.eval()
    try:
        G, device = num_generations, prompt_ids.device
        eos = torch.as_tensor(eos_token_ids(model, tokenizer), device=device)
        ids = prompt_ids.repeat_interleave(G, dim=0)
        mask = prompt_mask.repeat_interleave(G, dim=0)
        if reuse_prompt_cache:
            out = model(input_ids=prompt_ids, attention_mask=prompt_mask,
                        position_ids=position_ids_from_mask(prompt_mask), use_cache=True, logits_to_keep=1)
            out.cache.batch_repeat_interleave(G)
            logits = out.logits[:, -1].float().repeat_interleave(G, dim=0)
        else:
            out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                        use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1].float()
        cache, warpers = out.cache, _sampler(temperature, top_k, top_p)
        completion_ids = torch.full((ids.size(0), max_completion_length), tokenizer.pad_token_id,
                                    dtype=torch.long, device=device)
        active = torch.arange(ids.size(0), device=device)  # rows still being written, in cache order
        attention = mask.clone()
        for t in range(max_completion_length):
            if do_sample:
                tokens = torch.multinomial(warpers(None, logits).softmax(dim=-1), 1).squeeze(1)
            else:
                tokens = logits.argmax(dim=-1)
            completion_ids[active, t] = tokens
            going = ~torch.isin(tokens, eos)
            if t == max_completion_length - 1 or not going.any():
                break
            if not going.all():  # finished rows leave the batch
                keep = going.nonzero().squeeze(1)
                active, tokens, attention = active[keep], tokens[keep], attention[keep]
                cache.batch_select_indices(keep)
            attention = torch.cat([attention, attention.new_ones(attention.size(0), 1)], dim=1)
            position = attention.sum(dim=1, keepdim=True) - 1
            out = model(input_ids=tokens.unsqueeze(1), attention_mask=attention, position_ids=position,
                        cache=cache, use_cache=True)
            logits = out.logits[:, -1].float()
    finally:
        model.train(was_training)
    cmask, truncated = completion_mask(completion_ids, eos.tolist())
    length = int(cmask.sum(dim=1).max().item()) if cmask.numel() else 0
    completion_ids = completion_ids[:, :max(length, 1)]
    cmask = cmask[:, :max(length, 1)]
    completion_ids = completion_ids.masked_fill(cmask == 0, tokenizer.pad_token_id)
    return Rollout(ids, mask, completion_ids, cmask, truncated)


def _logps_and_entropy(logits: Tensor, ids: Tensor, temperature: float, compute_entropy: bool,
                       chunk_rows: int = 4) -> tuple[Tensor, Tensor | None]:
    """log softmax(logits / T)[ids] for (R, C, V) logits and (R, C) ids, chunked over rows;
    the entropy of the same distribution (no gradient, a metric) if asked."""
    logps, entropies = [], []
    for s in range(0, logits.size(0), chunk_rows):
        lg = logits[s:s + chunk_rows].float() / temperature
        lse = torch.logsumexp(lg, dim=-1)
        logps.append(lg.gather(-1, ids[s:s + chunk_rows].unsqueeze(-1)).squeeze(-1) - lse)
        if compute_entropy:
            with torch.no_grad():
                logp = lg - lse.unsqueeze(-1)
                entropies.append(-(logp.exp() * logp).sum(-1))
    return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None)


def _checkpointing(model: torch.nn.Module) -> bool:
    """Whether activation checkpointing is on (it disables the KV cache in training mode)."""
    return any(getattr(m, "gradient_checkpointing", False) for m in model.modules())


def per_token_logps(
    model: PreTrainedModel,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    *,
    temperature: float = 1.0,
    group_size: int = 1,
    compute_entropy: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Log-probs (B, C) of the completion tokens under ``model`` (and their entropies (B, C)).

    ``group_size`` g > 1 says that rows ``[k*g, (k+1)*g)`` share one prompt: the prompt is then
    encoded once and its KV cache repeated g times (same values and gradients, less compute).
    Positions after the first EOS get values too; callers mask them with ``completion_mask``.
    """
    B, P = prompt_ids.shape
    C = completion_ids.size(1)
    if group_size > 1 and B % group_size == 0 and not _checkpointing(model):
        u_ids, u_mask = prompt_ids[::group_size], prompt_mask[::group_size]
        out = model(input_ids=u_ids, attention_mask=u_mask, position_ids=position_ids_from_mask(u_mask),
                    use_cache=True, logits_to_keep=1)
        first_logits = out.logits[:, -1:].repeat_interleave(group_size, dim=0)  # (B, 1, V)
        cache = out.cache
        for layer in cache.layers:  # differentiable repeat (not the in-place-style cache method)
            layer.keys = layer.keys.repeat_interleave(group_size, dim=0)
            layer.values = layer.values.repeat_interleave(group_size, dim=0)
        if C > 1:
            full_mask = torch.cat([prompt_mask, completion_mask], dim=1)[:, :-1]
            pos = position_ids_from_mask(full_mask)[:, P:]
            out2 = model(input_ids=completion_ids[:, :-1], attention_mask=full_mask, position_ids=pos,
                         cache=cache, use_cache=True)
            logits = torch.cat([first_logits, out2.logits], dim=1)
        else:
            logits = first_logits
    else:
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        out = model(input_ids=input_ids, attention_mask=attention_mask,
                    position_ids=position_ids_from_mask(attention_mask), use_cache=False,
                    logits_to_keep=C + 1)
        logits = out.logits[:, :-1]  # position t predicts token t+1
    return _logps_and_entropy(logits, completion_ids, temperature, compute_entropy)
