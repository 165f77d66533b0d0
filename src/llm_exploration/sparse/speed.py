"""Time and peak memory of dense SDPA vs the banded sparse path, one layer or a whole encoder.

Shared by ``benchmarks/sparse_attention.py`` and the sparse-attention post. Variants are run
interleaved (dense, sparse, dense, sparse, ...) and summarised by their median, because on a
shared machine a neighbour's load drifts over time. Peak memory is counted by PyTorch's
``MemTracker`` (every tensor allocated during the call, from PyTorch's own dispatcher), so it
is exact and does not depend on the load.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch.distributed._tools.mem_tracker import MemTracker
from transformers import BertConfig, BertModel

from llm_exploration.models import embedded_model_path
from llm_exploration.sparse.attention import banded_attention, use_sparse_attention
from llm_exploration.sparse.masks import additive_mask, allowed, schedule

PASSES = ("forward", "forward+backward")
VARIANTS = ("dense", "masked", "sparse")
CLS, SEP = 101, 102  # BERT uncased ids, the global tokens of the random inputs


def layer_variants(
    length: int, window: int, heads: int = 12, head_dim: int = 32
) -> dict[str, Callable]:
    """One attention layer (MiniLM's 12 heads x 32 dims): ``{variant: f}`` for :data:`VARIANTS`.

    ``f(train)`` runs the attention on random q/k/v of one sequence with [CLS] and [SEP] global;
    with ``train`` it also backpropagates. ``dense`` is plain SDPA (no mask: the fastest dense
    call), ``masked`` is SDPA with the window+global pattern as a float mask (the same result as
    ``sparse``, at dense cost), ``sparse`` is :func:`banded_attention`.
    """
    q, k, v = (torch.randn(1, heads, length, head_dim, requires_grad=True) for _ in range(3))
    valid = torch.ones(1, length, dtype=torch.bool)
    glob = torch.zeros(1, length, dtype=torch.bool)
    glob[:, [0, -1]] = True
    kernels = {
        "dense": lambda: F.scaled_dot_product_attention(q, k, v),
        "masked": lambda: (
            F.scaled_dot_product_attention(  # the mask is built in the call, as in a model
                q, k, v, attn_mask=additive_mask(allowed(valid, "window+global", window, glob))
            )
        ),
        "sparse": lambda: banded_attention(q, k, v, window, valid, glob),
    }
    return {name: _runner(kernel, [q, k, v]) for name, kernel in kernels.items()}


def long_encoder_config(max_length: int) -> BertConfig:
    """all-MiniLM-L6-v2's config with enough position embeddings for ``max_length`` tokens."""
    config = BertConfig.from_pretrained(embedded_model_path("all-minilm-l6-v2"))
    config.max_position_embeddings = max(config.max_position_embeddings, max_length)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    return config


def encoder_variants(length: int, window: int, config: BertConfig) -> dict[str, Callable]:
    """The whole encoder, randomly initialised (MiniLM has only 512 positions), per variant.

    ``dense`` is transformers' own ``sdpa`` BERT; ``masked`` and ``sparse`` are the same weights
    switched to the all-``window+global`` schedule on the ``sdpa`` and ``banded`` backends.
    """
    torch.manual_seed(0)
    dense = BertModel(copy.deepcopy(config), add_pooling_layer=False)  # own configs: the schedule
    dense.set_attn_implementation("sdpa")  # is stored on the config
    kinds = schedule("sparse", config.num_hidden_layers)
    models = {"dense": dense}
    for name, backend in (("masked", "sdpa"), ("sparse", "banded")):
        models[name] = BertModel(copy.deepcopy(config), add_pooling_layer=False)
        models[name].load_state_dict(dense.state_dict())
        use_sparse_attention(models[name], kinds, window, [CLS, SEP], backend=backend)
    ids = torch.randint(1000, config.vocab_size, (1, length))
    ids[:, 0], ids[:, -1] = CLS, SEP
    mask = torch.ones_like(ids)
    return {
        name: _runner(
            lambda m=model: m(input_ids=ids, attention_mask=mask).last_hidden_state,
            list(model.parameters()),
        )
        for name, model in models.items()
    }


def _runner(
    forward: Callable[[], torch.Tensor], params: list[torch.Tensor]
) -> Callable[[bool], None]:
    def run(train: bool) -> None:
        if not train:
            with torch.no_grad():
                forward()
            return
        forward().square().mean().backward()
        for p in params:
            p.grad = None

    return run


def peak_mib(fn: Callable[[], None]) -> float:
    """Peak MiB of tensors alive during ``fn()``, beyond those alive before it."""
    tracker = MemTracker()
    with tracker:
        fn()
    return tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"] / 2**20


def measure(variants: dict[str, Callable[[bool], None]], repeats: int) -> list[dict]:
    """Median seconds (interleaved repeats after one warm-up) and peak MiB, per variant and pass."""
    rows = []
    for train, pass_name in ((False, "forward"), (True, "forward+backward")):
        times: dict[str, list[float]] = {name: [] for name in variants}
        for fn in variants.values():
            fn(train)  # warm-up
        for _ in range(repeats):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn(train)
                times[name].append(time.perf_counter() - start)
        for name, fn in variants.items():
            rows.append(
                {
                    "pass": pass_name,
                    "variant": name,
                    "seconds": statistics.median(times[name]),
                    "peak_mib": peak_mib(lambda fn=fn, train=train: fn(train)),
                }
            )
    return rows


def speed_table(
    lengths: list[int],
    window: int = 64,
    repeats: int = 5,
    scopes: tuple[str, ...] = ("layer", "encoder"),
    encoder_max_length: int | None = None,
) -> pd.DataFrame:
    """Rows: scope ("layer"/"encoder"), length, pass, variant, seconds, peak_mib.

    ``encoder_max_length`` caps the encoder's lengths (it is the slow part).
    """
    config = long_encoder_config(max(lengths))
    rows = []
    for scope in scopes:
        for length in lengths:
            if scope == "encoder":
                if encoder_max_length is not None and length > encoder_max_length:
                    continue
                variants = encoder_variants(length, window, config)
            else:
                variants = layer_variants(length, window)
            rows += [
                {"scope": scope, "length": length, **row} for row in measure(variants, repeats)
            ]
    return pd.DataFrame(rows)


def ratios(table: pd.DataFrame, baseline: str = "dense") -> pd.DataFrame:
    """``baseline`` / sparse, per scope, pass and length: >1 means sparse is faster or smaller."""
    wide = table.pivot_table(
        index=["scope", "pass", "length"], columns="variant", values=["seconds", "peak_mib"]
    )
    sec, mib = wide["seconds"], wide["peak_mib"]
    return pd.DataFrame(
        {
            f"{baseline}_ms": 1e3 * sec[baseline],
            "sparse_ms": 1e3 * sec["sparse"],
            "speedup": sec[baseline] / sec["sparse"],
            f"{baseline}_mib": mib[baseline],
            "sparse_mib": mib["sparse"],
            "memory_ratio": mib[baseline] / mib["sparse"],
        }
    ).reset_index()
