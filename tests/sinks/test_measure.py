"""Sink metrics: known answers on hand-built attention, padding invariance, real-model behaviour."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    GPT2Config,
    GPT2Model,
    Qwen2Config,
    Qwen2Model,
)

from llm_exploration.models import AttentionWeightsUnavailableError, load_causal_lm, load_encoder
from llm_exploration.sinks.measure import (
    CLS,
    FIRST,
    OTHER,
    PUNCT,
    SEP,
    TOKEN_CLASSES,
    SinkReport,
    attention_maps,
    capture_modules,
    is_causal,
    measure_sinks,
    pad,
    reduce_attention,
    token_classes,
    visibility,
)
from llm_exploration.sinks.variants import (
    decoder_variants,
    encoder_variants,
    where_sink_goes,
)

TEXTS = [
    "The ferry left the harbour at dawn, and the gulls followed it.",
    "How many clips did Natalia sell altogether in April and May?",
    "worst decision ever!! #angry",
    "Rivers carve valleys slowly: a few millimetres a year, for millions of years, until the hills give way.",
]


@pytest.fixture(scope="module")
def smol():
    return load_causal_lm("smollm2-135m-instruct", attn_implementation="eager")


@pytest.fixture(scope="module")
def mini():
    return load_encoder("all-minilm-l6-v2", attn_implementation="eager")


def onehot(classes: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), len(TOKEN_CLASSES)).float()[None]


# --- hand-built attention with known answers ------------------------------------------------


def test_causal_uniform_attention_gives_harmonic_alpha():
    # 3 tokens, every query spreads evenly over the keys it sees: A[q, k] = 1 / (q + 1).
    weights = torch.tensor([[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]])[None, None]
    visible = visibility(torch.ones(1, 3), causal=True)
    alpha, share = reduce_attention(weights, visible, onehot([FIRST, PUNCT, OTHER]))
    assert torch.allclose(
        alpha[0, 0], torch.tensor([(1 + 1 / 2 + 1 / 3) / 3, (1 / 2 + 1 / 3) / 2, 1 / 3])
    )
    # share of the first token: mean over queries of A[q, 0]
    assert share[0, 0, FIRST].item() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert share[0, 0].sum().item() == pytest.approx(1.0)


def test_padding_rows_and_columns_are_ignored():
    # Encoder, 2 real tokens + 1 pad. The pad query row and pad key column hold garbage.
    weights = torch.tensor([[0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])[None, None]
    visible = visibility(torch.tensor([[1, 1, 0]]), causal=False)
    alpha, share = reduce_attention(weights, visible, onehot([FIRST, OTHER, OTHER]))
    assert torch.allclose(alpha[0, 0, :2], torch.tensor([0.7, 0.3]))
    assert math.isnan(alpha[0, 0, 2].item())
    assert share[0, 0, FIRST].item() == pytest.approx(0.7)
    assert share[0, 0, OTHER].item() == pytest.approx(0.3)


def test_sink_rate_counts_heads_above_epsilon():
    # 2 layers x 2 heads; alpha of the first token: 0.9, 0.31, 0.3, 0.1 -> 2 of 4 above 0.3.
    alpha = torch.zeros(2, 2, 3)
    alpha[:, :, 0] = torch.tensor([[0.9, 0.31], [0.3, 0.1]])
    report = SinkReport(
        "toy",
        True,
        [["a", "b", "c"]],
        [torch.tensor([FIRST, OTHER, OTHER])],
        [alpha],
        torch.zeros(1, 2, 2, len(TOKEN_CLASSES)),
        [torch.ones(2, 3)],
    )
    assert report.sink_rate(0, eps=0.3) == pytest.approx(50.0)
    assert report.sink_rate_by_head(0).tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_min_queries_drops_the_keys_few_causal_queries_see():
    # Causal, 4 tokens: key k is seen by 4 - k queries. The last key has the largest alpha (one
    # query's self-attention), which min_queries=2 leaves out of the ranking.
    alpha = torch.tensor([0.5, 0.1, 0.2, 0.9])[None, None]
    report = SinkReport(
        "toy",
        True,
        [["a", "b", "c", "d"]],
        [torch.tensor([FIRST, OTHER, OTHER, OTHER])],
        [alpha],
        torch.zeros(1, 1, 1, len(TOKEN_CLASSES)),
        [torch.ones(1, 4)],
    )
    assert report.top_tokens("string", 1)["string"][0] == "d"
    assert report.top_tokens("string", 4, min_queries=2)["string"].tolist() == ["a", "c", "b"]
    assert report.top_tokens("position", 4, min_queries=3)["position"].tolist() == [0, 1]
    encoder = SinkReport(**{**report.__dict__, "causal": False})
    assert torch.equal(encoder.alpha_seen(4)[0], alpha)  # every key is seen by all 4 queries


def test_uniform_baseline_of_first_token():
    report = SinkReport(
        "toy",
        True,
        [["a"] * 4],
        [torch.tensor([FIRST, OTHER, OTHER, OTHER])],
        [torch.zeros(1, 1, 4)],
        torch.zeros(1, 1, 1, len(TOKEN_CLASSES)),
        [torch.ones(1, 4)],
    )
    assert report.uniform_shares()[0, FIRST].item() == pytest.approx(
        (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    )


def test_token_classes_of_bert_input(mini):
    _, tok = mini
    ids = tok("Hello, world.")["input_ids"]  # [CLS] hello , world . [SEP]
    assert token_classes(tok, ids).tolist() == [FIRST, OTHER, PUNCT, OTHER, PUNCT, SEP]
    assert token_classes(tok, [tok.sep_token_id, tok.cls_token_id])[1].item() == CLS


# --- real models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["mini", "smol"])
def test_padding_changes_nothing(fixture, request):
    model, tok = request.getfixturevalue(fixture)
    batched = measure_sinks(model, tok, TEXTS, batch_size=len(TEXTS))
    assert len({len(t) for t in batched.tokens}) > 1, "the batch must need padding"
    for i, text in enumerate(TEXTS):
        alone = measure_sinks(model, tok, [text])
        assert torch.allclose(alone.alpha[0], batched.alpha[i], atol=1e-5)
        assert torch.allclose(alone.class_share[0], batched.class_share[i], atol=1e-5)
        assert torch.allclose(alone.hidden_norm[0], batched.hidden_norm[i], rtol=1e-4)


def test_hooks_match_output_attentions(mini):
    model, tok = mini
    report = measure_sinks(model, tok, TEXTS, batch_size=2)
    input_ids, mask = pad([tok(t)["input_ids"] for t in TEXTS], tok.pad_token_id)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask, output_attentions=True)
    visible = visibility(mask, causal=False)
    for i in range(len(TEXTS)):
        n = int(mask[i].sum())
        for layer, weights in enumerate(out.attentions):
            a = weights[i, :, :n, :n]
            expected = a.sum(1) / n  # every real query sees every real key
            assert torch.allclose(report.alpha[i][layer], expected, atol=1e-6)
    assert visible.shape == (len(TEXTS), input_ids.shape[1], input_ids.shape[1])


def test_smollm2_first_token_is_the_top_sink(smol):
    model, tok = smol
    report = measure_sinks(model, tok, TEXTS)
    top = report.top_sink_positions()  # [N, L]
    assert (top == 0).float().mean().item() > 0.8
    first = report.alpha_at(0).mean(2)  # [N, L]: head-averaged alpha of the first token
    sink_layers = list(range(3, 10)) + list(range(12, 30))
    assert (first[:, sink_layers] > 0.3).float().mean().item() > 0.9
    # and it is a massive activation: its norm dwarfs the other tokens' from layer 12 on
    assert (report.norm_ratio()[:, 12:25] > 20).all()


def test_minilm_sinks_on_cls(mini):
    model, tok = mini
    report = measure_sinks(model, tok, TEXTS)
    assert report.sink_rate(0) > 50
    assert report.top_tokens("string", 1)["string"][0] == "[CLS]"


def test_sink_stays_at_position_zero_in_smollm2(smol):
    model, tok = smol
    table = where_sink_goes(model, tok, decoder_variants(tok, TEXTS[:2])).set_index("variant")
    # whatever stands first becomes the sink; the original first token loses it once moved
    assert (table["position 0"] > 0.4).all()
    assert (table["followed token, moved"].dropna() < 0.15).all()


def test_encoder_variants_follow_cls(mini):
    _, tok = mini
    for v in encoder_variants(tok, TEXTS[:2]):
        for ids, p in zip(v.ids, v.followed):
            assert p is None or ids[p] == tok.cls_token_id


def test_attention_maps_are_rows_of_probabilities(smol):
    model, tok = smol
    maps, tokens = attention_maps(model, tok, TEXTS[0], [0, -1])
    assert maps.shape == (2, len(tokens), len(tokens))
    assert torch.allclose(maps.sum(-1), torch.ones(2, len(tokens)), atol=1e-5)
    assert maps[0].triu(1).abs().max() == 0  # causal


def test_sdpa_is_refused_with_a_clear_error(minilm):
    model, tok = minilm  # the shared fixture loads sdpa
    with pytest.raises(AttentionWeightsUnavailableError, match="eager"):
        measure_sinks(model, tok, TEXTS[:1])


@pytest.mark.parametrize(
    "model",
    [
        BertModel(
            BertConfig(
                hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
            )
        ),
        DistilBertModel(DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64)),
        GPT2Model(GPT2Config(n_embd=32, n_layer=2, n_head=2)),
        Qwen2Model(
            Qwen2Config(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                intermediate_size=64,
            )
        ),
    ],
    ids=["bert", "distilbert", "gpt2", "qwen2"],
)
def test_every_gpu_profile_architecture_is_found(model):
    """The gpu profile's architectures: two attention and two layer modules found, causality right,
    and the hooked weights equal output_attentions."""
    model.set_attn_implementation("eager")
    model.eval()
    attn = capture_modules(model, "attentions")
    assert len(attn) == 2 and len(capture_modules(model, "hidden_states")) == 2
    causal = is_causal(model)
    assert causal == isinstance(model, GPT2Model | Qwen2Model)
    ids = torch.randint(5, 90, (1, 7))
    seen = []
    handles = [m.register_forward_hook(lambda m, a, o, i=i: seen.append(o[i])) for m, i in attn]
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True)
    for h in handles:
        h.remove()
    for mine, theirs in zip(seen, out.attentions):
        assert torch.equal(mine, theirs)
    if causal:
        assert out.attentions[0][0].triu(1).abs().max() == 0
