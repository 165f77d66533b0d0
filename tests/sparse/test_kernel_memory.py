"""The banded kernel keeps for its backward pass no more than fused dense attention keeps."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llm_exploration.sparse.kernel import banded_attention


def _saved_bytes(fn) -> int:
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def test_saved_tensors_are_those_of_dense_sdpa_plus_a_few_indices():
    n, heads, dim = 512, 4, 16
    q, k, v = (torch.randn(1, n, heads, dim).transpose(1, 2).requires_grad_() for _ in range(3))
    glob = torch.zeros(1, n, dtype=torch.bool)
    glob[0, [0, n - 1]] = True
    dense = _saved_bytes(lambda: F.scaled_dot_product_attention(q, k, v))
    banded = _saved_bytes(lambda: banded_attention(q, k, v, 32, None, glob))
    assert banded <= dense + 64  # two int64 slot positions and two flags
