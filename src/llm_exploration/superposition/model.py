"""The toy model of Elhage et al. (2022), many instances trained at once.

One `ToyModel` holds `n_instances` independent models side by side: every tensor has a
leading instance axis, one batched forward serves them all, and the loss is a sum of
per-instance losses, so the gradient (and AdamW's update, which is elementwise) of one
instance never depends on another. A whole sparsity or importance sweep is one run.

Conventions:
- `W` is stored as `[instances, features, hidden]`, as in the paper's reference notebook:
  row `W[k, i]` is the paper's column `W_i`, the direction in which instance `k` stores
  feature `i`.
- A batch is `[instances, features, batch]` (the notebook has `[batch, instances,
  features]`): each sample is a column, as in the paper's `h = W x`. Batch last keeps the
  per-(instance, feature) broadcasts over a contiguous axis.

Training computes the loss and its gradient by hand (`loss_and_grads`, tested against
autograd): on a CPU the step is a few passes over the `[instances, features, batch]` tensors
plus five batched matrix products, which is what lets the paper-scale geometry sweep fit in
minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

Values = Literal["uniform", "normal"]
#: How many `[instance, feature, sample]` entries one group of instances puts through a
#: training step at a time (see `train`).
CHUNK_ELEMENTS = 1 << 18
Pairs = Literal["independent", "correlated", "anticorrelated"]
Schedule = Literal["cosine", "constant"]


class ToyModel(nn.Module):
    """`x' = ReLU(Wᵀ W x + b)` (or without the ReLU), for `n_instances` models at once.

    `relu` is one flag for all instances or one per instance, so linear and ReLU models
    can train in the same run.

    `W` starts Xavier-normal with the fans of one instance (`n_features`, `n_hidden`);
    `b` starts at zero. The reference notebook calls `xavier_normal_` on the whole 3-D
    tensor, which also folds the number of instances into the scale; per-instance fans
    keep an instance's start independent of how many instances train beside it.
    """

    def __init__(
        self,
        n_instances: int,
        n_features: int,
        n_hidden: int,
        *,
        relu: bool | Sequence[bool] = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in [
            ("n_instances", n_instances),
            ("n_features", n_features),
            ("n_hidden", n_hidden),
        ]:
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        relu = torch.as_tensor(relu, dtype=torch.bool)
        if relu.ndim > 1 or relu.numel() not in (1, n_instances):
            raise ValueError(f"relu needs one flag or {n_instances} (one per instance)")
        relu = relu.expand(n_instances)
        self.register_buffer("relu", relu.clone(), persistent=False)
        generator = torch.Generator().manual_seed(seed)
        std = math.sqrt(2.0 / (n_features + n_hidden))
        self.W = nn.Parameter(
            torch.randn(n_instances, n_features, n_hidden, generator=generator) * std
        )
        self.b = nn.Parameter(torch.zeros(n_instances, n_features))

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    @property
    def n_features(self) -> int:
        return self.W.shape[1]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[2]

    def preactivation(self, x: Tensor) -> Tensor:
        """`Wᵀ W x + b` for `x`: `[instances, features, batch]`, same shape."""
        hidden = torch.bmm(self.W.transpose(1, 2), x)  # h = W x: [instances, hidden, batch]
        return torch.baddbmm(self.b[:, :, None], self.W, hidden)

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `[instances, features, batch]` -> reconstruction `x'` of the same shape."""
        pre = self.preactivation(x)
        return torch.where(self.relu[:, None, None], pre.clamp_min(0), pre)


def as_grid(value: float | Tensor, n_instances: int, n_features: int, name: str) -> Tensor:
    """Broadcast a setting to `[instances, features]`.

    Accepts a scalar, `[instances, features]`, or anything that broadcasts to it. A 1-D
    tensor is read per instance for `density` and per feature for `importance` (the two
    sweeps the paper runs), whatever the lengths.
    """
    t = torch.as_tensor(value, dtype=torch.float32)
    if t.ndim == 1:
        t = t[:, None] if name == "density" else t[None, :]
    try:
        return t.expand(n_instances, n_features).contiguous()
    except RuntimeError:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}, which does not broadcast to [instances, "
            f"features] = [{n_instances}, {n_features}]"
        ) from None


