"""Dense SDPA vs masked SDPA vs the banded kernel (and FlexAttention): time and peak memory.

One attention layer (all-MiniLM-L6-v2's 12 heads x 32 dims) and the whole 6-layer encoder, one
sequence, window 64 plus [CLS]/[SEP] as global tokens, forward (no grad) and forward+backward.
all-MiniLM-L6-v2 has only 512 position embeddings, so the encoder is a randomly initialised
BertModel with its config and enough positions (timing does not depend on the weights).
Variants run interleaved; times are medians of wall and of process CPU time (on a shared
machine CPU time is the steadier of the two). Peak memory is the maximum of live tensor bytes
in PyTorch's allocation/free record. FlexAttention (one layer, forward only: it has no CPU
backward here) is compiled once per shape; its compile time is reported. Run:

    OMP_NUM_THREADS=2 python benchmarks/sparse_attention.py [--lengths 1024 4096] [--repeats 5] [--flex]

Goals (the sparse-attention issue): at 4096 tokens, whole encoder, forward+backward, the banded
kernel at least 3x faster than dense SDPA and with no more peak memory.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # before torch: a busy neighbour slows spinning threads
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import torch

from llm_exploration.sparse.speed import flex_layer, layer_variants, measure, ratios, speed_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--scopes", nargs="+", default=["layer", "encoder"], choices=["layer", "encoder"]
    )
    parser.add_argument("--encoder-max-length", type=int, default=None)
    parser.add_argument(
        "--flex", action="store_true", help="also time FlexAttention (compiles per length)"
    )
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, window {args.window}, "
        f"{args.repeats} interleaved repeats (median); encoder: random-init BertModel with "
        "all-MiniLM-L6-v2's config and extended position embeddings"
    )
    table = speed_table(
        args.lengths, args.window, args.repeats, tuple(args.scopes), args.encoder_max_length
    )
    for baseline in ("dense", "masked"):
        print(
            f"\n{baseline} / sparse (speedup > 1: sparse faster; memory_ratio > 1: sparse smaller)"
        )
        print(ratios(table, baseline).round(3).to_string(index=False))

    if args.flex:
        print("\nFlexAttention, one layer, forward only (compiled; the first call compiles)")
        rows = []
        for length in args.lengths:
            flex, compile_s = flex_layer(length, args.window)
            variants = {**layer_variants(length, args.window), "flex": flex}
            for row in measure(variants, args.repeats, passes=("forward",)):
                rows.append({"length": length, "compile_s": compile_s, **row})
        flex_table = pd.DataFrame(rows)
        wide = flex_table.pivot_table(
            index=["length", "compile_s"], columns="variant", values="cpu_seconds"
        )
        print(
            (1e3 * wide)
            .round(1)
            .rename(columns=lambda c: f"{c}_cpu_ms")
            .reset_index()
            .to_string(index=False)
        )

    longest = table["length"].max()
    r = ratios(table).set_index(["scope", "pass", "length"])
    print(
        f"\nGoals at {longest} tokens, whole encoder, forward+backward: >= 3x faster, <= dense peak memory"
    )
    for (scope, pass_name, length), row in r.iterrows():
        if length == longest:
            fast = "met" if min(row["speedup"], row["cpu_speedup"]) >= 3 else "NOT met"
            small = "met" if row["sparse_mib"] <= row["dense_mib"] else "NOT met"
            print(
                f"  {scope:8s} {pass_name:17s} speedup wall {row['speedup']:.2f}x, CPU {row['cpu_speedup']:.2f}x "
                f"({fast}); peak memory {row['sparse_mib']:.2f} vs dense {row['dense_mib']:.2f} MiB ({small})"
            )


if __name__ == "__main__":
    main()
