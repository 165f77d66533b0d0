"""Sliding-window attention with and without sink tokens, as a 4-D additive mask."""

from __future__ import annotations

import pytest
import torch

from llm_exploration.models import load_causal_lm
from llm_exploration.sinks.streaming import token_nll, window_mask, window_perplexity


@pytest.fixture(scope="module")
def smol_eager():
    return load_causal_lm("smollm2-135m-instruct", attn_implementation="eager")


def test_window_mask_keeps_sinks_and_recent_tokens():
    allowed = window_mask(6, budget=3, n_sinks=1)[0, 0] == 0
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 0, 1, 1, 0, 0],  # query 3: sink 0 + the 2 most recent (2, 3)
            [1, 0, 0, 1, 1, 0],
            [1, 0, 0, 0, 1, 1],
        ]
    ).bool()
    assert torch.equal(allowed, expected)
    assert (allowed.sum(-1) <= 3).all()
    evicting = window_mask(6, budget=3)[0, 0] == 0
    assert evicting[5].tolist() == [False, False, False, True, True, True]
    with pytest.raises(ValueError, match="n_sinks"):
        window_mask(6, budget=3, n_sinks=3)


def test_mask_reaches_every_layer(smol_eager):
    model, _ = smol_eager
    ids = torch.randint(100, 5000, (1, 24))
    mask = window_mask(24, budget=6, n_sinks=2)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    blocked = mask[0, 0] < 0
    for weights in out.attentions:
        assert weights[0][:, blocked].abs().max() == 0


def test_sdpa_and_eager_agree_and_full_budget_is_dense(smol_eager):
    model, tok = smol_eager
    ids = tok(
        "The ferry left the harbour at dawn. Gulls followed it for a while.", return_tensors="pt"
    )["input_ids"]
    n = ids.shape[1]
    mask = window_mask(n, budget=5, n_sinks=1)
    eager = token_nll(model, ids, mask)
    sdpa_model, _ = load_causal_lm("smollm2-135m-instruct", attn_implementation="sdpa")
    assert torch.allclose(eager, token_nll(sdpa_model, ids, mask), atol=1e-4)
    assert torch.allclose(
        token_nll(model, ids, window_mask(n, budget=n)), token_nll(model, ids), atol=1e-5
    )
    assert not torch.allclose(eager, token_nll(model, ids), atol=1e-2)
    # scoring only the last tokens gives the same numbers as slicing the full result
    assert torch.allclose(token_nll(model, ids, mask, last=4), eager[-4:], atol=1e-5)


def test_window_perplexity_rows(smol_eager):
    model, _ = smol_eager
    streams = [torch.randint(100, 5000, (1, 20))]
    df = window_perplexity(model, streams, budgets=[4, 8], sink_counts=(0, 2))
    assert (
        list(df["variant"])
        == ["dense"] + ["window, first tokens evicted", "window + 2 sink tokens"] * 2
    )
    assert (df["ppl"] > 1).all()
    with pytest.raises(ValueError, match="score_from"):
        window_perplexity(model, streams, budgets=[32])
