"""Frozen-encoder probes: what a schedule's representations still know, without any training.

:func:`encode` runs token-id lists through an encoder (whatever attention it is switched to) and
returns two readouts per text: the final [CLS] vector and the mean over real tokens (the
pooling all-MiniLM-L6-v2 was trained with). It can also keep the input of one layer of every
text, for :mod:`~llm_exploration.sparse.finetune` to train the layers above it.
:func:`fit_probe` fits a class-balanced, L2-regularised multinomial logistic regression on the
readout (full batch, L-BFGS; the strength chosen by cross-validation on the training split).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

READOUTS = ("cls", "mean")
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class Encoded:
    """Readouts of a set of texts (in their original order) and what computing them cost."""

    features: dict[str, torch.Tensor]  # readout -> (N, hidden) float32
    layer_inputs: list[torch.Tensor] | None  # per text (length, hidden), the captured layer's input
    cpu_seconds: float
    wall_seconds: float
    tokens: int


@torch.no_grad()
def encode(
    model: PreTrainedModel,
    ids: list[list[int]],
    pad_id: int,
    batch_size: int = 64,
    capture_layer: int | None = None,
    bf16: bool = True,
) -> Encoded:
    """Both readouts of every text; batches of similar length (little padding), bf16 autocast.

    ``capture_layer``: also keep the hidden states entering that layer (bf16, unpadded).
    """
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    hidden = model.config.hidden_size
    feats = {r: torch.zeros(len(ids), hidden) for r in READOUTS}
    kept: list[torch.Tensor | None] = [None] * len(ids)
    captured: list[torch.Tensor] = []
    hook = None
    if capture_layer is not None:
        layer = model.base_model.encoder.layer[capture_layer]
        hook = layer.register_forward_pre_hook(lambda m, args: captured.append(args[0]))
    start, start_cpu, tokens = time.perf_counter(), time.process_time(), 0
    try:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            batch, mask = pad([ids[i] for i in idx], pad_id)
            tokens += int(mask.sum())
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model.base_model(input_ids=batch, attention_mask=mask).last_hidden_state
            out = out.float()
            m = mask[..., None].float()
            feats["cls"][idx] = out[:, 0]
            feats["mean"][idx] = (out * m).sum(1) / m.sum(1)
            if captured:
                h = captured.pop().to(torch.bfloat16)
                for j, i in enumerate(idx):
                    kept[i] = h[j, : len(ids[i])].clone()
    finally:
        if hook is not None:
            hook.remove()
    return Encoded(
        features=feats,
        layer_inputs=kept if capture_layer is not None else None,  # type: ignore[arg-type]
        cpu_seconds=time.process_time() - start_cpu,
        wall_seconds=time.perf_counter() - start,
        tokens=tokens,
    )


def pad(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists: ``(input_ids, attention_mask)``, both ``(batch, longest)``."""
    longest = max(len(x) for x in ids)
    batch = torch.full((len(ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(ids), longest, dtype=torch.long)
    for j, x in enumerate(ids):
        batch[j, : len(x)] = torch.tensor(x)
        mask[j, : len(x)] = 1
    return batch, mask


@dataclass
class Probe:
    """A fitted linear probe: standardisation, weights and the chosen L2 strength."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # (hidden, classes)
    bias: torch.Tensor
    l2: float

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std) @ self.weight + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(-1)


def _fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float) -> Probe:
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    counts = torch.bincount(y, minlength=n_classes).clamp_min(1).float()
    class_weight = len(y) / (n_classes * counts)  # balanced: rare classes count as much
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, y, weight=class_weight) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return Probe(mean, std, w.detach(), b.detach(), l2)


def fit_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    l2_grid: tuple[float, ...] = L2_GRID,
    folds: int = 3,
    seed: int = 0,
) -> Probe:
    """Logistic regression on ``x`` ``(N, hidden)``; L2 strength by ``folds``-fold CV (macro-F1)."""
    from llm_exploration.sparse.stats import macro_f1

    if len(l2_grid) == 1:
        return _fit(x, y, n_classes, l2_grid[0])
    fold = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)) % folds
    scores = []
    for l2 in l2_grid:
        s = 0.0
        for f in range(folds):
            probe = _fit(x[fold != f], y[fold != f], n_classes, l2)
            s += float(macro_f1(probe.predict(x[fold == f]), y[fold == f], n_classes))
        scores.append(s)
    return _fit(x, y, n_classes, l2_grid[max(range(len(scores)), key=scores.__getitem__)])
