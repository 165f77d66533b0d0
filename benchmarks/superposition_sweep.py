"""Batched against looped training of the post's geometry sweep (toy models of superposition).

The post's geometry experiment at the `cpu` profile: n=200 features, m=20 dimensions, equal
importance, 19 sparsities (1/(1-S) from 1 to 100) times 3 seeds = 57 models, batch 256,
learning rate 1e-2 with cosine decay. Three ways to train them for the same number of steps:

- batched: one `ToyModel` holding all 57 instances, `train`'s hand-written step (instances
  in cache-sized groups) and one optimizer;
- looped: every instance as its own one-instance `ToyModel`, one after the other;
- autograd: the batched model trained the generic way, torch's sampler and autograd through
  `ToyModel.forward` and `weighted_mse` (what the hand-written step replaces).

The three alternate within one process for `--rounds` rounds (medians and ratios are
printed), then, unless `--no-full`, the batched sweep runs once for the post's 2,000 steps:
the whole sweep's wall and CPU time. Run:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/superposition_sweep.py [--steps 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os

# Before torch is imported: with spinning threads a busy neighbour slows every step.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import statistics
import time

import torch

from llm_exploration.superposition.geometry import inverse_density_grid
from llm_exploration.superposition.model import (
    ToyModel,
    as_grid,
    learning_rate_factor,
    train,
    weighted_mse,
)

N_FEATURES, N_HIDDEN, SEEDS = 200, 20, 3
SETTINGS = {"batch_size": 256, "lr": 1e-2}


def densities() -> torch.Tensor:
    """Density `1 - S` of every instance: each sparsity of the post's grid, `SEEDS` times."""
    return (1 / inverse_density_grid(13, 5)).repeat_interleave(SEEDS)


def run_batched(steps: int) -> tuple[float, float]:
    """Wall and CPU seconds to train every instance in one model."""
    density = densities()
    wall, cpu = time.perf_counter(), time.process_time()
    model = ToyModel(len(density), N_FEATURES, N_HIDDEN)
    train(model, density, 1.0, steps=steps, **SETTINGS)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_looped(steps: int) -> tuple[float, float]:
    """Wall and CPU seconds to train the same instances one model at a time."""
    density = densities()
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(len(density)):
        model = ToyModel(1, N_FEATURES, N_HIDDEN, seed=k)
        train(model, density[k : k + 1], 1.0, steps=steps, seed=k, **SETTINGS)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_autograd(steps: int) -> tuple[float, float]:
    """Wall and CPU seconds to train every instance in one model with autograd."""
    density = densities()
    wall, cpu = time.perf_counter(), time.process_time()
    model = ToyModel(len(density), N_FEATURES, N_HIDDEN)
    grid = as_grid(density, len(density), N_FEATURES, "density")[:, :, None]
    importance = torch.ones(len(density), N_FEATURES)
    generator = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=SETTINGS["lr"])
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = SETTINGS["lr"] * learning_rate_factor("cosine", step, steps)
        u = torch.rand(*grid.shape[:2], SETTINGS["batch_size"], generator=generator)
        x = torch.where(u < grid, torch.rand(u.shape, generator=generator), 0.0)
        loss = weighted_mse(x, model(x), importance).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full-steps", type=int, default=2_000, help="the post's cpu profile")
    parser.add_argument("--no-full", action="store_true", help="skip the whole-sweep run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `train` does: every variant on one thread
    print(
        f"{len(densities())} instances (n={N_FEATURES}, m={N_HIDDEN}), {args.steps} steps each, "
        f"batch {SETTINGS['batch_size']}, torch {torch.__version__}, 1 thread"
    )
    run_batched(5)  # warm-up
    variants = {"batched": run_batched, "looped": run_looped, "autograd": run_autograd}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            times[name].append(run(args.steps))
    medians = {}
    for name, runs in times.items():
        medians[name] = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{name:>8}: median wall {medians[name]:7.2f} s, CPU {cpu:7.2f} s   "
            f"(wall per run: {', '.join(f'{w:.2f}' for w, _ in runs)})"
        )
    for name in ("looped", "autograd"):
        print(f"{name} / batched (wall, medians): {medians[name] / medians['batched']:.1f}x")
    if not args.no_full:
        wall, cpu = run_batched(args.full_steps)
        print(f"whole batched sweep, {args.full_steps:,} steps: wall {wall:.1f} s, CPU {cpu:.1f} s")


if __name__ == "__main__":
    main()
