"""The speed/memory measurement behind benchmarks/sparse_attention.py, at toy lengths."""

from __future__ import annotations

from llm_exploration.sparse.speed import peak_mib, ratios, speed_table


def test_speed_table_has_every_variant_and_ratios_are_consistent():
    table = speed_table([16, 32], window=4, repeats=1, encoder_max_length=16)
    assert set(table["variant"]) == {"dense", "masked", "sparse"}
    assert set(table["scope"]) == {"layer", "encoder"}
    assert (table["seconds"] > 0).all() and (table["peak_mib"] > 0).all()
    r = ratios(table)
    assert len(r) == 2 * 2 + 2 * 1  # layer: passes x lengths; encoder: passes x one length
    row = r.iloc[0]
    assert abs(row["speedup"] - row["dense_ms"] / row["sparse_ms"]) < 1e-9


def test_peak_memory_counts_what_is_allocated_inside():
    import torch

    def allocate():
        a = torch.empty(4 * 2**18)  # 4 MiB
        del a
        b = torch.empty(2 * 2**18)  # 2 MiB: the peak stays 4
        del b

    assert abs(peak_mib(allocate) - 4) < 0.1
