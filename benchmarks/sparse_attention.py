"""Dense SDPA vs masked SDPA vs the banded sparse path: time and peak memory, printed as ratios.

One attention layer (all-MiniLM-L6-v2's 12 heads x 32 dims) and the whole 6-layer encoder, one
sequence, window 64 plus [CLS]/[SEP] as global tokens, forward (no grad) and forward+backward.
all-MiniLM-L6-v2 has only 512 position embeddings, so the encoder is a randomly initialised
BertModel with its config and enough positions (timing does not depend on the weights).
Variants run interleaved; times are medians. Run:

    OMP_NUM_THREADS=2 python benchmarks/sparse_attention.py [--lengths 256 4096] [--repeats 5]
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

from llm_exploration.sparse.speed import ratios, speed_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--scopes", nargs="+", default=["layer", "encoder"], choices=["layer", "encoder"]
    )
    parser.add_argument("--encoder-max-length", type=int, default=None)
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
        print(ratios(table, baseline).round(2).to_string(index=False))
    longest = table["length"].max()
    r = ratios(table).set_index(["scope", "pass", "length"])
    print(f"\nGoal at {longest} tokens: sparse >= 2x faster than dense SDPA")
    for (scope, pass_name, length), row in r.iterrows():
        if length == longest:
            verdict = "met" if row["speedup"] >= 2 else "NOT met"
            print(
                f"  {scope:8s} {pass_name:17s} speedup {row['speedup']:.2f}x ({verdict}), "
                f"peak memory dense/sparse {row['memory_ratio']:.2f}"
            )


if __name__ == "__main__":
    main()
