"""Vectorized against looped training of the toy models of superposition.

Trains the instances of the post's figure 2 sweep (n=20 features, m=5 dimensions,
importance 0.7^i, six sparsities, linear and ReLU, three seeds each: 36 models) two
ways, for the same number of steps each:

- vectorized: one `ToyModel` holding all 36 instances, one batched forward and one
  optimizer (one training run);
- looped: every instance as its own one-instance `ToyModel`, one after the other
  (36 training runs).

The two variants alternate within one process, and the script prints each one's wall
times, their medians and the ratio. Run:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/superposition_sweep.py [--steps 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from llm_exploration.superposition.model import ToyModel, train

N_FEATURES, N_HIDDEN = 20, 5
SPARSITIES = [0.0, 0.7, 0.9, 0.97, 0.99, 0.999]
SEEDS = 3


def sweep() -> tuple[torch.Tensor, torch.Tensor]:
    """Per instance: density `[36]` and ReLU flag `[36]` (linear first, then ReLU)."""
    density = (1 - torch.tensor(SPARSITIES)).repeat(2).repeat_interleave(SEEDS)
    relu = torch.tensor([False, True]).repeat_interleave(len(SPARSITIES) * SEEDS)
    return density, relu


def run_vectorized(importance: torch.Tensor, **train_kwargs) -> float:
    density, relu = sweep()
    start = time.perf_counter()
    model = ToyModel(len(density), N_FEATURES, N_HIDDEN, relu=relu)
    train(model, density, importance, **train_kwargs)
    return time.perf_counter() - start


def run_looped(importance: torch.Tensor, **train_kwargs) -> float:
    density, relu = sweep()
    start = time.perf_counter()
    for k in range(len(density)):
        model = ToyModel(1, N_FEATURES, N_HIDDEN, relu=bool(relu[k]), seed=k)
        train(model, density[k : k + 1], importance, **train_kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256, help="the post's cpu profile")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    importance = 0.7 ** torch.arange(N_FEATURES)
    kwargs = {"steps": args.steps, "batch_size": args.batch_size, "lr": 2e-2}
    n_instances = len(sweep()[0])
    print(
        f"{n_instances} instances (n={N_FEATURES}, m={N_HIDDEN}), {args.steps} steps each, "
        f"batch {args.batch_size}, torch {torch.__version__}, 1 thread"
    )
    run_vectorized(importance, steps=5, batch_size=8)  # warm-up
    times: dict[str, list[float]] = {"vectorized": [], "looped": []}
    for _ in range(args.rounds):
        times["vectorized"].append(run_vectorized(importance, **kwargs))
        times["looped"].append(run_looped(importance, **kwargs))
    for name, values in times.items():
        print(
            f"{name:>10}: median {statistics.median(values):7.2f} s   "
            f"(runs: {', '.join(f'{v:.2f}' for v in values)})"
        )
    ratio = statistics.median(times["looped"]) / statistics.median(times["vectorized"])
    print(f"looped / vectorized: {ratio:.1f}x")


if __name__ == "__main__":
    main()
