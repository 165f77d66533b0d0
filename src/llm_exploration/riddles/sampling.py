"""Sample many short replies per prompt, paying for each prompt once.

``generate(num_return_sequences=n)`` copies every prompt ``n`` times *before* the first forward
pass, so the prompt is encoded ``n`` times. Riddle replies are a few tokens and prompts about a
hundred, so that copy would be most of the cost. Here each prompt (all but its last token) is
encoded once into a KV cache, the cache is repeated ``n`` times, and ``generate`` continues from
it; greedy decoding gives exactly what plain ``generate`` gives (tested).
"""

from __future__ import annotations

import contextlib

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase


def autocast(dtype: torch.dtype | None, device: torch.device):
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def sample_replies(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], *,
                   n: int, max_new_tokens: int, temperature: float, seed: int = 0,
                   batch_size: int = 16, autocast_dtype: torch.dtype | None = None,
                   stop_ids: list[int] | None = None) -> list[tuple[list[str], list[int]]]:
    """For each prompt (text with the chat template applied), ``n`` sampled replies and their
    token counts (up to and including the end token). ``temperature=0`` decodes greedily (then
    ``n`` must be 1). ``stop_ids`` end a reply (default: the tokenizer's end-of-sequence token)."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"n={n} and batch_size={batch_size} must be at least 1.")
    if temperature == 0 and n != 1:
        raise ValueError("greedy decoding (temperature=0) gives one reply per prompt: set n=1.")
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only batched generation pads on the left
    sampling = dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0) if temperature > 0 \
        else dict(do_sample=False)
    stop_ids = list(stop_ids) if stop_ids else [tokenizer.eos_token_id]
    torch.manual_seed(seed)
    out: list[tuple[list[str], list[int]]] = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        mask = enc["attention_mask"]
        with autocast(autocast_dtype, model.device):
            cache = DynamicCache(config=model.config)
            head = mask[:, :-1]
            model(input_ids=enc["input_ids"][:, :-1], attention_mask=head,
                  position_ids=(head.cumsum(-1) - 1).clamp(min=0), cache=cache, use_cache=True,
                  logits_to_keep=1)  # the prompt's logits are not needed, only its cache
            cache.batch_repeat_interleave(n)
            ids = model.generate(input_ids=enc["input_ids"].repeat_interleave(n, 0),
                                 attention_mask=mask.repeat_interleave(n, 0), cache=cache,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=stop_ids, **sampling)
        new = ids[:, enc["input_ids"].shape[1]:]  # [batch * n, new_tokens]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        lengths = _reply_lengths(new, {*stop_ids, tokenizer.pad_token_id})
        for i in range(len(texts) // n):
            out.append((texts[i * n:(i + 1) * n], lengths[i * n:(i + 1) * n]))
    return out


def _reply_lengths(new: torch.Tensor, stops: set[int]) -> list[int]:
    """Tokens up to and including the first end token (all of them if none)."""
    lengths = []
    for row in new.tolist():
        stop = next((i for i, t in enumerate(row) if t in stops), None)
        lengths.append(len(row) if stop is None else stop + 1)
    return lengths
