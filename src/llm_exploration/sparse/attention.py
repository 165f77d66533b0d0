"""Sliding-window attention with global tokens for transformers encoders, masked or truly sparse.

:func:`use_sparse_attention` switches a BERT-family model (any model whose attention modules
call transformers' ``AttentionInterface`` and carry ``layer_idx``) to a per-layer schedule of
:mod:`~llm_exploration.sparse.masks` kinds, without touching its modeling code:

- the schedule and window live on ``model.config`` (``sparse_layers``, ``sparse_window``);
- an attention function, registered with ``AttentionInterface``, reads the layer's kind from
  ``module.layer_idx``;
- a forward pre-hook on the model marks the global tokens from ``input_ids``
  (``global_mask``, passed down to every attention call through the model's ``**kwargs``);
- a mask function registered with ``AttentionMaskInterface`` under the same name hands the
  padding mask through. Without it transformers passes ``attention_mask=None`` to a newly
  registered attention function and padding is silently ignored.

Three backends compute the same thing:

- ``"eager"``: the full score matrix plus a float additive mask; returns attention weights.
- ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention`` with the same float mask.
- ``"banded"``: :func:`banded_attention`, which only computes the scores inside the window
  (plus the global rows and columns), so time and memory grow linearly with length.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface

from llm_exploration.sparse.masks import LayerKind, additive_mask, allowed, check_kinds

Backend = Literal["eager", "sdpa", "banded"]
BACKENDS: tuple[str, ...] = ("eager", "sdpa", "banded")


def implementation_name(backend: Backend) -> str:
    """The ``attn_implementation`` name registered for a backend, e.g. ``"sparse_banded"``."""
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; valid: {', '.join(BACKENDS)}.")
    return f"sparse_{backend}"


# ---------------------------------------------------------------------------------------------
# The banded kernel
# ---------------------------------------------------------------------------------------------


def _global_slots(is_global: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the global tokens: ``(batch, G) long`` indices and ``(batch, G) bool`` validity.

    ``G`` is the largest number of global tokens in one example; shorter lists are padded with
    arbitrary non-global positions marked invalid. Positions are in ascending order.
    """
    n_global = int(is_global.sum(1).max())
    order = torch.argsort((~is_global).to(torch.int8), dim=1, stable=True)[:, :n_global]
    slot_valid = torch.arange(n_global, device=is_global.device) < is_global.sum(1, keepdim=True)
    return order, slot_valid


