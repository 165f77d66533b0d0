"""A rolling KV cache with attention sinks (StreamingLLM, Xiao et al. 2023) on transformers' Cache API.

The cache of every attention layer keeps the first ``n_sink`` tokens of the stream (the attention
sinks) and the ``window`` most recent ones. Positions are assigned *within the cache*, as the paper
does: the model numbers a new token by the number of cached tokens (``get_seq_length``), so a
query never sits further than ``n_sink + window`` positions from any key, however long the stream.

Rotary embeddings (RoPE) are applied by the model before a key reaches the cache, so a cached key
carries the position it had when it arrived. When tokens are evicted, the recent keys that stay
move ``drop`` slots to the left; they are rotated back by ``drop`` positions (one rotation, the
same for every kept key: :func:`rotate_keys`) so that every key again carries its slot. The
sink keys stay where they are. This is the re-rotation of transformers' former ``SinkCache``
(removed in v4.53), here as a :class:`~transformers.cache_utils.DynamicLayer` subclass;
StreamingLLM's reference code instead caches keys before rotation and rotates the whole cache at
every step, which gives the same keys.

Eviction is lazy: a forward pass appends its chunk to the cache and attends to everything there;
the next ``update`` first trims the cache back to ``n_sink + window`` tokens. That is when
StreamingLLM's evaluation trims it too (after each step), so a query sees the sinks, the
``window`` tokens before it and itself.

A chunk of several tokens sees the whole cache plus its own prefix, which is more than a token
seen one at a time would (the oldest recent tokens are still there for the chunk's later
queries). :meth:`SinkCache.chunk_mask` gives the additive mask that restores the token-by-token
view: query ``q`` (stream index) sees key ``k`` iff ``k <= q`` and (``k < n_sink`` or
``q - k <= window``). What a chunk cannot restore is the distance to the sinks: query ``j`` of a
chunk sits ``j`` positions further from them than it would one token at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import PreTrainedModel
from transformers.cache_utils import Cache, DynamicLayer


def rotate_half(x: Tensor) -> Tensor:
    """transformers' RoPE convention: ``(x1, x2) -> (-x2, x1)`` on the two halves of the last dim."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate_keys(keys: Tensor, shift: int, inv_freq: Tensor) -> Tensor:
    """Move RoPE-rotated ``keys [..., head_dim]`` by ``shift`` positions (negative: earlier).

    RoPE rotates each pair of dimensions by ``position * inv_freq``; rotations compose, so a key
    rotated at position ``p`` becomes the key rotated at ``p + shift`` after one more rotation by
    ``shift * inv_freq`` (angles computed in float64).
    """
    angle = shift * inv_freq.double()
    emb = torch.cat((angle, angle)).to(keys.device)
    cos, sin = emb.cos().to(keys.dtype), emb.sin().to(keys.dtype)
    return keys * cos + rotate_half(keys) * sin


def streaming_visibility(
    query_index: Tensor, key_index: Tensor, n_sink: int, window: int
) -> Tensor:
    """``[Q, K]`` bool: the query at stream index q sees the key at stream index k (token-by-token)."""
    q, k = query_index[:, None], key_index[None, :]
    return (k <= q) & ((k < n_sink) | (q - k <= window))


