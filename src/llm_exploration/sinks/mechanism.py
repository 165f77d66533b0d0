"""Why a sink is harmless, layer by layer: what the sink's values carry into the attention output,
and what happens when a layer may not attend to it.

Attention output of head ``h`` for query ``q`` is ``sum_k A[h, q, k] v[h, k]``; the layer adds
``W_O`` times the concatenation over heads to the residual stream. Split the sum at the sink
``s``: the sink's contribution ``W_O concat_h(A[h, q, s] v[h, s])`` and the rest's. A sink that
takes most of the attention but whose contribution is small is the "no-op" of Clark et al. (2019)
and the "key bias" of Gu et al. (2024), whose values have small norms.

Blocking the sink in one layer (queries after it may not attend to it; their attention is
renormalized over the other keys) and measuring the loss says which layers rely on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from llm_exploration.models import require_eager
from llm_exploration.sinks.measure import capture_modules, hooked
from llm_exploration.sinks.streaming import _nll, token_nll, window_mask


def _heads(attn: nn.Module) -> tuple[int, int]:
    """``(head_dim, query heads per key/value head)`` of a Llama-style attention module."""
    for name in ("v_proj", "o_proj", "head_dim", "num_key_value_groups"):
        if not hasattr(attn, name):
            raise ValueError(
                f"{type(attn).__name__} has no {name!r}: the sink mechanism needs Llama-style "
                "attention modules (q/k/v/o projections), e.g. SmolLM2, Llama, Qwen2."
            )
    return attn.head_dim, attn.num_key_value_groups


def split_output(
    weights: Tensor, values: Tensor, o_weight: Tensor, sink: int = 0
) -> tuple[Tensor, Tensor]:
    """The sink's and the other keys' parts of an attention layer's output.

    Args: ``weights [B, H, Q, K]`` attention probabilities, ``values [B, H, K, D]`` (already
    repeated to the query heads), ``o_weight [hidden, H * D]`` the output projection.
    Returns ``(sink [B, Q, hidden], rest [B, Q, hidden])``; their sum is the layer's output.
    """
    b, _, q, _ = weights.shape
    sink_heads = weights[..., sink : sink + 1] * values[:, :, sink : sink + 1]  # [B, H, Q, D]
    all_heads = weights @ values

    def project(x: Tensor) -> Tensor:
        return x.transpose(1, 2).reshape(b, q, -1) @ o_weight.T

    sink_out = project(sink_heads)
    return sink_out, project(all_heads) - sink_out


@torch.no_grad()
def sink_contributions(
    model: PreTrainedModel, input_ids: Tensor, sink: int = 0, min_query: int = 8
) -> pd.DataFrame:
    """Per layer, for the key at ``sink`` against the others (texts ``input_ids [B, T]``, no padding):

    - ``attention``: mean attention weight on the sink (heads and queries ``q >= min_query``);
    - ``value norm, sink`` / ``value norm, others``: L2 norm of the sink's value vector and the
      median over the other keys, mean over key/value heads and texts;
    - ``output norm, sink`` / ``output norm, rest``: L2 norm of the sink's contribution to the
      attention output (after ``W_O``) and of all other keys' together, mean over queries
      ``q >= min_query`` and texts.
    """
    require_eager(model)
    modules = capture_modules(model, "attentions")
    values: dict[int, Tensor] = {}
    rows: list[dict] = []

    def keep_values(i: int, v: Tensor) -> None:
        values[i] = v

    def on_attention(i: int, weights: Tensor) -> None:
        attn = modules[i][0]
        head_dim, groups = _heads(attn)
        b, t, _ = values[i].shape
        v = values.pop(i).view(b, t, -1, head_dim).transpose(1, 2).float()  # [B, kvH, T, D]
        v_norm = v.norm(dim=-1)  # [B, kvH, T]
        others = torch.cat((v_norm[..., :sink], v_norm[..., sink + 1 :]), -1)
        sink_out, rest_out = split_output(
            weights.float(), v.repeat_interleave(groups, 1), attn.o_proj.weight.float(), sink
        )
        q = slice(max(min_query, sink + 1), None)
        rows.append(
            {
                "layer": i,
                "attention": weights[:, :, q, sink].float().mean().item(),
                "value norm, sink": v_norm[..., sink].mean().item(),
                "value norm, others": others.median(-1).values.mean().item(),
                "output norm, sink": sink_out[:, q].norm(dim=-1).mean().item(),
                "output norm, rest": rest_out[:, q].norm(dim=-1).mean().item(),
            }
        )

    v_modules = [(attn.v_proj, 0) for attn, _ in modules]
    for attn, _ in modules:
        _heads(attn)
    with hooked(v_modules, keep_values), hooked(modules, on_attention):
        model.base_model(input_ids=input_ids.to(model.device))
    return pd.DataFrame(rows)


@contextmanager
def sink_blocked(model: PreTrainedModel, layers: Sequence[int], sink: int = 0) -> Iterator[None]:
    """Inside the block, queries after ``sink`` may not attend to it in the given ``layers``.

    Each chosen layer's attention gets a copy of its 4-D mask with the sink's column masked for
    the later queries (a forward pre-hook on its attention module). Eager attention always gets a
    4-D mask; sdpa may get none when nothing needs masking, so call the model with an explicit one
    (e.g. :func:`window_mask` with ``budget=None``).
    """
    modules = capture_modules(model, "attentions")

    def block(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        mask = kwargs.get("attention_mask")
        if mask is None or mask.dim() != 4:
            raise ValueError(
                "sink_blocked needs the model called with a 4-D additive attention_mask, e.g. "
                "attention_mask=window_mask(T, None); got "
                f"{None if mask is None else tuple(mask.shape)}."
            )
        mask = mask.clone()
        blocked = False if mask.dtype == torch.bool else torch.finfo(mask.dtype).min
        mask[..., sink + 1 :, sink] = blocked
        return args, {**kwargs, "attention_mask": mask}

    handles = [
        modules[layer][0].register_forward_pre_hook(block, with_kwargs=True) for layer in layers
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _from_layer(model: PreTrainedModel, start: int) -> Iterator[None]:
    """Inside the block the decoder runs only its layers ``start, start + 1, ...``: call it with
    ``inputs_embeds`` set to the residual stream that enters layer ``start`` (Llama-style models
    use ``inputs_embeds`` as the first layer's input unchanged)."""
    base = model.base_model
    layers = base.layers
    base.layers = nn.ModuleList(list(layers)[start:])
    try:
        yield
    finally:
        base.layers = layers


@torch.no_grad()
def blocked_sink_nll(
    model: PreTrainedModel, input_ids: Tensor, layer_sets: dict[str, Sequence[int]], sink: int = 0
) -> dict[str, Tensor]:
    """Per-token NLL ``[B, T - 1]`` of ``input_ids`` with dense attention (``"none"``) and with the
    sink blocked in each named set of layers.

    Blocking changes nothing below the lowest blocked layer, so each blocked run starts there from
    the residual stream of the intact run (saved by pre-hooks on the decoder layers); the result is
    the same as a full forward pass with the sink blocked (a test checks it).
    """
    mask = window_mask(input_ids.shape[1], None)
    layers = model.base_model.layers
    entering: dict[int, Tensor] = {}

    def keep(i: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            entering[i] = args[0] if args else kwargs["hidden_states"]

        return hook

    handles = [layer.register_forward_pre_hook(keep(i), with_kwargs=True)
               for i, layer in enumerate(layers)]  # fmt: skip
    try:
        out = {"none": token_nll(model, input_ids, mask)}
    finally:
        for h in handles:
            h.remove()
    device = model.device
    targets = input_ids[:, 1:].to(device)
    for name, chosen in layer_sets.items():
        if not chosen:
            raise ValueError(f"Layer set {name!r} is empty: name at least one layer to block.")
        first = min(chosen)
        with sink_blocked(model, chosen, sink), _from_layer(model, first):
            logits = model(
                inputs_embeds=entering[first], attention_mask=mask.to(device, model.dtype)
            ).logits
        out[name] = _nll(logits[:, :-1], targets).cpu()
    return out
