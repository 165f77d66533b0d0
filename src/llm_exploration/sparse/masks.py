"""Sliding-window attention masks with global tokens, and per-layer schedules.

A layer's attention is one of three kinds:

- ``"dense"``: every query attends to every real (non-padding) key.
- ``"window+global"``: query ``i`` attends to key ``j`` when ``|i - j| <= k`` or when ``i`` or
  ``j`` is a global token (Longformer / BigBird style; here the special tokens [CLS]/[SEP]).
- ``"window"``: the window alone, no global tokens.

Padding keys are never attended. A *schedule* is one kind per layer, built by :func:`schedule`.
Masks here are boolean "may attend" tensors; :func:`additive_mask` turns them into the float
additive masks that transformers' ``eager`` and ``sdpa`` kernels expect (a 4-D *bool* mask is
silently wrong with BERT's ``eager`` attention).
"""

from __future__ import annotations

import re
from typing import Literal

import torch

LayerKind = Literal["dense", "window+global", "window"]
LAYER_KINDS: tuple[str, ...] = ("dense", "window+global", "window")
SCHEDULE_NAMES = ("dense", "sparse", "sparse-no-globals", "first-<L>-dense", "every-<n>-dense")


def schedule(name: str, num_layers: int) -> tuple[LayerKind, ...]:
    """The per-layer kinds of a named schedule.

    - ``"dense"``: all layers dense.
    - ``"sparse"``: all layers ``window+global``.
    - ``"sparse-no-globals"``: all layers ``window``.
    - ``"first-<L>-dense"``: the first L layers dense, the rest ``window+global``.
    - ``"every-<n>-dense"``: layers 0, n, 2n, ... dense, the rest ``window+global``
      (ModernBERT puts a global layer every third layer).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    fixed = {"dense": "dense", "sparse": "window+global", "sparse-no-globals": "window"}
    if name in fixed:
        return (fixed[name],) * num_layers  # type: ignore[return-value]
    if m := re.fullmatch(r"first-(\d+)-dense", name):
        n_dense = int(m.group(1))
        return tuple("dense" if i < n_dense else "window+global" for i in range(num_layers))  # type: ignore[misc]
    if m := re.fullmatch(r"every-(\d+)-dense", name):
        every = int(m.group(1))
        if every < 1:
            raise ValueError(f"Schedule {name!r}: n must be >= 1.")
        return tuple("dense" if i % every == 0 else "window+global" for i in range(num_layers))  # type: ignore[misc]
    raise ValueError(f"Unknown schedule {name!r}. Valid: {', '.join(SCHEDULE_NAMES)}.")


def check_kinds(kinds: tuple[str, ...] | list[str], num_layers: int) -> tuple[LayerKind, ...]:
    """Validate a per-layer list of kinds against the model's number of layers."""
    kinds = tuple(kinds)
    if len(kinds) != num_layers:
        raise ValueError(f"The schedule has {len(kinds)} layers but the model has {num_layers}.")
    bad = [k for k in kinds if k not in LAYER_KINDS]
    if bad:
        raise ValueError(f"Unknown layer kinds {bad}; valid: {', '.join(LAYER_KINDS)}.")
    return kinds  # type: ignore[return-value]


def global_token_mask(
    input_ids: torch.Tensor, global_ids: list[int] | torch.Tensor
) -> torch.Tensor:
    """``(batch, seq) bool``: True where the token id is one of ``global_ids`` (e.g. [CLS], [SEP])."""
    ids = torch.as_tensor(global_ids, device=input_ids.device, dtype=input_ids.dtype)
    return torch.isin(input_ids, ids)


def allowed(
    valid: torch.Tensor,
    kind: LayerKind,
    window: int,
    is_global: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(batch, q, k) bool``: may query ``q`` attend to key ``k`` in a layer of this kind.

    ``valid``: ``(batch, seq) bool``, False on padding. ``is_global``: ``(batch, seq) bool``, needed
    for ``window+global``. Padding keys are never allowed; padding queries follow the same rule
    as real ones (their outputs are ignored downstream).
    """
    batch, seq = valid.shape
    keys = valid[:, None, :].expand(batch, seq, seq)
    if kind == "dense":
        return keys.clone()
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}.")
    pos = torch.arange(seq, device=valid.device)
    band = (pos[:, None] - pos[None, :]).abs() <= window  # (q, k)
    if kind == "window":
        return keys & band
    if kind == "window+global":
        if is_global is None:
            raise ValueError("A window+global layer needs is_global (which tokens are global).")
        g = is_global & valid
        return keys & (band | g[:, :, None] | g[:, None, :])
    raise ValueError(f"Unknown layer kind {kind!r}; valid: {', '.join(LAYER_KINDS)}.")


def additive_mask(allowed_qk: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(batch, 1, q, k)`` float mask: 0 where allowed, the dtype's minimum elsewhere."""
    zero = torch.zeros((), dtype=dtype, device=allowed_qk.device)
    neg = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=allowed_qk.device)
    return torch.where(allowed_qk, zero, neg)[:, None]


def layer_masks(
    kinds: tuple[str, ...] | list[str],
    valid: torch.Tensor,
    window: int,
    is_global: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(layers, batch, q, k) bool``: the mask of every layer of a schedule (for plots and tests)."""
    return torch.stack([allowed(valid, kind, window, is_global) for kind in kinds])  # type: ignore[arg-type]


def density(allowed_qk: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(batch,)``: fraction of (real query, real key) pairs that are allowed."""
    real = valid[:, :, None] & valid[:, None, :]
    return (allowed_qk & real).sum((1, 2)) / real.sum((1, 2))


def receptive_field(masks: torch.Tensor) -> torch.Tensor:
    """``(batch, q, k) bool``: which input positions can reach each output position.

    ``masks``: ``(layers, batch, q, k) bool`` from :func:`layer_masks`. Information flows along
    allowed (query, key) pairs, one hop per layer (a token always keeps its own state through
    the residual stream), so the answer is the boolean product of the layers' masks.
    """
    seq = masks.shape[-1]
    reach = torch.eye(seq, dtype=torch.bool, device=masks.device).expand_as(masks[0])
    for layer in masks:
        hop = (layer | torch.eye(seq, dtype=torch.bool, device=masks.device)).float()
        reach = (hop @ reach.float()) > 0
    return reach
