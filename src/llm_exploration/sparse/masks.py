"""Sliding-window attention masks with global tokens, and per-layer schedules.

A layer's attention is one of these kinds (``G`` is the set of global tokens, ``k`` the window):

- ``"dense"``: every query attends to every real (non-padding) key.
- ``"window"``: query ``i`` attends to key ``j`` when ``|i - j| <= k``, nothing else.
- ``"window+global"``: the window, plus ``i in G`` or ``j in G`` (Longformer's symmetric global
  attention: a global token sees every token and every token sees it).
- ``"window+global-keys"``: the window, plus ``j in G``: every token may attend *to* a global
  token (its *sink* role), but a global token sees only its own window.
- ``"window+global-queries"``: the window, plus ``i in G``: a global token sees every token (its
  *router* role, gathering the text for a readout), but no token beyond its window sees it.
- ``"window+global+random"``: ``window+global`` plus ``r`` random keys per query, different in
  every layer (BigBird's three parts; BigBird draws random *blocks*, here single tokens).

Padding keys are never attended. A *schedule* is one kind per layer, built by :func:`schedule`.
Masks here are boolean "may attend" tensors; :func:`additive_mask` turns them into the float
additive masks that transformers' ``eager`` and ``sdpa`` kernels expect (a 4-D *bool* mask is
silently wrong with BERT's ``eager`` attention).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

LayerKind = Literal[
    "dense",
    "window",
    "window+global",
    "window+global-keys",
    "window+global-queries",
    "window+global+random",
]
LAYER_KINDS: tuple[str, ...] = get_args(LayerKind)
RANDOM_KEYS = 2  # BigBird-style random keys per query and layer
SCHEDULES: tuple[str, ...] = (*LAYER_KINDS, "modernbert")


def schedule(name: str, num_layers: int) -> tuple[LayerKind, ...]:
    """The per-layer kinds of a named schedule.

    - a layer kind (e.g. ``"window+global"``): every layer of that kind;
    - ``"modernbert"``: ModernBERT's alternation, layers 0, 3, 6, ... dense and the others plain
      windows with no global token (ModernBERT uses a 128-token window, ``k = 64``).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    if name in LAYER_KINDS:
        return (name,) * num_layers  # type: ignore[return-value]
    if name == "modernbert":
        return tuple("dense" if i % 3 == 0 else "window" for i in range(num_layers))  # type: ignore[misc]
    raise ValueError(f"Unknown schedule {name!r}. Valid: {', '.join(SCHEDULES)}.")


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


def random_keys(valid: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``(batch, q, k) bool``: ``count`` random real keys for each query (fixed by ``seed``)."""
    batch, seq = valid.shape
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(batch, seq, seq, generator=gen).to(valid.device)
    scores = scores.masked_fill(~valid[:, None, :], -1.0)  # padding keys are never drawn
    picked = scores.topk(min(count, seq), dim=-1).indices
    out = torch.zeros(batch, seq, seq, dtype=torch.bool, device=valid.device)
    return out.scatter_(-1, picked, True) & valid[:, None, :]


def allowed(
    valid: torch.Tensor,
    kind: LayerKind,
    window: int,
    is_global: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """``(batch, q, k) bool``: may query ``q`` attend to key ``k`` in a layer of this kind.

    ``valid``: ``(batch, seq) bool``, False on padding. ``is_global``: ``(batch, seq) bool``, needed
    for the ``window+global*`` kinds. ``seed`` draws the random keys of ``window+global+random``.
    Padding keys are never allowed; padding queries follow the same rule as real ones (their
    outputs are ignored downstream).
    """
    batch, seq = valid.shape
    keys = valid[:, None, :].expand(batch, seq, seq)
    if kind == "dense":
        return keys.clone()
    if kind not in LAYER_KINDS:
        raise ValueError(f"Unknown layer kind {kind!r}; valid: {', '.join(LAYER_KINDS)}.")
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}.")
    pos = torch.arange(seq, device=valid.device)
    ok = (pos[:, None] - pos[None, :]).abs() <= window  # (q, k)
    if kind == "window":
        return keys & ok
    if is_global is None:
        raise ValueError(f"A {kind} layer needs is_global (which tokens are global).")
    g = is_global & valid
    if kind != "window+global-queries":
        ok = ok | g[:, None, :]  # everyone may attend to the global keys
    if kind != "window+global-keys":
        ok = ok | g[:, :, None]  # global queries see everything
    if kind == "window+global+random":
        ok = ok | random_keys(valid, RANDOM_KEYS, seed)
    return keys & ok


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
    seed: int = 0,
) -> torch.Tensor:
    """``(layers, batch, q, k) bool``: the mask of every layer of a schedule (for plots and tests).

    Layer ``i`` draws its random keys (if any) with seed ``seed + i``, as the model does.
    """
    return torch.stack(
        [allowed(valid, kind, window, is_global, seed + i) for i, kind in enumerate(kinds)]  # type: ignore[arg-type]
    )


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
