"""Streaming speed: a sink cache (StreamingLLM) vs a sliding window that recomputes, per cache size.

For every new token, the sink cache runs the model on that token alone against its full cache
(4 sinks + the most recent tokens, positions within the cache); the sliding window with
re-computation runs it on the whole window of the last ``cache size`` tokens again (Xiao et al.
2023 report up to 22.2x on a GPU for Llama-2). SmolLM2-135M-Instruct, float32, sdpa, one stream
of tiny_shakespeare. The two run interleaved (``llm_exploration.sinks.streaming.streaming_speed``),
wall-clock medians, printed as tokens/s and ratios. Run:

    LLM_EXPLORATION_DATA_MIRROR=... python benchmarks/sink_streaming_speed.py \
        [--sizes 256 512 1024 2048] [--repeats 5] [--decode-tokens 8]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # before torch: spinning threads lose to a busy neighbour
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import torch

from llm_exploration.models import load_causal_lm
from llm_exploration.sinks.streaming import streaming_speed
from llm_exploration.sinks.texts import shakespeare_streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-tokens", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model, tok = load_causal_lm(args.model)
    model.eval()
    length = max(args.sizes) + args.repeats * args.decode_tokens
    (ids,) = shakespeare_streams(tok, 1, length, seed=0)
    table = streaming_speed(
        model, ids[None], args.sizes, n_sink=4, decode_tokens=args.decode_tokens,
        repeats=args.repeats,
    )  # fmt: skip
    pd.set_option("display.width", 200)
    print(
        f"{args.model}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.repeats} interleaved repeats, {args.decode_tokens} decoded tokens each (medians)"
    )
    print(table.round(4).to_string(index=False))
    best = table["speed-up"].max()
    print(f"\nsink cache / recompute speed-up: {table['speed-up'].min():.1f}x - {best:.1f}x "
          f"(paper: up to 22.2x on a GPU)")  # fmt: skip


if __name__ == "__main__":
    main()
