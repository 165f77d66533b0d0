"""Where a token's attention goes, layer by layer: to [CLS], [SEP], itself, its window, or beyond.

For the sink question: in the dense model much of a token's attention lands on [CLS]; when a
schedule stops [CLS] from being attended, that share has to go somewhere. :func:`destinations`
splits the attention of every real, non-special query into five parts, averaged over heads,
queries and texts. The model must run the ``eager`` backend (the one that returns weights).
"""

from __future__ import annotations

import pandas as pd
import torch
from transformers import PreTrainedModel

from llm_exploration.sparse.probe import pad

DESTINATIONS = ("[CLS]", "[SEP]", "itself", "its window", "beyond its window")


@torch.no_grad()
def destinations(
    model: PreTrainedModel,
    ids: list[list[int]],
    pad_id: int,
    window: int,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Rows ``(layer, destination, share)``: the mean share of a query's attention per destination.

    Texts are ``[CLS] ... [SEP]`` token-id lists; queries are their non-special tokens.
    """
    if getattr(model.config, "_attn_implementation", None) != "sparse_eager":
        raise ValueError(
            "destinations() reads attention weights: switch the model with "
            "use_sparse_attention(..., backend='eager') first."
        )
    model.eval()
    totals: torch.Tensor | None = None
    count = 0
    for s in range(0, len(ids), batch_size):
        chunk = ids[s : s + batch_size]
        batch, mask = pad(chunk, pad_id)
        weights = model.base_model(
            input_ids=batch, attention_mask=mask, output_attentions=True
        ).attentions  # per layer (B, H, Q, K)
        seq = batch.shape[1]
        pos = torch.arange(seq)
        lengths = mask.sum(1)
        cls = (pos == 0)[None].expand(len(chunk), -1)
        sep = pos[None] == (lengths[:, None] - 1)
        special = cls | sep
        near = (pos[:, None] - pos[None, :]).abs() <= window  # (Q, K)
        eye = torch.eye(seq, dtype=torch.bool)
        real = mask.bool()
        queries = real & ~special  # (B, Q)
        keys = {
            "[CLS]": cls[:, None, :].expand(-1, seq, -1),
            "[SEP]": sep[:, None, :].expand(-1, seq, -1),
            "itself": eye[None].expand(len(chunk), -1, -1),
            "its window": (near & ~eye)[None] & ~special[:, None, :],
            "beyond its window": (~near)[None] & ~special[:, None, :],
        }
        layer_shares = []
        for w in weights:
            a = w.float().mean(1)  # (B, Q, K): heads averaged
            shares = torch.stack([(a * k).sum(-1) for k in keys.values()], -1)  # (B, Q, 5)
            layer_shares.append((shares * queries[..., None]).sum((0, 1)))
        batch_total = torch.stack(layer_shares)  # (layers, 5)
        totals = batch_total if totals is None else totals + batch_total
        count += int(queries.sum())
    assert totals is not None
    shares = (totals / count).numpy()
    return pd.DataFrame(
        [
            {"layer": layer, "destination": d, "share": float(shares[layer, j])}
            for layer in range(shares.shape[0])
            for j, d in enumerate(DESTINATIONS)
        ]
    )