class SinkCacheLayer(DynamicLayer):
    """One attention layer's cache: ``n_sink`` first tokens + the ``window`` most recent ones."""

    is_croppable = False

    def __init__(self, n_sink: int, window: int, inv_freq: Tensor) -> None:
        super().__init__()
        self.n_sink, self.window, self.inv_freq = n_sink, window, inv_freq
        self.seen = 0  # tokens this layer has received: the stream index of the next one

    @property
    def capacity(self) -> int:
        return self.n_sink + self.window

    def _evict(self) -> None:
        drop = self.keys.shape[-2] - self.capacity
        if drop <= 0:
            return
        sink_k, sink_v = self.keys[..., : self.n_sink, :], self.values[..., : self.n_sink, :]
        keep_k = self.keys[..., self.n_sink + drop :, :]
        keep_v = self.values[..., self.n_sink + drop :, :]
        self.keys = torch.cat((sink_k, rotate_keys(keep_k, -drop, self.inv_freq)), dim=-2)
        self.values = torch.cat((sink_v, keep_v), dim=-2)

    def update(
        self, key_states: Tensor, value_states: Tensor, *args, **kwargs
    ) -> tuple[Tensor, Tensor]:
        """Trim to capacity (re-rotating the kept recent keys), append the new states, return all."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        else:
            self._evict()
        self.keys = torch.cat((self.keys, key_states), dim=-2)
        self.values = torch.cat((self.values, value_states), dim=-2)
        self.seen += key_states.shape[-2]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        """Cached tokens once the pending eviction is done: the slot of the next token."""
        if not self.is_initialized or self.keys.numel() == 0:
            return 0
        return min(self.keys.shape[-2], self.capacity)

    def get_max_length(self) -> int:
        return self.capacity

    def key_indices(self, query_length: int) -> Tensor:
        """Stream indices of the keys the next update returns (cache after trimming + the chunk)."""
        cached = self.get_seq_length()
        n_sink = min(self.n_sink, cached)
        recent = torch.arange(self.seen - (cached - n_sink), self.seen)
        new = torch.arange(self.seen, self.seen + query_length)
        return torch.cat((torch.arange(n_sink), recent, new))

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("A sink cache evicts on its own; it cannot be cropped.")


class SinkCache(Cache):
    """StreamingLLM's rolling cache for every layer of ``model`` (a RoPE decoder: Llama, Qwen2, ...).

    ``n_sink`` first tokens are kept for good; ``window`` is how many previous tokens a query sees
    besides them (the paper's "4+1020" cache is ``n_sink=4, window=1020``).
    """

    def __init__(self, model: PreTrainedModel, n_sink: int, window: int) -> None:
        if n_sink < 0 or window < 1:
            raise ValueError(
                f"Need n_sink >= 0 and window >= 1, got n_sink={n_sink}, window={window}."
            )
        rotary = getattr(model.base_model, "rotary_emb", None)
        if rotary is None or not hasattr(rotary, "inv_freq"):
            raise ValueError(
                f"{type(model).__name__} has no rotary embedding (base_model.rotary_emb): the sink "
                "cache re-rotates keys, so it needs a RoPE decoder such as Llama or Qwen2."
            )
        if getattr(rotary, "attention_scaling", 1.0) != 1.0:
            raise ValueError(
                "This model's RoPE scales cos/sin (attention_scaling != 1); re-rotating its cached "
                "keys is not supported. Use a model with plain or linearly scaled RoPE."
            )
        config = model.config.get_text_config()
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        inv_freq = rotary.inv_freq.detach().float().cpu()
        if 2 * len(inv_freq) != head_dim:
            raise ValueError(
                f"RoPE covers {2 * len(inv_freq)} of {head_dim} head dimensions (partial rotary): "
                "not supported by this cache."
            )
        super().__init__(
            layers=[
                SinkCacheLayer(n_sink, window, inv_freq) for _ in range(config.num_hidden_layers)
            ]
        )
        self.n_sink, self.window = n_sink, window

    @property
    def seen(self) -> int:
        """Tokens streamed through the cache so far."""
        return self.layers[0].seen

    def chunk_mask(self, query_length: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Additive mask ``[1, 1, query_length, keys]`` for the next chunk: each of its queries sees
        what it would see if the chunk were streamed one token at a time (module docstring)."""
        keys = self.layers[0].key_indices(query_length)
        queries = torch.arange(self.seen, self.seen + query_length)
        allowed = streaming_visibility(queries, keys, self.n_sink, self.window)
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        return mask[None, None]