class FeatureSampler:
    """Synthetic features for every instance at once: `x_i = 0` with probability
    `S = 1 - density`, otherwise a value drawn from `values`:

    - "uniform": U[0, 1] (the paper's features);
    - "normal": N(0, 1) (Gaussian features, to show what they change).

    `pairs` links features 0-1, 2-3, ... as in the paper's correlated-features section:
    "correlated" pairs are present together or absent together (the values are drawn
    independently); in "anticorrelated" pairs at most one feature is present (the pair is
    active with probability `2 · density`, then one of its two features at random), so
    each feature keeps its density. "independent" (the default) draws every feature alone.

    `density`: `[instances, features]`. Calls return `[instances, features, batch]`. One
    uniform draw `u` per entry serves both choices: `u < p` happens with probability `p`,
    and given that, `1 - u/p` is uniform on (0, 1], so "uniform" is `max(1 - u/p, 0)`, three
    in-place passes and no mask. On a CPU the draws come from NumPy's PCG64 (twice as fast
    as torch's generator there); elsewhere from a torch generator on the device.
    """

    def __init__(
        self,
        density: Tensor,
        seed: int = 0,
        values: Values = "uniform",
        pairs: Pairs = "independent",
    ) -> None:
        if values not in ("uniform", "normal"):
            raise ValueError(f"values must be 'uniform' or 'normal', got {values!r}")
        if pairs not in ("independent", "correlated", "anticorrelated"):
            raise ValueError(
                f"pairs must be 'independent', 'correlated' or 'anticorrelated', got {pairs!r}"
            )
        if not bool(((density > 0) & (density <= 1)).all()):
            raise ValueError("density (1 - S) must lie in (0, 1]; S = 1 would mean no data at all")
        if pairs != "independent":
            if density.shape[1] % 2 or not torch.equal(density[:, 0::2], density[:, 1::2]):
                raise ValueError(
                    f"pairs={pairs!r} needs an even number of features, the two of each pair "
                    "with the same density"
                )
            if pairs == "anticorrelated" and bool((density > 0.5).any()):
                raise ValueError(
                    "anticorrelated pairs need density <= 0.5 (a pair is active 2p of the time)"
                )
        self.density = density[:, :, None]
        self.neg_inverse = -1 / self.density
        self.values = values
        self.pairs = pairs
        self.device = density.device
        if self.device.type == "cpu":
            self.rng = np.random.default_rng(seed)
        else:
            self.generator = torch.Generator(self.device).manual_seed(seed)

    def _uniform(self, n_batch: int) -> Tensor:
        shape = (*self.density.shape[:2], n_batch)
        if self.device.type == "cpu":
            return torch.from_numpy(self.rng.random(shape, dtype=np.float32))
        return torch.rand(shape, generator=self.generator, device=self.device)

    def _normal(self, n_batch: int) -> Tensor:
        shape = (*self.density.shape[:2], n_batch)
        if self.device.type == "cpu":
            return torch.from_numpy(self.rng.standard_normal(shape, dtype=np.float32))
        return torch.randn(shape, generator=self.generator, device=self.device)

    def __call__(self, n_batch: int) -> Tensor:
        if self.pairs != "independent":
            return self._paired(n_batch)
        u = self._uniform(n_batch)
        if self.values == "uniform":
            return u.mul_(self.neg_inverse).add_(1).clamp_(min=0)
        return self._normal(n_batch).mul_(u < self.density)

    def _paired(self, n_batch: int) -> Tensor:
        """Features linked in pairs (see the class docstring)."""
        values = self._normal(n_batch) if self.values == "normal" else self._uniform(n_batch)
        pair_density = self.density[:, 0::2]  # [instances, pairs, 1]
        u = self._uniform(n_batch)[:, 0::2]  # one draw per pair
        if self.pairs == "correlated":
            present = (u < pair_density).repeat_interleave(2, dim=1)
        else:  # active with probability 2p; u / 2p < 1/2 picks the first feature
            active = u < 2 * pair_density
            first = u < pair_density
            present = torch.stack([first, active & ~first], dim=2).flatten(1, 2)
        return values.mul_(present)


