"""Streaming a long text through a decoder: per-token NLL with a sink cache or dense attention, and
the speed of a sink cache against a sliding window that recomputes.

- :func:`stream_nll` reads token streams chunk by chunk through a :class:`SinkCache` (StreamingLLM)
  or, with ``window=None``, a growing :class:`~transformers.DynamicCache` (dense attention, original
  positions), and returns the NLL of every next token.
- :func:`stream_readings` does the same for several :class:`Reading` s of the same streams, reading
  the tokens they all read alike (every cache is dense attention until it is full) only once.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor
from transformers import Cache, DynamicCache, PreTrainedModel

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


def _check_streams(model: PreTrainedModel, streams: Tensor, window: int | None, chunk: int) -> None:
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


def _new_cache(model: PreTrainedModel, n_sink: int, window: int | None) -> Cache:
    if window is None:
        return DynamicCache(config=model.config)
    return SinkCache(model, n_sink, window)


def _read(
    model: PreTrainedModel, streams: Tensor, cache: Cache, start: int, chunk: int
) -> Tensor:
    """Read ``streams [S, T]`` from token ``start`` on (the cache holds the tokens before it):
    NLL ``[S, T - 1 - start]`` of tokens ``start + 1 ...``."""
    device = model.device
    n_in = streams.shape[1] - 1
    out = torch.empty(streams.shape[0], n_in - start)
    for begin in range(start, n_in, chunk):
        ids = streams[:, begin : min(begin + chunk, n_in)]
        kwargs = {}
        if isinstance(cache, SinkCache):
            kwargs["attention_mask"] = cache.chunk_mask(ids.shape[1], model.dtype).to(device)
        logits = model(input_ids=ids.to(device), cache=cache, use_cache=True, **kwargs).logits
        targets = streams[:, begin + 1 : begin + 1 + ids.shape[1]]
        out[:, begin - start : begin - start + ids.shape[1]] = _nll(logits, targets.to(device)).cpu()
    return out


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
    _check_streams(model, streams, window, chunk)
    return _read(model, streams, _new_cache(model, n_sink, window), 0, chunk)


@dataclass(frozen=True)
class Reading:
    """One way to read streams: ``n_sink`` sinks + ``window`` recent tokens (``window=None``: dense
    attention), over the first ``length`` tokens (``None``: all) of the first ``n_streams`` streams
    (``None``: all)."""

    n_sink: int = 0
    window: int | None = None
    length: int | None = None
    n_streams: int | None = None


@torch.no_grad()
def stream_readings(
    model: PreTrainedModel, streams: Tensor, readings: Mapping[str, Reading], chunk: int = 128
) -> dict[str, Tensor]:
    """:func:`stream_nll` for each named reading of ``streams [S, T]``, sharing the common start.

    Until a sink cache is full it holds every token at its original position and masks nothing,
    so every reading computes exactly what dense attention does. The longest multiple of ``chunk``
    that no reading's cache overflows (and every reading reads) is read once, densely; each reading
    continues from a copy of that cache, with the same chunk boundaries as :func:`stream_nll`.
    Returns ``{name: NLL [n_streams, length - 1]}``.
    """
    if not readings:
        return {}
    sizes = {}
    for name, r in readings.items():
        n, length = r.n_streams or streams.shape[0], r.length or streams.shape[1]
        if not (1 <= n <= streams.shape[0] and 2 <= length <= streams.shape[1]):
            raise ValueError(
                f"Reading {name!r} asks for {n} streams of {length} tokens; streams are "
                f"{tuple(streams.shape)}."
            )
        _check_streams(model, streams[:n, :length], r.window, chunk)
        sizes[name] = (n, length)
    full = min([r.n_sink + r.window for r in readings.values() if r.window is not None]
               + [length - 1 for _, length in sizes.values()])  # fmt: skip
    shared = full // chunk * chunk
    rows = max(n for n, _ in sizes.values())
    prefix = DynamicCache(config=model.config)
    start = _read(model, streams[:rows, : shared + 1], prefix, 0, chunk) if shared else None
    out = {}
    for name, r in readings.items():
        n, length = sizes[name]
        cache = _new_cache(model, r.n_sink, r.window)
        if shared:
            for layer, done in zip(cache.layers, prefix.layers, strict=True):
                layer.update(done.keys[:n], done.values[:n])
        rest = _read(model, streams[:n, :length], cache, shared, chunk)
        out[name] = rest if start is None else torch.cat((start[:n], rest), dim=1)
    return out


@torch.no_grad()
def streaming_speed(
    model: PreTrainedModel,
    ids: Tensor,
    cache_sizes: Sequence[int],
    n_sink: int = 4,
    decode_tokens: int = 8,
    repeats: int = 3,
) -> pd.DataFrame:
    """Seconds per new token: a full sink cache vs a sliding window that recomputes, per cache size.

    ``ids [1, T]`` needs ``T >= max(cache_sizes) + repeats * decode_tokens``. For each size the sink
    cache is filled with the first ``size`` tokens in one forward pass: that pass is exactly what
    the recomputing window runs for the token after them, so it is timed as its first sample.
    Then, ``repeats`` times and interleaved over sizes, the sink cache decodes ``decode_tokens``
    tokens one at a time (timed per token), and (except in the last repeat) the recomputing window
    runs one more forward pass over the ``size`` tokens before the next token
    (``logits_to_keep=1``), as it would for every generated token. Returns one row per size:
    medians of both (``repeats`` recompute samples, ``repeats * decode_tokens`` sink samples) and
    their ratio.
    """
    need = max(cache_sizes) + repeats * decode_tokens
    if ids.dim() != 2 or ids.shape[0] != 1 or ids.shape[1] < need:
        raise ValueError(f"ids must be [1, T] with T >= {need}, got {tuple(ids.shape)}.")
    if repeats < 1 or decode_tokens < 1:
        raise ValueError(f"Need repeats >= 1 and decode_tokens >= 1, got {repeats}, {decode_tokens}.")
    device = model.device
    ids = ids.to(device)
    caches = {}
    times: dict[int, dict[str, list[float]]] = {
        s: {"sink": [], "recompute": []} for s in cache_sizes
    }
    for size in cache_sizes:
        cache = SinkCache(model, n_sink, size - n_sink)
        start = time.perf_counter()
        model(input_ids=ids[:, :size], cache=cache, use_cache=True, logits_to_keep=1)
        times[size]["recompute"].append(time.perf_counter() - start)
        caches[size] = cache
    for repeat in range(repeats):
        for size in cache_sizes:
            cache = caches[size]
            for _ in range(decode_tokens):
                t = cache.seen
                start = time.perf_counter()
                model(input_ids=ids[:, t : t + 1], cache=cache, use_cache=True)
                times[size]["sink"].append(time.perf_counter() - start)
            if repeat == repeats - 1:
                continue
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