def banded_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    window: int,
    valid: torch.Tensor | None = None,
    is_global: torch.Tensor | None = None,
    *,
    scaling: float | None = None,
    dropout: float = 0.0,
    block_size: int | None = None,
) -> torch.Tensor:
    """Window attention ``|i - j| <= window`` plus global tokens, without the full score matrix.

    ``query``, ``key``, ``value``: ``(batch, heads, seq, head_dim)``. ``valid``: ``(batch, seq)
    bool``, False on padding keys. ``is_global``: ``(batch, seq) bool`` or None (no globals).
    Returns ``(batch, seq, heads, head_dim)`` (the layout transformers' attention functions return).

    Queries are cut into blocks of ``block_size`` (default ``max(2 * window, 64)``, at most the
    length); each block attends to its ``block + 2 * window`` neighbouring keys plus the global
    keys, in one batched SDPA call with a small float mask. Global queries attend to every key
    in a second SDPA call. Cost: ``O(seq * (block + 2 * window + n_global))`` instead of
    ``O(seq ** 2)``. Same result as the masked dense computation (up to float rounding) on every
    query that has at least one key to attend to.
    """
    batch, heads, seq, dim = query.shape
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}.")
    if valid is None:
        valid = torch.ones(batch, seq, dtype=torch.bool, device=query.device)
    glob = is_global & valid if is_global is not None else None
    if glob is not None and not glob.any():
        glob = None
    block = block_size or min(max(2 * window, 64), seq)
    n_blocks = math.ceil(seq / block)
    padded = n_blocks * block
    span = block + 2 * window

    # Work in (batch, seq, heads, dim), the layout the projections produced.
    q, k, v = (t.transpose(1, 2) for t in (query, key, value))
    q_blocks = F.pad(q, (0, 0, 0, 0, 0, padded - seq)).view(batch, n_blocks, block, heads, dim)
    q_blocks = q_blocks.transpose(2, 3)  # (batch, blocks, heads, block, dim)

    def windows(t: torch.Tensor) -> torch.Tensor:  # (batch, seq, heads, dim) -> (b, nb, h, span, d)
        t = F.pad(t, (0, 0, 0, 0, window, padded - seq + window))
        return t.unfold(1, span, block).permute(0, 1, 2, 4, 3)

    k_win, v_win = windows(k), windows(v)
    band_keys = valid if glob is None else valid & ~glob  # globals are added once, below
    key_ok = F.pad(band_keys, (window, padded - seq + window), value=False).unfold(1, span, block)
    r = torch.arange(block, device=query.device)[:, None]
    s = torch.arange(span, device=query.device)[None, :]
    band = (s - r >= 0) & (s - r <= 2 * window)  # key s of a block is within the window of query r
    ok = band[None, None] & key_ok[:, :, None, :]  # (batch, blocks, block, span)

    if glob is not None:
        slots, slot_ok = _global_slots(glob)  # (batch, G)
        n_global = slots.shape[1]
        idx = slots[:, :, None, None].expand(batch, n_global, heads, dim)
        k_glob = (
            k.gather(1, idx).transpose(1, 2)[:, None].expand(batch, n_blocks, heads, n_global, dim)
        )
        v_glob = (
            v.gather(1, idx).transpose(1, 2)[:, None].expand(batch, n_blocks, heads, n_global, dim)
        )
        k_win = torch.cat([k_win, k_glob], dim=3)
        v_win = torch.cat([v_win, v_glob], dim=3)
        ok = torch.cat(
            [ok, slot_ok[:, None, None, :].expand(batch, n_blocks, block, n_global)], dim=3
        )

    keys = k_win.shape[3]
    out = F.scaled_dot_product_attention(
        q_blocks.reshape(batch * n_blocks, heads, block, dim),
        k_win.reshape(batch * n_blocks, heads, keys, dim),
        v_win.reshape(batch * n_blocks, heads, keys, dim),
        attn_mask=additive_mask(ok.reshape(batch * n_blocks, block, keys), query.dtype),
        dropout_p=dropout,
        scale=scaling,
    )  # (batch * blocks, heads, block, dim)
    out = (
        out.view(batch, n_blocks, heads, block, dim)
        .transpose(2, 3)
        .reshape(batch, padded, heads, dim)
    )
    out = out[:, :seq]

    if glob is not None:  # global queries see every real key
        q_glob = q.gather(1, idx).transpose(1, 2)  # (batch, heads, G, dim)
        out_glob = F.scaled_dot_product_attention(
            q_glob,
            key,
            value,
            attn_mask=additive_mask(valid[:, None, :], query.dtype),  # (batch, 1, 1, seq)
            dropout_p=dropout,
            scale=scaling,
        ).transpose(1, 2)  # (batch, G, heads, dim)
        b_idx, slot = slot_ok.nonzero(as_tuple=True)
        out = out.index_put((b_idx, slots[b_idx, slot]), out_glob[b_idx, slot])
    return out


# ---------------------------------------------------------------------------------------------
# The transformers attention functions
# ---------------------------------------------------------------------------------------------


def _padding_mask(attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """AttentionMaskInterface function: the 2-D padding mask as ``(batch, 1, 1, seq) bool``.

    Compact on purpose: the attention function builds each layer's pattern itself, and a full
    ``(batch, 1, seq, seq)`` mask would cost what the banded kernel saves.
    """
    return None if attention_mask is None else attention_mask[:, None, None, :].bool()


def _eager(
    module: nn.Module,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    scaling: float,
    dropout: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * scaling + mask, dim=-1)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, v).transpose(1, 2).contiguous(), weights