def sample_features(
    density: Tensor,
    n_batch: int,
    seed: int = 0,
    values: Values = "uniform",
    pairs: Pairs = "independent",
) -> Tensor:
    """One batch from `FeatureSampler(density, seed, values, pairs)`: `[instances,
    features, batch]`."""
    return FeatureSampler(density, seed, values, pairs)(n_batch)


def weighted_mse(x: Tensor, out: Tensor, importance: Tensor) -> Tensor:
    """Per-instance loss `mean_batch Σ_i I_i (x_i - x'_i)²` (divided by the number of
    features, as in the reference notebook). `x`, `out`: `[instances, features, batch]`;
    `importance`: `[instances, features]`. Returns `[instances]`."""
    return ((x - out) ** 2 * importance[:, :, None]).mean(dim=(1, 2))


@torch.no_grad()
def loss_and_grads(model: ToyModel, x: Tensor, importance: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`weighted_mse(x, model(x), importance)` per instance, and the gradients of its sum
    with respect to `W` and `b`, by hand.

    The same numbers as autograd (a test checks it) in fewer passes: the ReLU's gate is
    `sign(x')` (1 where the output passes, 0 where it is clipped), no boolean masks (slow on
    CPU), and the importance scales the small `[instances, features, hidden]` products
    instead of the big `[instances, features, batch]` tensors.
    Returns loss `[instances]`, dW `[instances, features, hidden]`, db `[instances, features]`.
    """
    return _loss_and_grads(model.W, model.b, model.relu, x, importance)


def _loss_and_grads(
    W: Tensor, b: Tensor, relu: Tensor, x: Tensor, importance: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    h = torch.bmm(W.transpose(1, 2), x)  # [instances, hidden, batch]
    out = torch.baddbmm(b[:, :, None], W, h)  # preactivation, made into x' in place
    if bool(relu.all()):
        gate = out.clamp_(min=0).sign()
    elif not bool(relu.any()):
        gate = None
    else:  # linear instances: sign clamped to at least 1 is 1 everywhere
        floor = (~relu).to(out.dtype)[:, None, None]
        gate = out.sign().clamp_(min=floor)
        out.mul_(gate)
    residual = out.sub_(x)  # x' - x
    n = x.shape[1] * x.shape[2]
    scale = importance * (2 / n)  # d loss / d x' = scale · (x' - x)
    loss = (torch.linalg.vector_norm(residual, dim=2) ** 2 * importance).sum(1) / n
    g = residual if gate is None else residual.mul_(gate)  # unscaled d loss / d pre
    db = g.sum(2) * scale
    dh = torch.bmm((W * scale[:, :, None]).transpose(1, 2), g)  # [instances, hidden, batch]
    dW = torch.bmm(g, h.transpose(1, 2)).mul_(scale[:, :, None])
    dW.baddbmm_(x, dh.transpose(1, 2))
    return loss, dW, db


@torch.no_grad()
def expected_loss(
    W: Tensor,
    b: Tensor,
    density: float | Tensor,
    importance: float | Tensor = 1.0,
    *,
    values: Values = "uniform",
    pairs: Pairs = "independent",
    n_samples: int = 200_000,
    seed: int = 1,
) -> Tensor:
    """The loss `weighted_mse` of fixed ReLU-model weights, estimated on `n_samples` fresh
    samples: `W` `[instances, features, hidden]`, `b` `[instances, features]` -> `[instances]`.
    `density` is a scalar or one value per feature, the same for every instance, and every
    instance sees the same samples, so differences between instances are measured with
    little noise."""
    model = ToyModel(*W.shape)
    model.W.copy_(W)
    model.b.copy_(b)
    n_i, n_f = W.shape[:2]
    one = as_grid(torch.as_tensor(density, dtype=torch.float32).reshape(1, -1), 1, n_f, "density")
    sampler, weights = (
        FeatureSampler(one, seed, values, pairs),
        as_grid(importance, n_i, n_f, "importance"),
    )
    total, done = torch.zeros(n_i), 0
    while done < n_samples:  # in chunks of 100,000 samples, to keep memory small
        chunk = min(100_000, n_samples - done)
        x = sampler(chunk).expand(n_i, -1, -1)
        total += weighted_mse(x, model(x), weights) * chunk
        done += chunk
    return total / n_samples


class Training(NamedTuple):
    """What `train` returns: the loss curve and copies of `W` at the requested steps."""

    history: Tensor  # [windows, instances], mean training loss per window of steps
    snapshots: dict[int, Tensor]  # step -> W after that many steps, [instances, features, hidden]


def learning_rate_factor(schedule: Schedule, step: int, steps: int) -> float:
    """The reference notebook's schedules: "constant" (its `optimize()` default) or
    "cosine" (its `cosine_decay_lr`, from 1 to 0 as `cos(π/2 · step / (steps - 1))`)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return math.cos(0.5 * math.pi * step / max(1, steps - 1))
    raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")


def train(
    model: ToyModel,
    density: float | Tensor,
    importance: float | Tensor = 1.0,
    *,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    schedule: Schedule = "cosine",
    values: Values = "uniform",
    pairs: Pairs = "independent",
    seed: int = 0,
    log_every: int | None = None,
    snapshot_steps: Sequence[int] = (),
) -> Training:
    """Train every instance of `model` at once with one AdamW optimizer.

    As in the paper's reference notebook: AdamW with PyTorch's default weight decay (0.01)
    and fresh synthetic data every step. `schedule` is one of the notebook's learning-rate
    schedules: "constant" (its default) or "cosine" (decay to 0, which lets short runs settle).

    `density` (`1 - S`) and `importance` take any shape `as_grid` accepts (1-D: density per
    instance, importance per feature); `values` is the features' distribution when present
    and `pairs` how features 0-1, 2-3, ... occur together (see `FeatureSampler`).
    Returns the per-instance training loss averaged over each window of `log_every` steps
    (default: a hundredth of the run), `[steps // log_every, instances]`, and `W` after each
    of `snapshot_steps`. Deterministic for a given `seed` (data) and model seed (weights).
    """
    n_i, n_f, device = model.n_instances, model.n_features, model.W.device
    density = as_grid(density, n_i, n_f, "density").to(device)
    importance = as_grid(importance, n_i, n_f, "importance").to(device)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}")
    learning_rate_factor(schedule, 0, steps)  # fails early on an unknown schedule
    # On a CPU, instances go through each step in groups of about CHUNK_ELEMENTS batch
    # entries: the step is a few passes over [instances, features, batch] tensors, and
    # tensors that fit in the cache make each pass cheaper (20-25% for the paper-scale
    # geometry sweep). A GPU wants them all at once.
    size = max(1, CHUNK_ELEMENTS // (n_f * batch_size)) if device.type == "cpu" else n_i
    chunks = [slice(start, min(start + size, n_i)) for start in range(0, n_i, size)]
    samplers = [FeatureSampler(density[c], seed + k, values, pairs) for k, c in enumerate(chunks)]
    log_every = log_every or max(1, steps // 100)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    history, snapshots, running = [], {}, torch.zeros(n_i, device=device)
    wanted = set(snapshot_steps)
    # One thread: the tensors are small, and on a busy 2-core machine two intra-op threads
    # waiting on each other made the pentagon test 30x slower (105 s against 3.6 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * learning_rate_factor(schedule, step, steps)
            losses = torch.empty(n_i, device=device)
            dW, db = torch.empty_like(model.W), torch.empty_like(model.b)
            with torch.no_grad():
                for c, sampler in zip(chunks, samplers):
                    losses[c], dW[c], db[c] = _loss_and_grads(
                        model.W[c], model.b[c], model.relu[c], sampler(batch_size), importance[c]
                    )
            model.W.grad, model.b.grad = dW, db
            opt.step()
            running += losses
            if (step + 1) % log_every == 0:
                history.append(running / log_every)
                running = torch.zeros_like(running)
            if step + 1 in wanted:
                snapshots[step + 1] = model.W.detach().clone()
    finally:
        torch.set_num_threads(threads)
    history = torch.stack(history) if history else torch.empty(0, n_i)
    return Training(history, snapshots)


def best_of_seeds(loss: Tensor, n_seeds: int) -> Tensor:
    """Index of the lowest-loss instance in each group of `n_seeds` consecutive instances.

    Sweeps repeat each configuration `n_seeds` times in a row (`repeat_interleave`), and,
    as in the paper, keep the best of them: a local minimum of one seed is not the answer.
    `loss`: `[configs * n_seeds]` -> instance indices `[configs]`.
    """
    if loss.ndim != 1 or loss.shape[0] % n_seeds:
        raise ValueError(f"loss must be 1-D with a multiple of n_seeds={n_seeds} entries")
    groups = loss.view(-1, n_seeds)
    return groups.argmin(dim=1) + torch.arange(groups.shape[0]) * n_seeds


@dataclass
class Sweep:
    """The kept (lowest-loss) seed of each configuration of a sweep, and every seed's
    weights, loss curve and snapshots (to see how many seeds found the kept solution, and
    whether training had settled)."""

    W: Tensor  # [configs, features, hidden]
    b: Tensor  # [configs, features]
    loss: Tensor  # [configs], final training loss of the kept seed
    seed_losses: Tensor  # [configs, seeds], final training loss of every seed
    seed_W: Tensor  # [configs, seeds, features, hidden], every seed's weights
    history: Tensor  # [windows, configs, seeds], every seed's training loss curve
    snapshots: dict[int, Tensor]  # step -> [configs, seeds, features, hidden]
    seconds: float  # wall time of the training


def train_sweep(
    n_features: int,
    n_hidden: int,
    density: Tensor,
    importance: float | Tensor = 1.0,
    *,
    relu: bool | Sequence[bool] = True,
    seeds: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    **train_kwargs,
) -> Sweep:
    """Train every configuration `seeds` times in one batched run and keep the best seed.

    `density` (`1 - S`) is `[configs]` or `[configs, features]`; `importance` is a scalar,
    `[features]` or `[configs, features]`; `relu` is one flag or one per configuration.
    `train_kwargs` go to `train` (steps, batch_size, lr, schedule, values, pairs,
    snapshot_steps).
    Instance `c * seeds + s` is configuration `c`, seed `s`. Results come back on the CPU
    whatever `device` trained them.
    """
    density = torch.as_tensor(density, dtype=torch.float32)
    n_configs = density.shape[0]
    density = as_grid(density, n_configs, n_features, "density")
    importance = as_grid(importance, n_configs, n_features, "importance")
    relu = torch.as_tensor(relu, dtype=torch.bool)
    if relu.numel() not in (1, n_configs):
        raise ValueError(f"relu needs one flag or {n_configs} (one per configuration)")
    relu = relu.reshape(-1).expand(n_configs).repeat_interleave(seeds)
    model = ToyModel(n_configs * seeds, n_features, n_hidden, relu=relu, seed=seed).to(device)
    density, importance = (
        density.repeat_interleave(seeds, 0),
        importance.repeat_interleave(seeds, 0),
    )
    start = time.perf_counter()
    history, snapshots = train(model, density, importance, seed=seed, **train_kwargs)
    history = history.cpu()  # waits for a GPU
    seconds = time.perf_counter() - start
    # Judge each seed by its training loss over the last tenth of training: many more
    # samples than one evaluation batch, which matters when features are rare.
    loss = history[-max(1, len(history) // 10) :].mean(0)
    keep = best_of_seeds(loss, seeds)
    W, b = model.W.detach().cpu(), model.b.detach().cpu()
    shape = (n_configs, seeds, n_features, n_hidden)
    return Sweep(
        W=W[keep],
        b=b[keep],
        loss=loss[keep],
        seed_losses=loss.view(n_configs, seeds),
        seed_W=W.view(shape),
        history=history.view(len(history), n_configs, seeds),
        snapshots={step: w.cpu().view(shape) for step, w in snapshots.items()},
        seconds=seconds,
    )
