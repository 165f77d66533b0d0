"""Probes, attention flow and top-layer fine-tuning on the embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from llm_exploration.sparse.attention import use_sparse_attention
from llm_exploration.sparse.experiment import paired_seeds
from llm_exploration.sparse.finetune import Budget, TopModel, train_top
from llm_exploration.sparse.flow import DESTINATIONS, destinations
from llm_exploration.sparse.masks import schedule
from llm_exploration.sparse.probe import encode, fit_probe

TEXTS = [
    "the quick brown fox jumps over the lazy dog near the old river bank today",
    "sparse attention keeps the sinks",
    "short one",
    "another sentence of middling length for the batch",
]


def _ids(tok):
    return [tok(t)["input_ids"] for t in TEXTS]


def test_encode_gives_each_text_what_it_gives_alone(encoder):
    model, tok = encoder
    use_sparse_attention(
        model, schedule("window+global", 6), 2, [tok.cls_token_id, tok.sep_token_id], "sdpa"
    )
    ids = _ids(tok)
    batched = encode(model, ids, tok.pad_token_id, batch_size=4, bf16=False, capture_layer=5)
    for i, x in enumerate(ids):
        alone = encode(model, [x], tok.pad_token_id, bf16=False)
        for r in ("cls", "mean"):
            torch.testing.assert_close(
                batched.features[r][i], alone.features[r][0], rtol=1e-4, atol=1e-4
            )
        assert batched.layer_inputs[i].shape == (len(x), model.config.hidden_size)


def test_top_layers_on_cached_inputs_reproduce_the_full_model(encoder):
    model, tok = encoder
    glob = [tok.cls_token_id, tok.sep_token_id]
    use_sparse_attention(model, schedule("window+global", 6), 2, glob, "sdpa")
    ids = _ids(tok)
    enc = encode(model, ids, tok.pad_token_id, batch_size=4, bf16=False, capture_layer=4)
    top = TopModel(model, 4, 3, "cls").eval()
    for i, x in enumerate(ids):
        hidden = enc.layer_inputs[i].float()[None]
        mask = torch.ones(1, len(x), dtype=torch.long)
        g = torch.isin(torch.tensor([x]), torch.tensor(glob))
        h = hidden
        padding = mask.bool()[:, None, None, :]
        with torch.no_grad():
            for layer in top.layers:
                h = layer(h, padding, global_mask=g)
        full = encode(model, [x], tok.pad_token_id, bf16=False).features["cls"][0]
        torch.testing.assert_close(h[0, 0], full, rtol=2e-2, atol=2e-2)  # cached inputs are bf16


def test_train_top_learns_a_separable_toy_task_and_is_seeded(encoder):
    model, tok = encoder
    use_sparse_attention(model, schedule("window", 6), 2, [tok.cls_token_id], "sdpa")
    texts = [
        "i love this so much",
        "what a wonderful day",
        "i hate this so much",
        "what a terrible day",
    ] * 6
    labels = torch.tensor([0, 0, 1, 1] * 6)
    ids = [tok(t)["input_ids"] for t in texts]
    enc = encode(model, ids, tok.pad_token_id, capture_layer=5)
    budget = Budget(steps=30, batch_size=8, readout="mean", head_learning_rate=1e-2)
    runs = [
        train_top(
            model,
            5,
            (enc.layer_inputs, ids, labels),
            (enc.layer_inputs, ids),
            2,
            [tok.cls_token_id],
            budget,
            s,
        )
        for s in (0, 0, 1)
    ]
    assert (runs[0]["pred"] == labels).float().mean() > 0.9
    assert torch.equal(runs[0]["pred"], runs[1]["pred"]) and runs[0]["loss"] == runs[1]["loss"]


def test_probe_fits_separable_features():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(3, (300,), generator=gen)
    x = torch.randn(300, 8, generator=gen) + 4 * torch.nn.functional.one_hot(y, 8).float()
    probe = fit_probe(x, y, 3)
    assert (probe.predict(x) == y).float().mean() > 0.95 and probe.l2 > 0


def test_attention_destinations_sum_to_one_and_respect_the_window(encoder):
    model, tok = encoder
    with pytest.raises(ValueError, match="eager"):
        destinations(model, _ids(tok), tok.pad_token_id, 2)
    use_sparse_attention(model, schedule("window", 6), 2, [tok.cls_token_id], "eager")
    flow = destinations(model, _ids(tok), tok.pad_token_id, 2)
    totals = flow.groupby("layer")["share"].sum()
    assert set(flow["destination"]) == set(DESTINATIONS)
    assert (totals - 1).abs().max() < 1e-5
    assert flow.loc[flow["destination"] == "beyond its window", "share"].abs().max() < 1e-6


def test_paired_seeds_leaves_collapsed_runs_out_and_pairs_by_seed():
    rows = []
    for seed in range(5):
        rows.append(
            {"variant": "dense", "seed": seed, "macro_f1": 0.6 + 0.01 * seed, "collapsed": False}
        )
        rows.append(
            {
                "variant": "sparse",
                "seed": seed,
                "macro_f1": 0.55 + 0.01 * seed,
                "collapsed": seed == 4,
            }
        )
    out = paired_seeds(pd.DataFrame(rows)).set_index("variant")
    assert out.loc["sparse", "collapsed"] == 1 and out.loc["sparse", "pairs"] == 4
    assert out.loc["sparse", "delta"] == pytest.approx(-0.05)
    assert out.loc["sparse", "delta_high"] == pytest.approx(
        -0.05
    )  # identical differences: no spread
