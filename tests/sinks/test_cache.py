"""The sink cache: re-rotation, positions within the cache, chunked = token by token, oracles."""

from __future__ import annotations

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from llm_exploration.sinks.cache import SinkCache, rotate_keys, streaming_visibility
from llm_exploration.sinks.streaming import (
    Reading,
    stream_nll,
    stream_readings,
    token_nll,
    window_mask,
)


def rope(model, x, position):
    """``x [1, H, T, D]`` rotated as the model rotates keys at positions ``position..``."""
    pos = torch.arange(position, position + x.shape[2])[None]
    cos, sin = model.model.rotary_emb(x, pos)
    return apply_rotary_pos_emb(x, x, cos, sin)[1]


def test_rotate_keys_moves_a_key_to_another_position(tiny_eager):
    x = torch.randn(1, 2, 5, 8)
    inv_freq = tiny_eager.model.rotary_emb.inv_freq
    moved = rotate_keys(rope(tiny_eager, x, 40), -37, inv_freq)
    assert torch.allclose(moved, rope(tiny_eager, x, 3), atol=1e-5)
    # many small moves (as a key sees in a long stream) drift by little
    key = rope(tiny_eager, x, 1000)
    for _ in range(500):
        key = rotate_keys(key, -2, inv_freq)
    assert torch.allclose(key, rope(tiny_eager, x, 0), atol=1e-4)


def test_visibility_is_sinks_plus_window():
    seen = streaming_visibility(torch.arange(8), torch.arange(8), n_sink=1, window=2)
    assert seen[7].nonzero().flatten().tolist() == [0, 5, 6, 7]
    assert seen[2].nonzero().flatten().tolist() == [0, 1, 2]


def test_cache_keeps_sinks_and_assigns_positions_within_it(tiny_eager):
    cache = SinkCache(tiny_eager, n_sink=2, window=5)
    ids = torch.randint(0, 97, (1, 20))
    for start in range(0, 20, 3):
        chunk = ids[:, start : start + 3]
        assert cache.get_seq_length() == min(start, 7)
        tiny_eager(input_ids=chunk, cache=cache, use_cache=True,
                   attention_mask=cache.chunk_mask(chunk.shape[1]))  # fmt: skip
    layer = cache.layers[0]
    assert cache.seen == 20 and layer.keys.shape[-2] == 7 + 2  # last chunk not yet evicted
    assert layer.key_indices(1).tolist() == [0, 1, 15, 16, 17, 18, 19, 20]
    # Layer 0's keys depend on the token alone: each cached key must equal its token's key
    # projection rotated at its slot in the cache, whatever position it arrived at.
    attn = tiny_eager.model.layers[0].self_attn
    hidden = tiny_eager.model.layers[0].input_layernorm(tiny_eager.model.embed_tokens(ids))
    raw = attn.k_proj(hidden).view(1, 20, 2, 8).transpose(1, 2)  # [1, kv heads, T, head dim]
    kept = torch.tensor([0, 1, 13, 14, 15, 16, 17, 18, 19])  # stream indices of the 9 cached keys
    assert torch.allclose(layer.keys, rope(tiny_eager, raw[:, :, kept], 0), atol=1e-5)
    with pytest.raises(NotImplementedError):
        cache.crop(-1)


def test_window_cache_equals_the_mask_over_original_positions(tiny_eager):
    """Without sinks only distances matter (RoPE): the cache = a window mask in one pass."""
    ids = torch.randint(0, 97, (2, 40))
    window = 6
    oracle = token_nll(tiny_eager, ids, window_mask(40, budget=window + 1))
    for chunk in (1, 4, 16):
        got = stream_nll(tiny_eager, ids, n_sink=0, window=window, chunk=chunk)
        assert torch.allclose(got, oracle, atol=1e-5), chunk


def test_sink_cache_before_eviction_is_dense_and_chunking_moves_only_sink_distances(tiny_eager):
    ids = torch.randint(0, 97, (1, 48))
    dense = stream_nll(tiny_eager, ids, chunk=5)
    assert torch.allclose(dense, token_nll(tiny_eager, ids), atol=1e-5)
    one = stream_nll(tiny_eager, ids, n_sink=4, window=12, chunk=1)
    assert torch.allclose(one[:, :16], dense[:, :16], atol=1e-5)  # nothing evicted yet
    assert not torch.allclose(one, dense, atol=1e-3)
    many = stream_nll(tiny_eager, ids, n_sink=4, window=12, chunk=8)
    # same keys seen; only the distance to the sinks differs (by < chunk positions)
    assert (many - one).abs().max() < 0.5
    # and it is not the mask over original positions (sinks far away): positions differ
    original = token_nll(tiny_eager, ids, window_mask(48, budget=4 + 12 + 1, n_sinks=4))
    assert not torch.allclose(one, original, atol=1e-4)


def test_readings_share_their_start_and_equal_separate_streams(tiny_eager):
    """Reading the common start once (every cache is dense until full) changes no number."""
    ids = torch.randint(0, 97, (3, 60))
    readings = {
        "dense": Reading(length=40),
        "window": Reading(0, 16, length=50),
        "sinks": Reading(2, 14),
        "sinks, two streams": Reading(4, 20, n_streams=2),
    }
    got = stream_readings(tiny_eager, ids, readings, chunk=8)
    for name, r in readings.items():
        n, length = r.n_streams or 3, r.length or 60
        alone = stream_nll(tiny_eager, ids[:n, :length], r.n_sink, r.window, chunk=8)
        assert got[name].shape == alone.shape, name
        assert torch.allclose(got[name], alone, atol=1e-5), name
    with pytest.raises(ValueError, match="streams"):
        stream_readings(tiny_eager, ids, {"too many": Reading(1, 8, n_streams=4)})


def test_errors_name_the_fix(tiny_eager):
    with pytest.raises(ValueError, match="max_position_embeddings"):
        stream_nll(tiny_eager, torch.zeros(1, 80, dtype=torch.long))
    with pytest.raises(ValueError, match="window"):
        SinkCache(tiny_eager, n_sink=4, window=0)
