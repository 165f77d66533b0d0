"""What the GRPO engine's two speed options buy on CPU, measured side by side.

1. Generation: ``torch.multinomial`` sampling vs ``InverseCDFSampler`` (``fast_sampling``), each
   with and without sharing the prompt's KV cache across its G samples (``reuse_prompt_cache``).
   Reported as seconds per decoding step (the rows of a batch decode in lockstep).
2. The training forward + backward of one micro-batch: every row re-encoding its prompt vs each
   prompt encoded once and its cache repeated (``per_token_logps(group_size=G)``).

Variants run interleaved in one process; medians and ratios are printed.
Run: OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python benchmarks/grpo_engine_options.py
"""

from __future__ import annotations

import statistics
import time

import torch

from llm_exploration.grpo.data import apply_template, build_messages, load_rows
from llm_exploration.grpo.rollout import generate, per_token_logps, tokenize_prompts
from llm_exploration.models import load_causal_lm

EASY = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}


def main(reps: int = 3, prompts: int = 2, G: int = 4, max_len: int = 32) -> None:
    model, tok = load_causal_lm()
    rows = load_rows("basic_arithmetic", "train", prompts, 0, EASY)
    ids, mask = tokenize_prompts(tok, [apply_template(tok, build_messages(r["question"])) for r in rows])
    print(f"{prompts} prompts x {G} samples, prompt length {ids.size(1)} tokens, up to {max_len} new tokens, "
          f"{torch.get_num_threads()} threads")
    gen_variants = {(fast, reuse): [] for fast in (False, True) for reuse in (False, True)}
    train_variants = {1: [], G: []}
    rollout = None
    for rep in range(reps):
        for (fast, reuse), times in gen_variants.items():
            torch.manual_seed(rep)
            t = time.perf_counter()
            r = generate(model, tok, ids, mask, G, max_completion_length=max_len, fast_sampling=fast,
                         reuse_prompt_cache=reuse)
            times.append((time.perf_counter() - t) / r.completion_ids.size(1))
            rollout = r
        for group, times in train_variants.items():
            model.zero_grad()
            t = time.perf_counter()
            lp, _ = per_token_logps(model, rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                    rollout.completion_mask, group_size=group)
            (lp * rollout.completion_mask).sum().backward()
            times.append(time.perf_counter() - t)
    base = statistics.median(gen_variants[(False, False)])
    print("\ngeneration, seconds per decoding step (median of", reps, "):")
    for (fast, reuse), times in gen_variants.items():
        med = statistics.median(times)
        print(f"  sampler={'inverse-cdf' if fast else 'multinomial':12s} prompt-cache-reuse={str(reuse):5s} "
              f"{med:.4f} s   speed-up x{base / med:.2f}")
    plain, shared = statistics.median(train_variants[1]), statistics.median(train_variants[G])
    print(f"\ntraining forward+backward of {prompts * G} completions: prompt per row {plain:.2f} s, "
          f"prompt once per group {shared:.2f} s, speed-up x{plain / shared:.2f}")


if __name__ == "__main__":
    main()
