"""The sink's share of the attention output, and blocking it layer by layer."""

from __future__ import annotations

import pytest
import torch

from llm_exploration.sinks.mechanism import (
    blocked_sink_nll,
    sink_blocked,
    sink_contributions,
    split_output,
)
from llm_exploration.sinks.streaming import token_nll, window_mask


def test_sink_and_rest_add_up_to_the_attention_output(tiny_eager):
    attn = tiny_eager.model.layers[1].self_attn
    seen = {}
    handles = [
        attn.v_proj.register_forward_hook(lambda m, a, o: seen.update(v=o)),
        attn.register_forward_hook(lambda m, a, o: seen.update(out=o[0], weights=o[1])),
    ]
    ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        tiny_eager(input_ids=ids)
    for h in handles:
        h.remove()
    v = seen["v"].view(2, 9, 2, 8).transpose(1, 2).repeat_interleave(2, 1)
    sink, rest = split_output(seen["weights"], v, attn.o_proj.weight, sink=0)
    assert torch.allclose(sink + rest, seen["out"], atol=1e-6)
    assert torch.allclose(sink[:, 0], seen["out"][:, 0], atol=1e-6)  # query 0 sees only the sink


def test_contributions_table(tiny_eager):
    df = sink_contributions(tiny_eager, torch.randint(0, 97, (2, 12)), min_query=2)
    assert list(df["layer"]) == [0, 1]
    assert ((df["attention"] > 0) & (df["attention"] < 1)).all()
    assert (df.drop(columns="layer") > 0).all().all()


def test_blocking_reaches_only_the_chosen_layer(tiny_eager):
    ids = torch.randint(0, 97, (1, 10))
    mask = window_mask(10, None)
    with torch.no_grad(), sink_blocked(tiny_eager, [1]):
        out = tiny_eager(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert out.attentions[1][..., 1:, 0].abs().max() == 0
    assert out.attentions[1][..., 0, 0].min() == pytest.approx(1.0)  # query 0 keeps its only key
    assert out.attentions[0][..., 1:, 0].min() > 0
    nll = blocked_sink_nll(tiny_eager, ids, {"layer 1": [1]})
    assert torch.allclose(nll["none"], token_nll(tiny_eager, ids), atol=1e-5)
    assert not torch.allclose(nll["layer 1"], nll["none"])
    # without an explicit mask, eager attention still gets the model's own 4-D mask
    with torch.no_grad(), sink_blocked(tiny_eager, [1]):
        assert torch.allclose(token_nll(tiny_eager, ids), nll["layer 1"], atol=1e-5)


def test_blocking_needs_a_mask_under_sdpa(smollm2):
    model, _ = smollm2  # sdpa, no padding: the model passes no mask
    with pytest.raises(ValueError, match="attention_mask"), sink_blocked(model, [0]):
        token_nll(model, torch.randint(100, 5000, (1, 6)))


def test_smollm2_sink_values_are_short(smollm2):
    """Gu et al.: where a head attends to the sink, the sink's value vector is small."""
    from llm_exploration.models import load_causal_lm

    model, tok = load_causal_lm("smollm2-135m-instruct", attn_implementation="eager")
    ids = tok("The ferry left the harbour at dawn, and the gulls followed it out to sea for a "
              "while before they turned back toward the fish market.", return_tensors="pt")  # fmt: skip
    df = sink_contributions(model, ids["input_ids"]).set_index("layer")
    sink_layers = df[df["attention"] > 0.3]
    assert len(sink_layers) >= 10
    assert (sink_layers["value norm, sink"] < 0.6 * sink_layers["value norm, others"]).all()
    assert (sink_layers["output norm, sink"] < sink_layers["output norm, rest"]).mean() > 0.8


def test_blocking_every_layer_is_the_text_without_its_first_token(tiny_eager):
    """With RoPE only distances matter: if no later token may ever see the first one, the rest
    is computed exactly as if the text began at the second token."""
    ids = torch.randint(0, 97, (2, 12))
    blocked = blocked_sink_nll(tiny_eager, ids, {"all": [0, 1]})["all"]
    assert torch.allclose(blocked[:, 1:], token_nll(tiny_eager, ids[:, 1:]), atol=1e-5)


def test_blocked_runs_start_at_the_lowest_blocked_layer_and_match_full_passes(smollm2):
    """blocked_sink_nll reuses the intact residual stream below the lowest blocked layer."""
    model, tok = smollm2
    ids = tok(["The ferry left the harbour at dawn and the gulls followed it out to sea.",
               "To make the dough, mix flour with salt, add warm water and a spoon of yeast."],
              return_tensors="pt", padding=True)["input_ids"][:, :14]  # fmt: skip
    sets = {"3": [3], "12 and 20": [20, 12], "every layer": list(range(30))}
    got = blocked_sink_nll(model, ids, sets)
    mask = window_mask(ids.shape[1], None)
    for name, layers in sets.items():
        with sink_blocked(model, layers):
            full = token_nll(model, ids, mask)
        assert torch.allclose(got[name], full, atol=1e-4), name
    assert len(model.base_model.layers) == 30  # the full stack is back
    with pytest.raises(ValueError, match="empty"):
        blocked_sink_nll(model, ids, {"none of them": []})

