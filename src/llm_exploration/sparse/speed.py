"""Time and peak memory of dense attention vs the banded sparse path, one layer or a whole encoder.

Shared by ``benchmarks/sparse_attention.py`` and the sparse-attention post. Variants are run
interleaved (dense, sparse, dense, sparse, ...) and summarised by their median, because on a
shared machine a neighbour's load drifts over time; both wall time and the process's CPU time
are kept. Peak memory comes from PyTorch's profiler, which records every allocation and every
free of the CPU allocator in order: the running sum's maximum is the peak of tensor memory
allocated during the call, exact and independent of the load.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator

import pandas as pd
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from transformers import BertConfig, BertModel

from llm_exploration.models import embedded_model_path
from llm_exploration.sparse.attention import Backend, use_sparse_attention
from llm_exploration.sparse.kernel import banded_attention
from llm_exploration.sparse.masks import additive_mask, allowed, schedule

PASSES = ("forward", "forward+backward")
VARIANTS = ("dense", "masked", "sparse")
CLS, SEP = 101, 102  # BERT uncased ids, the global tokens of the random inputs
Runner = Callable[[bool], None]  # run(train): forward, and backward too when train


@contextlib.contextmanager
def _silent_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ side prints a line when it starts
    and stops, which would otherwise land in a notebook's output."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_mib(fn: Callable[[], None]) -> float:
    """Peak MiB of tensors allocated during ``fn()`` and alive at once (beyond those before it)."""
    with _silent_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage  # allocations > 0, frees ("[memory]") < 0
        peak = max(peak, current)
    return peak / 2**20


def _runner(forward: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Runner:
    def run(train: bool) -> None:
        if not train:
            with torch.no_grad():
                forward()
            return
        forward().square().mean().backward()
        for p in params:
            p.grad = None

    return run


def layer_variants(
    length: int, window: int, heads: int = 12, head_dim: int = 32
) -> dict[str, Runner]:
    """One attention layer (MiniLM's 12 heads x 32 dims): ``{variant: run}`` for :data:`VARIANTS`.

    ``run(train)`` runs the attention on random q/k/v of one sequence with [CLS] and [SEP]
    global; with ``train`` it also backpropagates. ``dense`` is plain SDPA (no mask: the fastest
    dense call), ``masked`` is SDPA with the window+global pattern as a float mask (the same
    result as ``sparse``, at dense cost), ``sparse`` is :func:`banded_attention`.
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


def flex_layer(
    length: int, window: int, heads: int = 12, head_dim: int = 32
) -> tuple[Runner, float]:
    """FlexAttention (compiled, forward only) with the window+global pattern, and its compile time.

    Returns ``(run, compile_seconds)``; ``compile_seconds`` is the wall time of the first call
    (``torch.compile`` plus the block mask), paid again for every new shape.
    """
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    q, k, v = (torch.randn(1, heads, length, head_dim) for _ in range(3))
    last = length - 1

    def window_global(b, h, qi, ki):
        return ((qi - ki).abs() <= window) | (qi == 0) | (ki == 0) | (qi == last) | (ki == last)

    start = time.perf_counter()
    block_mask = create_block_mask(window_global, 1, None, length, length, device="cpu")
    compiled = torch.compile(flex_attention)
    with torch.no_grad():
        compiled(q, k, v, block_mask=block_mask)
    compile_seconds = time.perf_counter() - start

    def run(train: bool) -> None:
        if train:
            raise NotImplementedError("FlexAttention on CPU has no backward pass here.")
        with torch.no_grad():
            compiled(q, k, v, block_mask=block_mask)

    return run, compile_seconds


def long_encoder_config(max_length: int) -> BertConfig:
    """all-MiniLM-L6-v2's config with enough position embeddings for ``max_length`` tokens."""
    config = BertConfig.from_pretrained(embedded_model_path("all-minilm-l6-v2"))
    config.max_position_embeddings = max(config.max_position_embeddings, max_length)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    return config


def encoder_runners(
    model: BertModel,
    setups: dict[str, tuple[str, Backend]],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    window: int,
    global_ids: list[int],
) -> dict[str, Runner]:
    """The whole encoder on the same inputs under each ``{name: (schedule, backend)}``.

    ``"dense"`` with backend ``"sdpa"`` is transformers' own SDPA BERT; every other setup is a
    copy of the same weights switched with :func:`use_sparse_attention`. Dropout is off.
    """
    models = {}
    for name, (sched, backend) in setups.items():
        m = copy.deepcopy(model).eval()  # own config: the schedule is stored on it
        if sched == "dense" and backend == "sdpa":
            m.set_attn_implementation("sdpa")
        else:
            kinds = schedule(sched, m.config.num_hidden_layers)
            use_sparse_attention(m, kinds, window, global_ids, backend=backend)
        models[name] = m
    return {
        name: _runner(
            lambda m=m: m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,
            list(m.parameters()),
        )
        for name, m in models.items()
    }


def encoder_variants(length: int, window: int, config: BertConfig) -> dict[str, Runner]:
    """The whole encoder, randomly initialised (MiniLM has only 512 positions), per variant.

    ``dense`` is transformers' own ``sdpa`` BERT; ``masked`` and ``sparse`` are the same weights
    switched to the all-``window+global`` schedule on the ``sdpa`` and ``banded`` backends.
    """
    torch.manual_seed(0)
    model = BertModel(copy.deepcopy(config), add_pooling_layer=False)
    ids = torch.randint(1000, config.vocab_size, (1, length))
    ids[:, 0], ids[:, -1] = CLS, SEP
    setups = {
        "dense": ("dense", "sdpa"),
        "masked": ("window+global", "sdpa"),
        "sparse": ("window+global", "banded"),
    }
    return encoder_runners(model, setups, ids, torch.ones_like(ids), window, [CLS, SEP])  # type: ignore[arg-type]


def measure(
    variants: dict[str, Runner], repeats: int, passes: tuple[str, ...] = PASSES
) -> list[dict]:
    """Median wall and CPU seconds (interleaved repeats after one warm-up), the CPU seconds' min
    and max over repeats, and peak MiB."""
    rows = []
    for pass_name in passes:
        train = pass_name == "forward+backward"
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for fn in variants.values():
            fn(train)  # warm-up
        for _ in range(repeats):
            for name, fn in variants.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                fn(train)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        for name, fn in variants.items():
            rows.append(
                {
                    "pass": pass_name,
                    "variant": name,
                    "seconds": statistics.median(wall[name]),
                    "cpu_seconds": statistics.median(cpu[name]),
                    "cpu_min": min(cpu[name]),
                    "cpu_max": max(cpu[name]),
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
    """Rows: scope ("layer"/"encoder"), length, pass, variant, seconds, cpu_seconds, peak_mib.

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


def ratios(table: pd.DataFrame, baseline: str = "dense", sparse: str = "sparse") -> pd.DataFrame:
    """``baseline`` / ``sparse`` per scope, pass and length: >1 means sparse is faster or smaller."""
    keys = [c for c in ("scope", "pass", "length") if c in table.columns]
    wide = table.pivot_table(
        index=keys, columns="variant", values=["seconds", "cpu_seconds", "peak_mib"]
    )
    sec, cpu, mib = wide["seconds"], wide["cpu_seconds"], wide["peak_mib"]
    return pd.DataFrame(
        {
            f"{baseline}_ms": 1e3 * sec[baseline],
            f"{sparse}_ms": 1e3 * sec[sparse],
            "speedup": sec[baseline] / sec[sparse],
            "cpu_speedup": cpu[baseline] / cpu[sparse],
            f"{baseline}_mib": mib[baseline],
            f"{sparse}_mib": mib[sparse],
            "memory_ratio": mib[baseline] / mib[sparse],
        }
    ).reset_index()
