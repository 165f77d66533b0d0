"""Massive activations measured as Sun et al. (2024) define them, and their intervention.

A *massive activation* is one scalar of a layer's output hidden state ``h [T, D]`` (the residual
stream) whose magnitude is orders of magnitude above the median ``|h|``; Sun et al. report, per
layer, the three largest ``|h|`` values and the median (mean over texts), the feature dimensions
they sit in and the tokens that carry them (the first token, and in some models the first "." or
newline). Their intervention sets those few values, at the layer where they appear, to zero or
to their mean over many texts, and measures perplexity: zero breaks the model, the mean does not,
so the values act as fixed biases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_exploration.sinks.measure import capture_modules, hooked

DELIMITERS = (".", "\n")


def first_delimiter(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> int | None:
    """Position of the first token (after position 0) whose text contains "." or a newline."""
    for pos, tid in enumerate(ids):
        if pos > 0 and any(d in tokenizer.decode([tid]) for d in DELIMITERS):
            return pos
    return None


@torch.no_grad()
def top_activations(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, input_ids: Tensor, k: int = 3
) -> pd.DataFrame:
    """The ``k`` largest ``|h|`` of every layer's output, per text (``input_ids [B, T]``, no padding).

    One row per (layer, text, rank) with the value (signed), its position and feature dimension,
    the token there, the kind of token (``first token``, ``first delimiter``, ``other``) and the
    median ``|h|`` of that layer and text.
    """
    kinds = []
    for ids in input_ids.tolist():
        delim = first_delimiter(tokenizer, ids)
        kinds.append(
            lambda p, d=delim: "first token" if p == 0 else "first delimiter" if p == d else "other"
        )
    rows: list[dict] = []

    def on_layer(layer: int, hidden: Tensor) -> None:
        h = hidden.float().cpu()
        b, _, d = h.shape
        flat = h.abs().view(b, -1)
        top = flat.topk(k, dim=-1)
        median = flat.median(-1).values
        for text in range(b):
            for rank, (value, index) in enumerate(zip(top.values[text], top.indices[text])):
                pos, dim = divmod(index.item(), d)
                rows.append(
                    {
                        "layer": layer,
                        "text": text,
                        "rank": rank + 1,
                        "value": h[text, pos, dim].item(),
                        "magnitude": value.item(),
                        "median": median[text].item(),
                        "position": pos,
                        "dim": dim,
                        "token": tokenizer.decode([input_ids[text, pos].item()]),
                        "kind": kinds[text](pos),
                    }
                )

    with hooked(capture_modules(model, "hidden_states"), on_layer):
        model.base_model(input_ids=input_ids.to(model.device))
    return pd.DataFrame(rows)


@torch.no_grad()
def hidden_at(model: PreTrainedModel, input_ids: Tensor, layer: int, position: int) -> Tensor:
    """``[B, D]``: layer ``layer``'s output hidden state at ``position`` for each text."""
    found: dict[str, Tensor] = {}

    def keep(i: int, hidden: Tensor) -> None:
        if i == layer:
            found["h"] = hidden[:, position].float().cpu()

    with hooked(capture_modules(model, "hidden_states"), keep):
        model.base_model(input_ids=input_ids.to(model.device))
    return found["h"]


@contextmanager
def activations_set(
    model: PreTrainedModel, layer: int, position: int, dims: Sequence[int], values: Tensor
) -> Iterator[None]:
    """Inside the block, layer ``layer``'s output at ``position`` has ``dims`` set to ``values``
    (a forward hook that replaces the output; every later layer reads the changed state)."""
    module, _ = capture_modules(model, "hidden_states")[layer]
    index = torch.tensor(list(dims))

    def replace(mod: nn.Module, args: tuple, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        hidden[:, position, index.to(hidden.device)] = values.to(hidden.device, hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = module.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def summarize(acts: pd.DataFrame) -> pd.DataFrame:
    """Per layer, from :func:`top_activations`: the mean over texts of the top-k ``|h|`` and of the
    median, their ratio, the dimensions of the top-k, and the tokens carrying them (counts of
    each kind, and the most common token text)."""
    per_rank = acts.groupby(["layer", "rank"])["magnitude"].mean().unstack()
    per_rank.columns = [f"top {r}" for r in per_rank.columns]
    by_layer = acts.groupby("layer")
    out = per_rank.assign(
        median=by_layer["median"].mean(),
        dims=by_layer["dim"].agg(lambda d: ", ".join(map(str, sorted(set(d))))),
        carried_by=by_layer["kind"].agg(
            lambda k: ", ".join(f"{kind} {n}" for kind, n in k.value_counts().items())
        ),
        token=by_layer["token"].agg(lambda t: t.mode()[0]),
    )
    out.insert(len(per_rank.columns) + 1, "top 1 / median", out["top 1"] / out["median"])
    return out.rename(columns={"carried_by": "carried by", "token": "most common token"})


def massive_layer(summary: pd.DataFrame, ratio: float = 1000.0) -> int | None:
    """The first layer whose mean top-1 ``|h|`` exceeds ``ratio`` times its median (None if none)."""
    above = summary.index[summary["top 1 / median"] > ratio]
    return int(above[0]) if len(above) else None
