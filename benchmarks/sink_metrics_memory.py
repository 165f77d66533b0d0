"""Sink metrics layer by layer (forward hooks) vs ``output_attentions=True`` over all layers.

Both variants compute the same statistics (per-key alpha, class shares, hidden-state norms, see
``llm_exploration.sinks.measure``) for SmolLM2-135M-Instruct (eager attention, float32) on
a token stream of ``--length`` tokens of tiny_shakespeare:

- ``hooks``: ``measure_batch``, each layer's attention reduced inside its forward hook and freed;
- ``all_at_once``: ``output_attentions=True, output_hidden_states=True``, then the same reduction
  (``reduce_attention``) applied to every layer's returned tensor.

How memory is measured: every run is a fresh subprocess. After the model is loaded, the
input prepared and one warm-up forward pass run on a 32-token prefix, the child resets the kernel's peak-RSS counter (writes 5 to
/proc/self/clear_refs, which resets VmHWM), records the current RSS, runs the variant once, and
reads VmHWM from /proc/self/status. Peak memory = VmHWM - RSS before the run: the largest extra
resident memory the computation needed, as the OS saw it (no tracemalloc, which does not see
PyTorch's allocations). Runs alternate between the variants (A B A B ...) so that load from
other processes hits both alike; the table reports medians. The numbers of the two variants
are compared exactly (``torch.equal``) and with a tolerance.

Run: ``LLM_EXPLORATION_DATA_MIRROR=... python benchmarks/sink_metrics_memory.py [--length 1024]
[--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("hooks", "all_at_once")


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (this benchmark needs Linux).")


def child(variant: str, length: int, out: Path) -> None:
    """Load the model, run one variant once, write its numbers and peak memory to ``out``."""
    import gc

    import torch

    from llm_exploration.models import load_causal_lm
    from llm_exploration.sinks.measure import (
        TOKEN_CLASSES,
        capture_modules,
        is_causal,
        measure_batch,
        reduce_attention,
        token_classes,
        visibility,
    )
    from llm_exploration.sinks.texts import shakespeare_streams

    torch.set_grad_enabled(False)
    model, tok = load_causal_lm("smollm2-135m-instruct", attn_implementation="eager")
    model.eval()
    ids = shakespeare_streams(tok, 1, length, seed=0)
    mask = torch.ones_like(ids)
    classes = token_classes(tok, ids[0].tolist())
    onehot = torch.nn.functional.one_hot(classes, len(TOKEN_CLASSES)).float()[None]
    causal = is_causal(model)
    n_layers = len(capture_modules(model, "attentions"))
    # Warm-up on a short prefix, so one-time allocations (kernel workspaces, caches) are not
    # counted as the variant's peak.
    model.base_model(input_ids=ids[:, :32])
    gc.collect()

    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = rss_kib("VmRSS")
    start = time.perf_counter()
    if variant == "hooks":
        alpha, share, norm = measure_batch(model, ids, mask, onehot, causal)
    else:
        output = model.base_model(
            input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True
        )
        visible = visibility(mask, causal)
        reduced = [reduce_attention(a, visible, onehot) for a in output.attentions]
        alpha = torch.stack([a for a, _ in reduced], 1)
        share = torch.stack([s for _, s in reduced], 1)
        # hidden_states[0] is the embedding output; [1:] the layer outputs (the last one after
        # the final norm in some models, so it is compared separately below).
        norm = torch.stack([h.float().norm(dim=-1) for h in output.hidden_states[1:]], 1)
        del output, reduced
    seconds = time.perf_counter() - start
    peak = rss_kib("VmHWM")
    assert alpha.shape[1] == n_layers
    torch.save({"alpha": alpha, "share": share, "norm": norm}, out.with_suffix(".pt"))
    out.write_text(json.dumps({"peak_mib": (peak - before) / 1024, "seconds": seconds}))


def compare(a: dict, b: dict) -> dict:
    import torch

    result = {}
    for key in ("alpha", "share", "norm"):
        x, y = a[key], b[key]
        if key == "norm":  # last layer: raw block output (hooks) vs maybe final-normed state
            x, y = x[:, :-1], y[:, :-1]
        diff = (x - y).abs().nan_to_num(0).max().item()
        result[key] = {
            "equal": bool(torch.equal(x.nan_to_num(-1), y.nan_to_num(-1))),
            "max_abs_diff": diff,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.length, args.out)
        return

    import torch

    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    numbers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for variant in VARIANTS:
                out = Path(tmp) / f"{variant}-{r}.json"
                cmd = [sys.executable, __file__, "--child", variant, "--length", str(args.length),
                       "--out", str(out)]  # fmt: skip
                subprocess.run(cmd, check=True, env=env)
                runs[variant].append(json.loads(out.read_text()))
                numbers[variant] = torch.load(out.with_suffix(".pt"))
                print(f"run {r + 1} {variant:12s} {runs[variant][-1]}", flush=True)
        check = compare(numbers["hooks"], numbers["all_at_once"])

    med = {
        v: {k: statistics.median(x[k] for x in runs[v]) for k in ("peak_mib", "seconds")}
        for v in VARIANTS
    }
    print(f"\nSmolLM2-135M-Instruct, eager, float32, 1 sequence of {args.length} tokens, "
          f"{args.repeats} fresh subprocesses per variant, interleaved; medians.")  # fmt: skip
    print(
        "Peak memory = VmHWM - RSS just before the computation (VmHWM reset via /proc/self/clear_refs)."
    )
    print(f"{'variant':14s} {'peak extra RSS (MiB)':>22s} {'(min-max)':>16s} {'time (s)':>10s}")
    for v in VARIANTS:
        peaks = [x["peak_mib"] for x in runs[v]]
        spread = f"({min(peaks):.0f}-{max(peaks):.0f})"
        print(f"{v:14s} {med[v]['peak_mib']:22.1f} {spread:>16s} {med[v]['seconds']:10.2f}")
    ratio = med["all_at_once"]["peak_mib"] / med["hooks"]["peak_mib"]
    print(f"peak memory ratio all_at_once / hooks: {ratio:.1f}x (goal >= 3x)")
    print(
        f"time ratio all_at_once / hooks: {med['all_at_once']['seconds'] / med['hooks']['seconds']:.2f}x"
    )
    print("identical numbers:", json.dumps(check))
    same = all(c["max_abs_diff"] < 1e-6 for c in check.values())
    print("RESULT:", "PASS" if ratio >= 3 and same else "FAIL")


if __name__ == "__main__":
    main()
