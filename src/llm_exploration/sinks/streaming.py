"""Why sinks matter: perplexity with a sliding attention window, with and without the sinks.

StreamingLLM (Xiao et al. 2023) keeps a fixed budget of key/value states while it reads a long
text: a sliding window of the most recent tokens, plus (their fix) the first few tokens, the
attention sinks. Evicting the first tokens makes perplexity explode; keeping them restores it.

Here every variant is one forward pass with a 4-D float additive mask ``[1, 1, T, T]`` (0 where a
query may attend, the dtype's minimum elsewhere), which transformers passes unchanged to the
attention kernel (eager or sdpa). Query ``q`` sees at most ``budget`` keys: the ``n_sinks`` first
tokens and the ``budget - n_sinks`` most recent ones (itself included). This equals a KV cache
that evicts the same tokens, except for positions: tokens keep their original positions here,
while StreamingLLM renumbers positions inside its cache. With rotary embeddings only the distance
from a query to the sink tokens differs (large here, at most ``budget`` there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor
from transformers import PreTrainedModel


def window_mask(
    length: int, budget: int | None, n_sinks: int = 0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Additive mask ``[1, 1, length, length]``: causal, limited to ``n_sinks`` first tokens plus
    the ``budget - n_sinks`` most recent ones; ``budget=None`` is dense causal attention."""
    if budget is not None and not 0 <= n_sinks < budget:
        raise ValueError(f"Need 0 <= n_sinks < budget, got n_sinks={n_sinks}, budget={budget}.")
    q = torch.arange(length)[:, None]
    k = torch.arange(length)[None, :]
    allowed = k <= q
    if budget is not None:
        allowed &= (q - k < budget - n_sinks) | (k < n_sinks)
    mask = torch.zeros(length, length, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


@torch.no_grad()
def token_nll(
    model: PreTrainedModel, input_ids: Tensor, mask: Tensor | None = None, last: int | None = None
) -> Tensor:
    """Negative log-likelihood of each next token of ``input_ids [1, T]``: ``[T - 1]``, or only
    the ``last`` ones (the language-model head then runs on those positions only)."""
    device = model.device
    n = input_ids.shape[1] - 1 if last is None else last
    kwargs = {} if mask is None else {"attention_mask": mask.to(device, model.dtype)}
    logits = model(input_ids=input_ids.to(device), logits_to_keep=n + 1, **kwargs).logits
    return torch.nn.functional.cross_entropy(
        logits[0, :-1].float(), input_ids[0, -n:].to(device), reduction="none"
    ).cpu()


def window_perplexity(
    model: PreTrainedModel,
    streams: Sequence[Tensor],
    budgets: Sequence[int],
    sink_counts: Sequence[int] = (0, 4),
    score_from: int | None = None,
) -> pd.DataFrame:
    """Perplexity of each stream ``[1, T]`` under dense attention and every (budget, n_sinks).

    Only tokens at positions ``>= score_from`` (default: the largest budget) are scored, so every
    variant is judged on the same tokens and every window is full there. Returns one row per
    stream and variant: ``stream, budget, n_sinks, variant, ppl`` (dense has budget NaN).
    """
    score_from = max(budgets) if score_from is None else score_from
    rows = []
    for s, ids in enumerate(streams):
        if ids.dim() != 2 or ids.shape[0] != 1:
            raise ValueError(
                f"Each stream must be input_ids of shape [1, T], got {tuple(ids.shape)}."
            )
        length = ids.shape[1]
        if length <= score_from + 1:
            raise ValueError(
                f"Stream {s} has {length} tokens; need more than score_from={score_from}."
            )
        variants = [("dense", float("nan"), 0, None)] + [
            (
                "window, first tokens evicted"
                if n_sinks == 0
                else f"window + {n_sinks} sink token{'s' if n_sinks > 1 else ''}",
                budget,
                n_sinks,
                window_mask(length, budget, n_sinks),
            )
            for budget in budgets
            for n_sinks in sink_counts
        ]
        for variant, budget, n_sinks, mask in variants:
            nll = token_nll(model, ids, mask, last=length - score_from)
            rows.append(
                {
                    "stream": s,
                    "budget": budget,
                    "n_sinks": n_sinks,
                    "variant": variant,
                    "ppl": math.exp(nll.mean().item()),
                }
            )
    return pd.DataFrame(rows)
