"""Fine-tune the top layers of an encoder under a schedule, on cached inputs, with seeds.

The layers below ``first`` stay frozen (in the schedule they were switched to), so their output
for every text is computed once, by :func:`~llm_exploration.sparse.probe.encode` with
``capture_layer=first``, and shared by every seed. Each run copies layers ``first ..`` with
their attention (the copy keeps the schedule: it lives on the layers' config), puts a fresh
linear head on a readout (the final [CLS] vector or the mean over real tokens), and trains both
with AdamW, a linear warm-up and decay, dropout on, class-balanced cross-entropy. The seed sets
the head's initialisation, the order of the batches and the dropout: a paired comparison
between schedules uses the same seeds.

With ``first = 0`` this is a full fine-tune of the encoder layers (embeddings frozen).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from llm_exploration.settings import Rule, check
from llm_exploration.sparse.masks import global_token_mask

READOUTS = ("cls", "mean")


@dataclass(frozen=True)
class Budget:
    """How much training one run gets (set per profile)."""

    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 1e-4  # the encoder layers
    head_learning_rate: float = 2e-3  # the new head
    warmup: float = 0.1  # share of the steps
    readout: str = "cls"

    def __post_init__(self) -> None:
        check(self, BUDGET_RULES)


BUDGET_RULES: dict[str, Rule] = {
    "steps": Rule(ge=1),
    "batch_size": Rule(ge=1),
    "learning_rate": Rule(gt=0),
    "head_learning_rate": Rule(gt=0),
    "warmup": Rule(ge=0, lt=1),
    "readout": Rule(choices=READOUTS),
}
"""Ranges and allowed values of :class:`Budget` (types come from the annotations)."""


class TopModel(nn.Module):
    """Encoder layers ``first ..`` plus a linear head on a readout."""

    def __init__(self, model: PreTrainedModel, first: int, n_classes: int, readout: str):
        super().__init__()
        if readout not in ("cls", "mean"):
            raise ValueError(f"readout must be 'cls' or 'mean', got {readout!r}.")
        self.layers = copy.deepcopy(model.base_model.encoder.layer[first:])
        self.head = nn.Linear(model.config.hidden_size, n_classes)
        self.readout = readout

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, global_mask: torch.Tensor):
        padding = mask.bool()[:, None, None, :]  # the compact mask the sparse functions expect
        for layer in self.layers:
            hidden = layer(hidden, padding, global_mask=global_mask)
        if self.readout == "cls":
            pooled = hidden[:, 0]
        else:
            m = mask[..., None].to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1)
        return self.head(pooled.float())


def _batch(inputs: list[torch.Tensor], ids: list[list[int]], idx: list[int], global_ids: list[int]):
    longest = max(len(ids[i]) for i in idx)
    hidden = torch.zeros(len(idx), longest, inputs[idx[0]].shape[-1])
    mask = torch.zeros(len(idx), longest, dtype=torch.long)
    tokens = torch.zeros(len(idx), longest, dtype=torch.long)
    for j, i in enumerate(idx):
        n = len(ids[i])
        hidden[j, :n] = inputs[i].float()
        mask[j, :n] = 1
        tokens[j, :n] = torch.tensor(ids[i])
    return hidden, mask, global_token_mask(tokens, global_ids) & mask.bool()


def train_top(
    model: PreTrainedModel,
    first: int,
    train: tuple[list[torch.Tensor], list[list[int]], torch.Tensor],
    test: tuple[list[torch.Tensor], list[list[int]]],
    n_classes: int,
    global_ids: list[int],
    budget: Budget,
    seed: int,
) -> dict:
    """One run. ``train`` = (cached layer inputs, token ids, labels); ``test`` = (inputs, ids).

    Returns ``{"pred": test predictions, "loss": last-50-step mean loss, "cpu_seconds"}``.
    """
    inputs, ids, labels = train
    torch.manual_seed(seed)
    net = TopModel(model, first, n_classes, budget.readout)
    net.train()
    body = [p for n, p in net.named_parameters() if not n.startswith("head")]
    opt = torch.optim.AdamW(
        [{"params": body}, {"params": net.head.parameters(), "lr": budget.head_learning_rate}],
        lr=budget.learning_rate,
        weight_decay=0.01,
    )
    warm = max(1, int(budget.warmup * budget.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (budget.steps - s) / (budget.steps - warm)))
    )
    counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).float()
    class_weight = len(labels) / (n_classes * counts)
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    losses = []
    start = time.process_time()
    for _ in range(budget.steps):
        if len(order) < budget.batch_size:
            order += torch.randperm(len(labels), generator=gen).tolist()
        idx, order = order[: budget.batch_size], order[budget.batch_size :]
        hidden, mask, glob = _batch(inputs, ids, idx, global_ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = net(hidden, mask, glob)
        loss = F.cross_entropy(logits.float(), labels[idx], weight=class_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return {
        "pred": predict(net, test, global_ids),
        "loss": sum(losses[-50:]) / len(losses[-50:]),
        "cpu_seconds": time.process_time() - start,
    }


@torch.no_grad()
def predict(
    net: TopModel,
    data: tuple[list[torch.Tensor], list[list[int]]],
    global_ids: list[int],
    batch_size: int = 64,
) -> torch.Tensor:
    """Predicted classes of cached inputs (eval mode, batches of similar length)."""
    inputs, ids = data
    net.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    pred = torch.zeros(len(ids), dtype=torch.long)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        hidden, mask, glob = _batch(inputs, ids, idx, global_ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred[idx] = net(hidden, mask, glob).argmax(-1)
    return pred
