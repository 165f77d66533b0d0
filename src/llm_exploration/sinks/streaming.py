"""Streaming a long text through a decoder: per-token NLL with a sink cache or dense attention, and
the speed of a sink cache against a sliding window that recomputes.

- :func:`stream_nll` reads token streams chunk by chunk through a :class:`SinkCache` (StreamingLLM)
  or, with ``window=None``, a growing :class:`~transformers.DynamicCache` (dense attention, original
  positions), and returns the NLL of every next token.
- :func:`streaming_speed` times decoding one token with a full sink cache against recomputing the
  key/value states of the last ``cache_size`` tokens for every new token (the paper's "sliding
  window with re-computation").
- :func:`window_mask` and :func:`token_nll` evaluate a window as a mask over original positions in
  one forward pass; without sinks that equals the sink cache (rotary embeddings only see
  distances), which the tests use as an independent check.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor
from transformers import DynamicCache, PreTrainedModel

from llm_exploration.sinks.cache import SinkCache


def window_mask(
    length: int, budget: int | None, n_sinks: int = 0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Additive mask ``[1, 1, length, length]``: causal, limited to ``n_sinks`` first tokens plus
    the ``budget - n_sinks`` most recent ones (itself included); ``budget=None`` is dense causal."""
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
def token_nll(model: PreTrainedModel, input_ids: Tensor, mask: Tensor | None = None) -> Tensor:
    """NLL of each next token of ``input_ids [B, T]`` in one forward pass: ``[B, T - 1]``."""
    device = model.device
    kwargs = {} if mask is None else {"attention_mask": mask.to(device, model.dtype)}
    logits = model(input_ids=input_ids.to(device), **kwargs).logits
    return _nll(logits[:, :-1], input_ids[:, 1:].to(device)).cpu()


def _nll(logits: Tensor, targets: Tensor) -> Tensor:
    """``[B, n]`` cross-entropy of ``logits [B, n, V]`` against ``targets [B, n]``."""
    return torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), reduction="none"
    ).view(targets.shape)


@torch.no_grad()
def stream_nll(
    model: PreTrainedModel,
    streams: Tensor,
    n_sink: int = 0,
    window: int | None = None,
    chunk: int = 128,
) -> Tensor:
    """NLL of every next token of ``streams [S, T]`` (read together, ``chunk`` tokens at a time).

    With ``window`` set, the model reads through a :class:`SinkCache` (``n_sink`` sinks + ``window``
    recent tokens, positions within the cache, each query seeing what it would token by token:
    :meth:`SinkCache.chunk_mask`). With ``window=None`` it reads with dense attention at the
    original positions, which must stay within the model's ``max_position_embeddings``.
    Returns ``[S, T - 1]``: entry ``t`` is the NLL of token ``t + 1`` given the tokens before it.
    """
    if streams.dim() != 2:
        raise ValueError(f"streams must be token ids [S, T], got shape {tuple(streams.shape)}.")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}.")
    n_in = streams.shape[1] - 1
    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if window is None and limit is not None and n_in > limit:
        raise ValueError(
            f"Dense attention over {n_in} tokens needs positions beyond the model's "
            f"max_position_embeddings={limit}: stream at most {limit + 1} tokens densely, or set "
            "a window (sink cache)."
        )
    device = model.device
    if window is None:
        cache = DynamicCache(config=model.config)
    else:
        cache = SinkCache(model, n_sink, window)
    out = torch.empty(streams.shape[0], n_in)
    for start in range(0, n_in, chunk):
        ids = streams[:, start : min(start + chunk, n_in)]
        kwargs = {}
        if window is not None:
            kwargs["attention_mask"] = cache.chunk_mask(ids.shape[1], model.dtype).to(device)
        logits = model(input_ids=ids.to(device), cache=cache, use_cache=True, **kwargs).logits
        targets = streams[:, start + 1 : start + 1 + ids.shape[1]]
        out[:, start : start + ids.shape[1]] = _nll(logits, targets.to(device)).cpu()
    return out


@torch.no_grad()
def streaming_speed(
    model: PreTrainedModel,
    ids: Tensor,
    cache_sizes: Sequence[int],
    n_sink: int = 4,
    decode_tokens: int = 8,
    repeats: int = 3,
    prefill_chunk: int = 256,
) -> pd.DataFrame:
    """Seconds per new token: a full sink cache vs a sliding window that recomputes, per cache size.

    ``ids [1, T]`` needs ``T >= max(cache_sizes) + repeats * decode_tokens``. For each size the sink
    cache is filled once with the first ``size`` tokens (not timed); then, ``repeats`` times and
    interleaved over sizes, the sink cache decodes ``decode_tokens`` tokens one at a time
    (timed per token) and the recomputing window runs one forward pass over the ``size`` tokens
    before the next token (``logits_to_keep=1``), as it would for every generated token.
    Returns one row per size: medians of both and their ratio.
    """
    need = max(cache_sizes) + repeats * decode_tokens
    if ids.dim() != 2 or ids.shape[0] != 1 or ids.shape[1] < need:
        raise ValueError(f"ids must be [1, T] with T >= {need}, got {tuple(ids.shape)}.")
    device = model.device
    ids = ids.to(device)
    caches = {}
    for size in cache_sizes:
        cache = SinkCache(model, n_sink, size - n_sink)
        for start in range(0, size, prefill_chunk):
            model(input_ids=ids[:, start : min(start + prefill_chunk, size)], cache=cache,
                  use_cache=True, logits_to_keep=1)  # fmt: skip
        caches[size] = cache
    times: dict[int, dict[str, list[float]]] = {
        s: {"sink": [], "recompute": []} for s in cache_sizes
    }
    for _ in range(repeats):
        for size in cache_sizes:
            cache = caches[size]
            for _ in range(decode_tokens):
                t = cache.seen
                start = time.perf_counter()
                model(input_ids=ids[:, t : t + 1], cache=cache, use_cache=True)
                times[size]["sink"].append(time.perf_counter() - start)
            t = cache.seen
            start = time.perf_counter()
            model(input_ids=ids[:, t - size : t], logits_to_keep=1)
            times[size]["recompute"].append(time.perf_counter() - start)
    rows = []
    for size in cache_sizes:
        sink = statistics.median(times[size]["sink"])
        recompute = statistics.median(times[size]["recompute"])
        rows.append(
            {
                "cache size": size,
                "sink cache (s/token)": sink,
                "recompute (s/token)": recompute,
                "sink cache (tokens/s)": 1 / sink,
                "recompute (tokens/s)": 1 / recompute,
                "speed-up": recompute / sink,
            }
        )
    return pd.DataFrame(rows)
