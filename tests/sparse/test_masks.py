"""Masks and schedules: window, global tokens, padding, per-layer kinds."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_exploration.sparse.masks import (
    additive_mask,
    allowed,
    density,
    global_token_mask,
    layer_masks,
    random_keys,
    receptive_field,
    schedule,
)

GLOBAL_KINDS = ["window+global", "window+global-keys", "window+global-queries"]


def test_named_schedules_for_six_layers():
    d, w = "dense", "window"
    assert schedule("dense", 6) == (d,) * 6
    assert schedule("window+global", 6) == ("window+global",) * 6
    assert schedule("window", 6) == (w,) * 6
    # ModernBERT: a global layer every third layer from the first, plain windows in between
    assert schedule("modernbert", 6) == (d, w, w, d, w, w)


def test_unknown_schedule_names_the_valid_ones():
    with pytest.raises(ValueError, match="modernbert"):
        schedule("mostly-dense", 6)


def _brute_force(
    lengths: list[int], seq: int, kind: str, window: int, glob: torch.Tensor
) -> torch.Tensor:
    out = torch.zeros(len(lengths), seq, seq, dtype=torch.bool)
    for b, n in enumerate(lengths):
        for i in range(seq):
            for j in range(n):  # keys beyond the length are padding: never allowed
                as_query = kind in ("window+global", "window+global-queries") and i < n
                as_key = kind in ("window+global", "window+global-keys")
                g = as_query and bool(glob[b, i]) or as_key and bool(glob[b, j])
                out[b, i, j] = kind == "dense" or abs(i - j) <= window or g
    return out


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    window=st.integers(0, 13),
    kind=st.sampled_from(["dense", "window", *GLOBAL_KINDS]),
    data=st.data(),
)
def test_allowed_matches_the_definition(lengths, window, kind, data):
    seq = max(lengths)
    valid = torch.arange(seq)[None] < torch.tensor(lengths)[:, None]
    glob = torch.tensor(
        data.draw(
            st.lists(
                st.lists(st.booleans(), min_size=seq, max_size=seq),
                min_size=len(lengths),
                max_size=len(lengths),
            )
        )
    )
    got = allowed(valid, kind, window, glob)
    assert torch.equal(got, _brute_force(lengths, seq, kind, window, glob))


def test_dense_layer_uses_each_example_length_not_the_padded_length():
    valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    glob = torch.tensor([[1, 0, 0, 0, 1], [1, 0, 1, 0, 0]], dtype=torch.bool)
    masks = layer_masks(("dense", "window+global", "window"), valid, window=1, is_global=glob)
    assert masks[0].sum(-1).tolist() == [[5] * 5, [3] * 5]  # every query sees every real key
    assert density(masks[0], valid).tolist() == [1.0, 1.0]
    # window+global: [CLS] (0) sees everything real, middle tokens see neighbours + globals
    assert masks[1][0, 0].tolist() == [True] * 5
    assert masks[1][0, 2].tolist() == [True, True, True, True, True]
    assert masks[1][1, 1].tolist() == [True, True, True, False, False]
    # window only: no long-range link at all
    assert masks[2][0, 0].tolist() == [True, True, False, False, False]
    assert (density(masks[2], valid) < 1).all()


@pytest.mark.parametrize("kind", [*GLOBAL_KINDS, "window+global+random"])
def test_global_kinds_need_the_global_tokens(kind):
    with pytest.raises(ValueError, match="is_global"):
        allowed(torch.ones(1, 4, dtype=torch.bool), kind, 1)


def test_key_only_and_query_only_globals_split_the_two_roles():
    valid = torch.ones(1, 9, dtype=torch.bool)
    glob = torch.zeros(1, 9, dtype=torch.bool)
    glob[0, 0] = True  # [CLS]
    keys = allowed(valid, "window+global-keys", 1, glob)[0]
    queries = allowed(valid, "window+global-queries", 1, glob)[0]
    assert keys[:, 0].all() and keys[0].sum() == 2  # all attend to [CLS]; [CLS] sees its window
    assert queries[0].all() and queries[:, 0].sum() == 2  # [CLS] sees all; only neighbours see it
    both = allowed(valid, "window+global", 1, glob)[0]
    assert torch.equal(both, keys | queries)


def test_random_links_are_real_keys_fixed_by_the_seed_and_differ_between_layers():
    valid = torch.tensor([[True] * 30, [True] * 20 + [False] * 10])
    glob = torch.zeros(2, 30, dtype=torch.bool)
    picked = random_keys(valid, 3, seed=5)
    assert (picked.sum(-1) == 3).all() and not picked[1, :, 20:].any()
    assert torch.equal(picked, random_keys(valid, 3, seed=5))
    masks = layer_masks(["window+global+random"] * 2, valid, 1, glob)
    window = allowed(valid, "window", 1)
    assert (masks & ~window).any() and not torch.equal(masks[0], masks[1])


def test_additive_mask_is_float_zero_or_dtype_minimum():
    ok = torch.tensor([[[True, False], [False, True]]])
    mask = additive_mask(ok, torch.float32)
    assert mask.shape == (1, 1, 2, 2) and mask.dtype == torch.float32
    assert mask[0, 0, 0, 0] == 0 and mask[0, 0, 0, 1] == torch.finfo(torch.float32).min


def test_global_token_mask_marks_cls_and_sep():
    ids = torch.tensor([[101, 7, 8, 102, 0], [101, 9, 102, 0, 0]])
    assert global_token_mask(ids, [101, 102]).int().tolist() == [[1, 0, 0, 1, 0], [1, 0, 1, 0, 0]]


def test_receptive_field_of_cls_grows_by_the_window_each_layer_without_globals():
    valid = torch.ones(1, 40, dtype=torch.bool)
    glob = torch.zeros(1, 40, dtype=torch.bool)
    glob[0, [0, 39]] = True
    for layers in (1, 3, 6):
        local = receptive_field(layer_masks(("window",) * layers, valid, 2))
        assert local[0, 0].sum() == 2 * layers + 1  # [CLS] sees positions 0 .. k * layers
        with_globals = receptive_field(layer_masks(("window+global",) * layers, valid, 2, glob))
        assert with_globals[0, 0].all()  # one global layer is enough
