"""Computation in superposition: the paper's model that computes `y = |x|` through a ReLU
hidden layer, many instances at once.

Elhage et al. (2022, "Computation in Superposition"): each feature is 0 with probability
`S`, else uniform on [-1, 1]; the target is `|x|`; the model is
`h = ReLU(W₁ x)`, `y' = ReLU(W₂ h + b)` with untied weights and no hidden bias, trained on
the importance-weighted squared error. Without superposition a feature needs two neurons
(`|x| = ReLU(x) + ReLU(-x)`), so `m` neurons compute at most `m / 2` features exactly; a
model that computes more has neurons that serve several features (polysemantic neurons).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .model import FeatureSampler, Schedule, as_grid, learning_rate_factor, weighted_mse


class AbsModel(nn.Module):
    """`y' = ReLU(W₂ ReLU(W₁ x) + b)` for `n_instances` models at once.

    `W1`: `[instances, neurons, features]` (row `j`: what neuron `j` reads),
    `W2`: `[instances, features, neurons]`, `b`: `[instances, features]`. Weights start
    Xavier-normal with one instance's fans, `b` at zero.
    """

    def __init__(self, n_instances: int, n_features: int, n_neurons: int, seed: int = 0) -> None:
        super().__init__()
        if min(n_instances, n_features, n_neurons) < 1:
            raise ValueError("n_instances, n_features and n_neurons must be at least 1")
        generator = torch.Generator().manual_seed(seed)
        std = math.sqrt(2.0 / (n_features + n_neurons))
        shape = (n_instances, n_neurons, n_features)
        self.W1 = nn.Parameter(torch.randn(shape, generator=generator) * std)
        self.W2 = nn.Parameter(torch.randn(shape, generator=generator).transpose(1, 2) * std)
        self.b = nn.Parameter(torch.zeros(n_instances, n_features))

    def hidden(self, x: Tensor) -> Tensor:
        """Neuron activations `ReLU(W₁ x)`: `[instances, neurons, batch]`."""
        return torch.bmm(self.W1, x).clamp_min(0)

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `[instances, features, batch]` -> `y'`, same shape."""
        return torch.baddbmm(self.b[:, :, None], self.W2, self.hidden(x)).clamp_min(0)


@dataclass
class AbsSweep:
    """Every instance of an |x| sweep (configuration `c`, seed `s` is instance `c·seeds + s`)."""

    model: AbsModel
    density: Tensor  # [instances]
    importance: Tensor  # [features]
    seeds: int
    history: Tensor  # [windows, instances], training loss
    seconds: float


def train_abs(
    n_features: int,
    n_neurons: int,
    density: Tensor,
    importance: Tensor,
    *,
    seeds: int = 1,
    steps: int = 3_000,
    batch_size: int = 256,
    lr: float = 1e-3,
    schedule: Schedule = "cosine",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> AbsSweep:
    """Train `seeds` models per density (`[configs]`) in one batched run with AdamW on
    `weighted_mse(|x|, y', importance)`; `importance`: `[features]`."""
    density = torch.as_tensor(density, dtype=torch.float32).repeat_interleave(seeds)
    n_i = len(density)
    grid = as_grid(density, n_i, n_features, "density").to(device)
    weights = as_grid(importance, n_i, n_features, "importance").to(device)
    model = AbsModel(n_i, n_features, n_neurons, seed=seed).to(device)
    sampler = FeatureSampler(grid, seed, values="symmetric")
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    log_every, history, running = max(1, steps // 100), [], torch.zeros(n_i, device=device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread, as in `model.train`
    start = time.perf_counter()
    try:
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * learning_rate_factor(schedule, step, steps)
            x = sampler(batch_size)
            losses = weighted_mse(x.abs(), model(x), weights)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            running += losses.detach()
            if (step + 1) % log_every == 0:
                history.append(running / log_every)
                running = torch.zeros_like(running)
    finally:
        torch.set_num_threads(threads)
    return AbsSweep(
        model=model.cpu(),
        density=density,
        importance=torch.as_tensor(importance, dtype=torch.float32),
        seeds=seeds,
        history=torch.stack(history).cpu(),
        seconds=time.perf_counter() - start,
    )


@torch.no_grad()
def feature_r2(sweep: AbsSweep, n_batch: int = 20_000, seed: int = 1) -> Tensor:
    """Per instance and feature, `1 - E[(y'_i - |x_i|)²] / Var(|x_i|)` on fresh samples of
    the instance's own distribution: 1 when the model computes `|x_i|`, 0 (or below) when
    it does no better than a constant. `[instances, features]`."""
    n_i, n_f = sweep.model.b.shape
    grid = as_grid(sweep.density, n_i, n_f, "density")
    x = FeatureSampler(grid, seed, values="symmetric")(n_batch)
    target = x.abs()
    error = ((sweep.model(x) - target) ** 2).mean(2)
    return 1 - error / target.var(2).clamp_min(1e-12)


def neuron_feature_counts(W1: Tensor, share: float = 0.1) -> Tensor:
    """How many features each neuron reads: inputs whose squared weight is at least `share`
    of the neuron's total squared input weight. 0 for a dead neuron (no input weight), 1 for
    a monosemantic one. `W1`: `[..., neurons, features]` -> `[..., neurons]` integers."""
    w2 = W1**2
    total = w2.sum(-1, keepdim=True)
    alive = total.squeeze(-1) > 1e-6
    return torch.where(alive, (w2 >= share * total).sum(-1), 0)
