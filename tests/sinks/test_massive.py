"""Massive activations: the top values of every layer, and setting them."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from llm_exploration.sinks.massive import (
    activations_set,
    first_delimiter,
    hidden_at,
    massive_layer,
    summarize,
    top_activations,
)
from llm_exploration.sinks.streaming import token_nll


def test_top_activations_match_the_hidden_states(tiny_eager, smollm2):
    _, tok = smollm2
    ids = torch.randint(0, 97, (2, 7))
    df = top_activations(tiny_eager, tok, ids, k=3)
    assert len(df) == 2 * 2 * 3
    with torch.no_grad():
        states = tiny_eager(input_ids=ids, output_hidden_states=True).hidden_states
    for row in df.itertuples():
        if row.layer == 0:  # hidden_states[1] is layer 0's output (the last one is normed)
            assert states[1][row.text, row.position, row.dim].item() == pytest.approx(row.value)
    top = df[df["rank"] == 1].set_index(["layer", "text"])["magnitude"]
    assert (top >= df[df["rank"] == 3].set_index(["layer", "text"])["magnitude"]).all()
    assert first_delimiter(tok, tok("Hi there. Yes.\nNo")["input_ids"]) == 2


def test_setting_activations_to_their_own_values_changes_nothing(tiny_eager):
    ids = torch.randint(0, 97, (2, 8))
    h = hidden_at(tiny_eager, ids, layer=0, position=0)
    base = token_nll(tiny_eager, ids)
    with activations_set(tiny_eager, 0, 0, [3, 5], h[:, [3, 5]]):
        assert torch.allclose(token_nll(tiny_eager, ids), base, atol=1e-6)
    with activations_set(tiny_eager, 0, 0, [3, 5], torch.tensor([50.0, -50.0])):
        assert not torch.allclose(token_nll(tiny_eager, ids), base, atol=1e-3)
        assert hidden_at(tiny_eager, ids, 0, 0)[:, 3].eq(50).all()


def test_summary_finds_the_first_massive_layer():
    rows = []
    for layer, top in enumerate([5.0, 50.0, 5000.0]):
        for rank, scale in enumerate([1.0, 0.5, 0.25]):
            rows.append({"layer": layer, "text": 0, "rank": rank + 1, "magnitude": top * scale,
                         "median": 1.0, "dim": 7, "kind": "first token", "token": "A"})  # fmt: skip
    summary = summarize(pd.DataFrame(rows))
    assert list(summary["top 1 / median"]) == [5.0, 50.0, 5000.0]
    assert summary.loc[2, "dims"] == "7" and summary.loc[2, "carried by"] == "first token 3"
    assert massive_layer(summary) == 2 and massive_layer(summary, ratio=1e4) is None


def test_smollm2_massive_activations_sit_on_the_first_token(smollm2):
    model, tok = smollm2
    ids = tok("Summer is warm. Winter is cold. The river runs to the sea.", return_tensors="pt")
    summary = summarize(top_activations(model, tok, ids["input_ids"]))
    layer = massive_layer(summary)
    assert layer is not None and 5 <= layer <= 20
    assert summary.loc[layer:25, "carried by"].eq("first token 3").all()
