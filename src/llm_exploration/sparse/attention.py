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
- ``"banded"``: :func:`~llm_exploration.sparse.kernel.banded_attention`, which only computes
  the scores inside the window (plus the global rows and columns), so time and memory grow
  linearly with length. It has no random links and no attention dropout.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface

from llm_exploration.sparse.kernel import banded_attention
from llm_exploration.sparse.masks import LayerKind, additive_mask, allowed, check_kinds

Backend = Literal["eager", "sdpa", "banded"]
BACKENDS: tuple[str, ...] = ("eager", "sdpa", "banded")


def implementation_name(backend: Backend) -> str:
    """The ``attn_implementation`` name registered for a backend, e.g. ``"sparse_banded"``."""
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; valid: {', '.join(BACKENDS)}.")
    return f"sparse_{backend}"


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
        if kind.startswith("window+global") and global_mask is None:
            raise ValueError(
                f"A {kind} layer needs global_mask (batch, seq) bool. Switch the model with "
                "use_sparse_attention(), whose hook derives it from input_ids, or pass global_mask=."
            )
        if getattr(config, "sparse_null_global_values", False) and global_mask is not None:
            # control: global tokens stay keys (they absorb attention) but carry no content
            value = value.masked_fill(global_mask[:, None, :, None], 0.0)
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
            if kind == "window+global+random":
                raise ValueError(
                    "The banded backend has no random links: use backend='sdpa' or 'eager' for a "
                    "window+global+random layer."
                )
            out = banded_attention(
                query,
                key,
                value,
                config.sparse_window,
                valid,
                None if kind == "window" else global_mask,
                global_keys=kind != "window+global-queries",
                global_queries=kind != "window+global-keys",
                scaling=scaling,
                dropout=dropout,
            )
            return out, None
        seed = config.sparse_seed + module.layer_idx
        mask = additive_mask(
            allowed(valid, kind, config.sparse_window, global_mask, seed), query.dtype
        )
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
    seed: int = 0,
    null_global_values: bool = False,
) -> PreTrainedModel:
    """Switch ``model`` (in place) to one attention kind per layer; returns the model.

    ``kinds``: e.g. ``masks.schedule("modernbert", model.config.num_hidden_layers)``.
    ``global_ids``: token ids that are global (e.g. ``[tok.cls_token_id, tok.sep_token_id]``).
    ``seed``: layer ``i`` draws its random links (``window+global+random``) with ``seed + i``.
    ``null_global_values``: zero the global tokens' value vectors in every layer (a control: they
    still take attention as keys, a content-free sink, but pass nothing on).
    Calling it again replaces the previous schedule.
    """
    name = implementation_name(backend)
    kinds = check_kinds(kinds, model.config.num_hidden_layers)
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}.")
    model.config.sparse_layers = list(kinds)
    model.config.sparse_window = int(window)
    model.config.sparse_seed = int(seed)
    model.config.sparse_null_global_values = bool(null_global_values)
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