def _make_attention(backend: Backend):
    def attention(
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        scaling: float | None = None,
        dropout: float = 0.0,
        global_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, _, seq, dim = query.shape
        scaling = dim**-0.5 if scaling is None else scaling
        config = module.config
        kind: LayerKind = config.sparse_layers[module.layer_idx]
        if attention_mask is None:
            valid = torch.ones(batch, seq, dtype=torch.bool, device=query.device)
        elif attention_mask.dtype == torch.bool and attention_mask.shape == (batch, 1, 1, seq):
            valid = attention_mask[:, 0, 0]
        else:
            raise ValueError(
                f"{implementation_name(backend)} expects the 2-D padding mask (batch, seq); got a "
                f"prepared mask of shape {tuple(attention_mask.shape)}. Pass attention_mask as "
                "the tokenizer returns it: the schedule builds each layer's mask itself."
            )
        if kind == "window+global" and global_mask is None:
            raise ValueError(
                "A window+global layer needs global_mask (batch, seq) bool. Switch the model with "
                "use_sparse_attention(), whose hook derives it from input_ids, or pass global_mask=."
            )
        if backend == "banded":
            if kind == "dense":
                pad = (
                    None
                    if attention_mask is None
                    else additive_mask(valid[:, None, :], query.dtype)
                )
                return sdpa_attention_forward(
                    module, query, key, value, pad, dropout=dropout, scaling=scaling
                )
            glob = global_mask if kind == "window+global" else None
            out = banded_attention(
                query,
                key,
                value,
                config.sparse_window,
                valid,
                glob,
                scaling=scaling,
                dropout=dropout,
            )
            return out, None
        mask = additive_mask(allowed(valid, kind, config.sparse_window, global_mask), query.dtype)
        if backend == "eager":
            return _eager(module, query, key, value, mask, scaling, dropout)
        return sdpa_attention_forward(
            module, query, key, value, mask, dropout=dropout, scaling=scaling
        )

    attention.__name__ = f"{implementation_name(backend)}_forward"
    return attention


for _backend in BACKENDS:
    AttentionInterface.register(implementation_name(_backend), _make_attention(_backend))  # type: ignore[arg-type]
    AttentionMaskInterface.register(implementation_name(_backend), _padding_mask)


def use_sparse_attention(
    model: PreTrainedModel,
    kinds: tuple[str, ...] | list[str],
    window: int,
    global_ids: list[int],
    backend: Backend = "banded",
) -> PreTrainedModel:
    """Switch ``model`` (in place) to one attention kind per layer; returns the model.

    ``kinds``: e.g. ``masks.schedule("every-3-dense", model.config.num_hidden_layers)``.
    ``global_ids``: token ids that are global (e.g. ``[tok.cls_token_id, tok.sep_token_id]``).
    Calling it again replaces the previous schedule.
    """
    name = implementation_name(backend)
    kinds = check_kinds(kinds, model.config.num_hidden_layers)
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}.")
    model.config.sparse_layers = list(kinds)
    model.config.sparse_window = int(window)
    model.set_attn_implementation(name)
    ids = torch.tensor(sorted(set(global_ids)))

    def add_global_mask(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if kwargs.get("global_mask") is None:
            input_ids = kwargs.get("input_ids", args[0] if args else None)
            if input_ids is not None:
                kwargs["global_mask"] = torch.isin(input_ids, ids.to(input_ids.device))
        return args, kwargs

    old = getattr(model, "_sparse_attention_hook", None)
    if old is not None:
        old.remove()
    model._sparse_attention_hook = model.register_forward_pre_hook(
        add_global_mask, with_kwargs=True
    )
    return model
