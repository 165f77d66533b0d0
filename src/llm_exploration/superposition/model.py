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
  per-(instance, feature) density, importance and bias broadcasts over a contiguous axis;
  for the 2-feature phase-diagram model that halved the time of a training step on CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


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


def sample_features(
    density: Tensor, n_batch: int, generator: torch.Generator | None = None
) -> Tensor:
    """Synthetic features: `x_i = 0` with probability `S = 1 - density`, else `U[0, 1]`.

    `density`: `[instances, features]` (the probability `1 - S` that a feature is present).
    Returns `[instances, features, batch]`. One uniform draw `u` per entry serves both
    choices: `u < p` happens with probability `p`, and given that, `u / p` is uniform on
    [0, 1] — the same distribution as two independent draws, at half the random numbers.
    """
    u = torch.rand(*density.shape, n_batch, generator=generator, device=density.device)
    x = u.div_(density[:, :, None])  # in place: u / p, below 1 exactly when u < p
    return x.masked_fill_(x >= 1, 0.0)


def weighted_mse(x: Tensor, out: Tensor, importance: Tensor) -> Tensor:
    """Per-instance loss `mean_batch Σ_i I_i (x_i - x'_i)²` (divided by the number of
    features, as in the reference notebook). `x`, `out`: `[instances, features, batch]`;
    `importance`: `[instances, features]`. Returns `[instances]`."""
    return ((x - out) ** 2 * importance[:, :, None]).mean(dim=(1, 2))


class _ReconstructionLoss(torch.autograd.Function):
    """`weighted_mse(x, activation(pre), importance)` with a hand-written gradient.

    The same value and gradient as autograd through `ToyModel.forward` and `weighted_mse`
    (a test checks it), in fewer passes over the `[instances, features, batch]` tensors,
    which are most of the cost of a training step: about 1.4x faster on this CPU.
    """

    @staticmethod
    def forward(ctx, pre: Tensor, x: Tensor, importance: Tensor, relu: Tensor) -> Tensor:
        dead = (pre <= 0) & relu[:, None, None]  # where a ReLU outputs 0 and passes no gradient
        residual = pre.masked_fill(dead, 0.0).sub_(x)  # x' - x
        n = pre.shape[1] * pre.shape[2]
        ctx.save_for_backward(residual, dead, importance)
        ctx.n = n
        return torch.einsum("ifb,ifb->if", residual, residual).mul_(importance).sum(1) / n

    @staticmethod
    def backward(ctx, grad: Tensor):
        residual, dead, importance = ctx.saved_tensors
        scale = importance * (2 / ctx.n) * grad[:, None]  # [instances, features]
        grad_pre = (residual * scale[:, :, None]).masked_fill_(dead, 0.0)
        return grad_pre, None, None, None


def reconstruction_loss(model: ToyModel, x: Tensor, importance: Tensor) -> Tensor:
    """Per-instance `weighted_mse(x, model(x), importance)`, `[instances]`, fast to train."""
    return _ReconstructionLoss.apply(model.preactivation(x), x, importance, model.relu)


def train(
    model: ToyModel,
    density: float | Tensor,
    importance: float | Tensor = 1.0,
    *,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int | None = None,
) -> Tensor:
    """Train every instance of `model` at once with one AdamW optimizer.

    From the paper's reference notebook: AdamW with PyTorch's default weight decay
    (0.01), fresh synthetic data every step, and its `cosine_decay_lr` schedule (it also
    offers constant and linear ones), the rate falling from `lr` to 0 as
    `cos(π/2 · step / (steps - 1))`. The decay lets every instance settle on its
    arrangement exactly, even in short runs.

    `density` (`1 - S`) and `importance` take any shape `as_grid` accepts (1-D: density per
    instance, importance per feature).
    Returns the per-instance training loss averaged over each window of `log_every`
    steps (default: a hundredth of the run), `[steps // log_every, instances]`.
    Deterministic for a given `seed` (data) and model seed (initial weights).
    """
    n_i, n_f, device = model.n_instances, model.n_features, model.W.device
    density = as_grid(density, n_i, n_f, "density").to(device)
    importance = as_grid(importance, n_i, n_f, "importance").to(device)
    if not bool(((density > 0) & (density <= 1)).all()):
        raise ValueError("density (1 - S) must lie in (0, 1]; S = 1 would mean no data at all")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}")
    log_every = log_every or max(1, steps // 100)
    generator = torch.Generator(device).manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: math.cos(0.5 * math.pi * step / max(1, steps - 1))
    )
    history, running = [], torch.zeros(n_i, device=device)
    # One thread: the tensors are small, and on a busy 2-core machine two intra-op threads
    # waiting on each other made the pentagon test 30x slower (105 s against 3.6 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(steps):
            x = sample_features(density, batch_size, generator)
            losses = reconstruction_loss(model, x, importance)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            decay.step()
            running += losses.detach()
            if (step + 1) % log_every == 0:
                history.append(running / log_every)
                running = torch.zeros_like(running)
    finally:
        torch.set_num_threads(threads)
    return torch.stack(history) if history else torch.empty(0, n_i)


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
    weights and loss (to see how many seeds found the kept solution)."""

    W: Tensor  # [configs, features, hidden]
    b: Tensor  # [configs, features]
    loss: Tensor  # [configs], final training loss of the kept seed
    seed_losses: Tensor  # [configs, seeds], final training loss of every seed
    seed_W: Tensor  # [configs, seeds, features, hidden], every seed's weights
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
    `train_kwargs` go to `train` (steps, batch_size, lr). Instance `c * seeds + s` is
    configuration `c`, seed `s`. Results come back on the CPU whatever `device` trained them.
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
    history = train(model, density, importance, seed=seed, **train_kwargs).cpu()  # waits for a GPU
    seconds = time.perf_counter() - start
    # Judge each seed by its training loss over the last tenth of training: many more
    # samples than one evaluation batch, which matters when features are rare.
    loss = history[-max(1, len(history) // 10) :].mean(0)
    keep = best_of_seeds(loss, seeds)
    W, b = model.W.detach().cpu(), model.b.detach().cpu()
    return Sweep(
        W=W[keep],
        b=b[keep],
        loss=loss[keep],
        seed_losses=loss.view(n_configs, seeds),
        seed_W=W.view(n_configs, seeds, n_features, n_hidden),
        seconds=seconds,
    )
