"""Streaming NLL and speed, and the window mask used as an independent check of the cache."""

from __future__ import annotations

import pytest
import torch

from llm_exploration.models import load_causal_lm
from llm_exploration.sinks.streaming import stream_nll, streaming_speed, token_nll, window_mask
from llm_exploration.sinks.texts import shakespeare_streams


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


def test_sdpa_and_eager_agree_and_full_budget_is_dense(smol_eager, smollm2):
    model, tok = smol_eager
    ids = tok(
        "The ferry left the harbour at dawn. Gulls followed it for a while.", return_tensors="pt"
    )["input_ids"]
    n = ids.shape[1]
    mask = window_mask(n, budget=5, n_sinks=1)
    eager = token_nll(model, ids, mask)
    assert torch.allclose(eager, token_nll(smollm2[0], ids, mask), atol=1e-4)
    assert torch.allclose(token_nll(model, ids, window_mask(n, budget=n)), token_nll(model, ids),
                          atol=1e-5)  # fmt: skip
    assert not torch.allclose(eager, token_nll(model, ids), atol=1e-2)


def test_smollm2_streams_through_the_sink_cache(smollm2):
    """On the real model: before the cache is full the sink cache is dense attention; after, the
    window without sinks is much worse than the one with a sink (the StreamingLLM effect)."""
    model, tok = smollm2
    ids = shakespeare_streams(tok, 2, 128, split="validation", seed=0)
    dense = stream_nll(model, ids, chunk=32)
    assert torch.allclose(dense, token_nll(model, ids), atol=1e-4)
    sink = stream_nll(model, ids, n_sink=1, window=31, chunk=16)
    window = stream_nll(model, ids, n_sink=0, window=32, chunk=16)
    assert torch.allclose(sink[:, :31], dense[:, :31], atol=1e-4)
    assert window[:, 40:].mean() > sink[:, 40:].mean() + 1.0  # about 2.4 nats measured


def test_streaming_speed_rows(smollm2):
    model, _ = smollm2
    ids = torch.randint(100, 5000, (1, 40))
    df = streaming_speed(model, ids, [8, 16], n_sink=2, decode_tokens=2, repeats=1)
    assert list(df["cache size"]) == [8, 16]
    assert (df["speed-up"] > 0).all()
    with pytest.raises(ValueError, match="T >="):
        streaming_speed(model, ids, [64], decode_tokens=2, repeats=1)
