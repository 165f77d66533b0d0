"""The paper's "toy model of the toy model": closed-form losses of a few weight
configurations, and the phase diagram they predict.

Elhage et al. (2022, "Superposition as a Phase Change") compare the expected loss of the
natural ways to store one feature too many: for 2 features in 1 dimension `W = [1, 0]`,
`[0, 1]` and `[1, -1]`; for 3 features in 2 dimensions the four solutions `W ⊥ [0, 0, 1]`,
`W ⊥ [1, 0, 0]`, `W ⊥ [0, 1, 1]` and `W ⊥ [1, 1, 0]` (the joint triangle `W ⊥ [1, 1, 1]` is
left out, as in the paper). The closed forms are those of Wattenberg's companion notebook
(github.com/wattenberg/superposition, `Exploring_Exact_Toy_Models.ipynb`), with `p` the
feature density `1 - S` and `r` the extra feature's importance (the others have 1):

- dropping a feature of importance `I` (its bias set to its mean `p/2`) costs
  `I · Var(x) = I (p/3 - p²/4)`;
- an antipodal pair `x' = ReLU(x_a - x_b)`, `ReLU(x_b - x_a)` is exact unless both features
  are present (probability `p²`), when the error is `min(x_a, x_b)`, with `E[min²] = 1/6`:
  it costs `(I_a + I_b) p² / 6`.

Losses are summed over features (not divided by their number): only their order matters.
Each configuration is labelled with the extra feature's phase, an index into `PHASES`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .metrics import PHASES


def dropped_feature_loss(density: Tensor) -> Tensor:
    """Expected loss of a feature of importance 1 that is not stored: `p/3 - p²/4`."""
    return density / 3 - density**2 / 4


def antipodal_pair_loss(density: Tensor, importance_a: Tensor, importance_b: Tensor) -> Tensor:
    """Expected loss of two features stored as an antipodal pair: `(I_a + I_b) p² / 6`."""
    return (importance_a + importance_b) * density**2 / 6


def configuration_losses(
    density: Tensor, relative_importance: Tensor, n_features: int
) -> dict[int, Tensor]:
    """Expected loss of each of the paper's configurations, keyed by the extra feature's
    phase (an index into `PHASES`). `density`, `relative_importance`: broadcastable tensors;
    `n_features`: 2 (one neuron) or 3 (two dimensions)."""
    p, r = torch.broadcast_tensors(torch.as_tensor(density), torch.as_tensor(relative_importance))
    one = torch.ones_like(r)
    losses = {
        PHASES.index("extra feature not represented"): r * dropped_feature_loss(p),
        PHASES.index("extra feature gets a dimension, another is dropped"): dropped_feature_loss(p),
        PHASES.index("extra feature in superposition"): antipodal_pair_loss(p, one, r),
    }
    if n_features == 3:
        losses[PHASES.index("extra feature gets a dimension, the others share one")] = (
            antipodal_pair_loss(p, one, one)
        )
    elif n_features != 2:
        raise ValueError(f"the closed forms cover 2 or 3 features (one extra), got {n_features}")
    return losses


def analytic_phase(density: Tensor, relative_importance: Tensor, n_features: int) -> Tensor:
    """The phase (index into `PHASES`) of the lowest-loss configuration, elementwise."""
    losses = configuration_losses(density, relative_importance, n_features)
    phases = torch.tensor(list(losses))
    return phases[torch.stack(list(losses.values())).argmin(0)]
