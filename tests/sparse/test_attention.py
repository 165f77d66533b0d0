"""Sparse attention on a real BERT encoder (the embedded all-MiniLM-L6-v2), every backend."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AttentionInterface

from llm_exploration.models import load_encoder
from llm_exploration.sparse.attention import BACKENDS, use_sparse_attention
from llm_exploration.sparse.kernel import banded_attention
from llm_exploration.sparse.masks import additive_mask, allowed, schedule

# every kind the banded kernel runs, in one model, dense layers first and in the middle
MIXED = (
    "dense",
    "window+global",
    "window",
    "dense",
    "window+global-keys",
    "window+global-queries",
)
WINDOW = 2
SENTENCES = [
    "the quick brown fox jumps over the lazy dog near the old river bank today",
    "sparse attention keeps the sinks",
    "short one",
]


@pytest.fixture(scope="module")
def batch(encoder):
    _, tok = encoder
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    assert (enc["attention_mask"] == 0).any(), "the batch must be padded"
    return enc


def _globals(tok) -> list[int]:
    return [tok.cls_token_id, tok.sep_token_id]


def _expected(batch, tok, kinds) -> list[torch.Tensor]:
    valid = batch["attention_mask"].bool()
    glob = torch.isin(batch["input_ids"], torch.tensor(_globals(tok)))
    return [allowed(valid, kind, WINDOW, glob) for kind in kinds]


def test_eager_weights_are_exactly_zero_on_masked_keys_in_every_layer(encoder, batch):
    model, tok = encoder
    use_sparse_attention(model, MIXED, WINDOW, _globals(tok), backend="eager")
    with torch.no_grad():
        attentions = model(**batch, output_attentions=True).attentions
    valid = batch["attention_mask"].bool()
    assert len(attentions) == len(MIXED)
    for layer, (weights, ok) in enumerate(zip(attentions, _expected(batch, tok, MIXED))):
        ok = ok[:, None].expand_as(weights)  # (batch, heads, q, k)
        real_q = valid[:, None, :, None].expand_as(weights)
        assert (weights[~ok & real_q] == 0).all(), f"layer {layer}: masked keys got weight"
        assert (weights[ok & real_q] > 0).all(), f"layer {layer}: an allowed key got no weight"


def test_schedule_is_dense_in_dense_layers_and_sparse_elsewhere_for_every_example(encoder, batch):
    model, tok = encoder
    kinds = ("dense", "window+global", "window+global", "dense", "window+global", "window+global")
    use_sparse_attention(model, kinds, WINDOW, _globals(tok), backend="eager")
    with torch.no_grad():
        attentions = model(**batch, output_attentions=True).attentions
    lengths = batch["attention_mask"].sum(1)
    for layer, (weights, kind) in enumerate(zip(attentions, kinds)):
        for b, n in enumerate(lengths.tolist()):
            seen = (weights[b, :, :n, :] > 0).sum(-1)  # (heads, real queries): keys attended
            if kind == "dense":
                assert (seen == n).all(), f"layer {layer}, example {b}: dense layer is not dense"
                assert (weights[b, :, :, n:] == 0).all(), (
                    f"layer {layer}, example {b}: padding seen"
                )
            else:
                # [CLS] is global; a middle token sees its window plus the two globals
                assert (seen[:, 0] == n).all()
                if n > 2 * WINDOW + 3:
                    assert (seen[:, n // 2] == 2 * WINDOW + 1 + 2).all(), (
                        f"layer {layer}, example {b}"
                    )


def _capture_layer_inputs(model, batch) -> list[torch.Tensor]:
    inputs: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
        for layer in model.encoder.layer
    ]
    with torch.no_grad():
        model(**batch)
    for h in hooks:
        h.remove()
    return inputs


@pytest.mark.parametrize("backend", ["eager", "sdpa", "banded"])
def test_masked_keys_have_no_influence_in_every_layer(encoder, batch, backend):
    """Zero attention <=> changing a masked key's hidden state leaves the query's output as is.

    Works for kernels that return no weights (sdpa, banded): each layer's self-attention is
    called on its real input, then again with every masked key of one query perturbed.
    """
    model, tok = encoder
    use_sparse_attention(model, MIXED, WINDOW, _globals(tok), backend=backend)
    inputs = _capture_layer_inputs(model, batch)
    valid = batch["attention_mask"].bool()
    glob = torch.isin(batch["input_ids"], torch.tensor(_globals(tok)))
    pad = valid[:, None, None, :]
    for layer, (hidden, ok) in enumerate(zip(inputs, _expected(batch, tok, MIXED))):
        attn = model.encoder.layer[layer].attention.self
        with torch.no_grad():
            base = attn(hidden, attention_mask=pad, global_mask=glob)[0]
            for b, n in enumerate(valid.sum(1).tolist()):
                i = n // 2  # a middle, non-global token
                masked = ~ok[b, i]
                if not masked.any():
                    continue
                moved = hidden.clone()
                moved[b, masked] += 10 * torch.randn_like(moved[b, masked])
                out = attn(moved, attention_mask=pad, global_mask=glob)[0]
                torch.testing.assert_close(
                    out[b, i],
                    base[b, i],
                    rtol=0,
                    atol=1e-5,
                    msg=f"{backend}, layer {layer}, example {b}",
                )
                # control: moving an allowed key does change the output
                moved = hidden.clone()
                moved[b, i - 1] += 10.0
                out = attn(moved, attention_mask=pad, global_mask=glob)[0]
                assert not torch.allclose(out[b, i], base[b, i], atol=1e-3)


@pytest.mark.parametrize("backend", ["eager", "sdpa", "banded"])
def test_padding_reaches_the_registered_function(encoder, batch, backend):
    """The trap: a new AttentionInterface name can get attention_mask=None (padding dropped).

    Each example of the padded batch must give the same outputs as when it runs alone, unpadded.
    """
    model, tok = encoder
    use_sparse_attention(model, MIXED, WINDOW, _globals(tok), backend=backend)
    seen: list[torch.Tensor | None] = []
    name = model.config._attn_implementation
    original = AttentionInterface._global_mapping[name]

    def spy(module, query, key, value, attention_mask, **kwargs):
        seen.append(attention_mask)
        return original(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(name, spy)
    try:
        with torch.no_grad():
            padded = model(**batch).last_hidden_state
    finally:
        AttentionInterface.register(name, original)
    assert len(seen) == len(MIXED) and all(m is not None for m in seen)
    for b, n in enumerate(batch["attention_mask"].sum(1).tolist()):
        alone = {k: v[b : b + 1, :n] for k, v in batch.items()}
        with torch.no_grad():
            single = model(**alone).last_hidden_state
        torch.testing.assert_close(padded[b, :n], single[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name",
    [
        "dense",
        "window+global",
        "window",
        "window+global-keys",
        "window+global-queries",
        "modernbert",
        "window+global+random",
    ],
)
def test_backends_agree_forward_and_backward(encoder, batch, name):
    model, tok = encoder
    kinds = schedule(name, model.config.num_hidden_layers)
    valid = batch["attention_mask"].bool()
    results = {}
    backends = ("eager", "sdpa") if name == "window+global+random" else BACKENDS
    for backend in backends:
        use_sparse_attention(model, kinds, WINDOW, _globals(tok), backend=backend)
        model.zero_grad()
        hidden = model(**batch).last_hidden_state
        (hidden[valid] ** 2).mean().backward()
        grad = model.encoder.layer[0].attention.self.query.weight.grad.clone()
        results[backend] = (hidden[valid].detach(), grad)
    for backend in backends[1:]:
        torch.testing.assert_close(results[backend][0], results["eager"][0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(results[backend][1], results["eager"][1], rtol=1e-3, atol=1e-5)


def test_all_dense_schedule_equals_the_unmodified_model(batch):
    plain, tok = load_encoder("all-minilm-l6-v2", attn_implementation="sdpa")
    sparse, _ = load_encoder("all-minilm-l6-v2", attn_implementation="sdpa")
    use_sparse_attention(sparse, schedule("dense", 6), WINDOW, _globals(tok), backend="banded")
    valid = batch["attention_mask"].bool()
    with torch.no_grad():
        a, b = plain.eval()(**batch).last_hidden_state, sparse.eval()(**batch).last_hidden_state
    torch.testing.assert_close(a[valid], b[valid], rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 70), min_size=1, max_size=3),
    window=st.integers(0, 20),
    block=st.sampled_from([None, 1, 7, 16]),
    kind=st.sampled_from(
        ["window", "window+global", "window+global-keys", "window+global-queries"]
    ),
    seed=st.integers(0, 2**16),
)
def test_banded_kernel_matches_masked_dense_sdpa(lengths, window, block, kind, seed):
    gen = torch.Generator().manual_seed(seed)
    batch_size, seq = len(lengths), max(lengths)
    q, k, v = (
        torch.randn(batch_size, 2, seq, 4, generator=gen, dtype=torch.float64, requires_grad=True)
        for _ in range(3)
    )
    valid = torch.arange(seq)[None] < torch.tensor(lengths)[:, None]
    glob = (torch.rand(batch_size, seq, generator=gen) < 0.15) if kind != "window" else None
    reference = F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=additive_mask(allowed(valid, kind, window, glob), q.dtype),  # type: ignore[arg-type]
    ).transpose(1, 2)
    out = banded_attention(
        q,
        k,
        v,
        window,
        valid,
        glob,
        global_keys=kind != "window+global-queries",
        global_queries=kind != "window+global-keys",
        block_size=block,
    )
    assert out.shape == reference.shape
    torch.testing.assert_close(out[valid], reference[valid])
    weights = torch.randn(out[valid].shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((out[valid] * weights).sum(), (q, k, v))
    expected = torch.autograd.grad((reference[valid] * weights).sum(), (q, k, v))
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)


def test_bad_settings_fail_early_with_a_clear_message(encoder, batch):
    model, tok = encoder
    with pytest.raises(ValueError, match="6"):
        use_sparse_attention(model, ("dense",) * 4, WINDOW, _globals(tok))
    with pytest.raises(ValueError, match="Unknown layer kinds"):
        use_sparse_attention(model, ("local",) * 6, WINDOW, _globals(tok))
    with pytest.raises(ValueError, match="window"):
        use_sparse_attention(model, MIXED, -1, _globals(tok))
    with pytest.raises(ValueError, match="backend"):
        use_sparse_attention(model, MIXED, WINDOW, _globals(tok), backend="flash")
    use_sparse_attention(model, MIXED, WINDOW, _globals(tok))
    embeds = model.embeddings.word_embeddings(batch["input_ids"])
    with pytest.raises(ValueError, match="global_mask"):
        model(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    prepared = additive_mask(
        batch["attention_mask"].bool()[:, None, :].expand(-1, embeds.shape[1], -1)
    )
    with pytest.raises(ValueError, match="2-D padding mask"):
        model(**{**batch, "attention_mask": prepared})


def test_zeroed_global_values_give_a_content_free_sink(encoder, batch):
    """With null_global_values, eager attention equals a manual softmax whose global values are 0,
    every backend agrees, and the output differs from the sink that carries content."""
    model, tok = encoder
    kinds = schedule("window+global-keys", model.config.num_hidden_layers)
    valid = batch["attention_mask"].bool()
    outs = {}
    for backend in BACKENDS:
        use_sparse_attention(
            model, kinds, WINDOW, [tok.cls_token_id], backend, null_global_values=True
        )
        with torch.no_grad():
            outs[backend] = model(**batch).last_hidden_state[valid]
    use_sparse_attention(model, kinds, WINDOW, [tok.cls_token_id], "sdpa")
    with torch.no_grad():
        with_content = model(**batch).last_hidden_state[valid]
    for backend in BACKENDS[1:]:
        torch.testing.assert_close(outs[backend], outs["eager"], rtol=1e-4, atol=1e-4)
    assert (outs["sdpa"] - with_content).abs().max() > 1e-2
    assert not model.config.sparse_null_global_values  # switching again resets the control
    self_attn = model.encoder.layer[0].attention.self
    q = k = torch.randn(1, 2, 5, 4)
    v = torch.randn(1, 2, 5, 4)
    glob = torch.tensor([[True, False, False, False, False]])
    use_sparse_attention(model, kinds, WINDOW, [tok.cls_token_id], "eager", null_global_values=True)
    fn = AttentionInterface()["sparse_eager"]
    out, weights = fn(self_attn, q, k, v, None, global_mask=glob)
    expected = torch.matmul(weights, v.masked_fill(glob[:, None, :, None], 0.0)).transpose(1, 2)
    torch.testing.assert_close(out, expected)
    assert weights[..., 0].min() > 0  # [CLS] still takes attention as a key
