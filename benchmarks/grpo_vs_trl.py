"""The engine versus TRL's GRPOTrainer: same model, prompts, G, completion length, sampling,
dtype, loss and number of steps; per-step wall time, completion tokens/s, peak memory, reward.

    python benchmarks/grpo_vs_trl.py                  # cpu defaults: SmolLM2-135M, 2 rounds
    python benchmarks/grpo_vs_trl.py --steps 4 --rounds 1 --max-completion-length 16   # quick
    python benchmarks/grpo_vs_trl.py --model Qwen/Qwen2.5-0.5B-Instruct --dataset openai/gsm8k

Each run is a fresh subprocess (so its peak memory is its own and neither trainer inherits
the other's warm caches), and runs alternate between the trainers round by round (ours, TRL,
TRL, ours, ...) so that a busy neighbour on a shared machine slows both alike. Both use the
same thread settings (``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY=PASSIVE``). A step's wall time is
measured the same way for both (``llm_exploration.grpo.compare``: from the end of the
previous optimizer step to the end of this one, generation included); the first step of each
run is dropped as warm-up. Reported: medians over the remaining steps of all rounds, and the
ratio ours / TRL (> 1 means ours is faster for throughput, slower for time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def worker(args: argparse.Namespace) -> None:
    """Train one run and print its summary as one JSON line."""
    import torch

    from llm_exploration.grpo.compare import train_ours, train_trl

    torch.set_num_threads(args.threads)
    cfg = config_from_args(args)
    t0 = time.perf_counter()
    run = train_ours(cfg) if args.worker == "ours" else train_trl(cfg)
    m = run.metrics
    print("RESULT " + json.dumps({
        "trainer": run.trainer,
        "step_time": m["step_time"].tolist(),
        "step_cpu_time": m["step_cpu_time"].tolist(),
        "generate_time": m["time/generate_s"].tolist() if "time/generate_s" in m else None,
        "completion_tokens": m["completion_tokens"].tolist(),
        "reward": m["reward"].tolist(),
        "peak_rss_mb": run.peak_rss_mb,
        "wall_s": time.perf_counter() - t0,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }))


def config_from_args(args: argparse.Namespace):
    from llm_exploration.grpo.config import GRPOConfig

    dataset_kwargs = json.loads(args.dataset_kwargs) if args.dataset_kwargs else {}
    return GRPOConfig(
        model=args.model, dataset=args.dataset, dataset_kwargs=dataset_kwargs, few_shot=args.few_shot,
        train_size=args.train_size, eval_size=0, num_generations=args.num_generations,
        per_device_train_batch_size=args.batch_size, max_completion_length=args.max_completion_length,
        temperature=args.temperature, learning_rate=args.learning_rate, max_steps=args.steps,
        loss_type=args.loss_type, beta=0.0, seed=args.seed, reward_funcs=args.rewards.split(","),
        bf16=args.bf16, gradient_accumulation_steps=args.grad_accum, log_completions=0,
    )


def run_worker(trainer: str, args: argparse.Namespace, round_: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", trainer, "--seed", str(args.seed + round_)]
    for key in ("model", "dataset", "dataset_kwargs", "few_shot", "train_size", "num_generations", "batch_size",
                "max_completion_length", "temperature", "learning_rate", "steps", "loss_type", "threads", "rewards",
                "grad_accum"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.bf16:
        cmd.append("--bf16")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE",
               HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"), TQDM_DISABLE="1",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{trainer} run failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def summarize(runs: list[dict]) -> dict:
    steps, tps = [], []
    for r in runs:
        for t, n in list(zip(r["step_time"], r["completion_tokens"]))[1:]:  # drop the warm-up step
            steps.append(t)
            tps.append(n / t)
    rewards = [x for r in runs for x in r["reward"]]
    return {
        "step_time_median_s": statistics.median(steps),
        "tokens_per_s_median": statistics.median(tps),
        "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
        "mean_reward": statistics.fmean(rewards),
        "first_reward": statistics.fmean(r["reward"][0] for r in runs),
        "last_reward": statistics.fmean(r["reward"][-1] for r in runs),
        "steps_timed": len(steps),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--dataset", default="basic_arithmetic")
    p.add_argument("--dataset-kwargs", default=json.dumps({
        "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_negation": False, "allow_parentheses": False}))
    p.add_argument("--few-shot", type=int, default=3)
    p.add_argument("--train-size", type=int, default=200)
    p.add_argument("--num-generations", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8, help="completions per step (prompts x G)")
    p.add_argument("--max-completion-length", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--loss-type", default="dapo")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--rewards", default="format_soft,correctness")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the raw runs and summary here")
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    print(f"settings: model={args.model} dataset={args.dataset} G={args.num_generations} "
          f"completions/step={args.batch_size} max_completion_length={args.max_completion_length} "
          f"T={args.temperature} loss={args.loss_type} steps={args.steps} rounds={args.rounds} "
          f"threads={args.threads} dtype={'bf16' if args.bf16 else 'fp32'}", flush=True)
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    for round_ in range(args.rounds):
        order = ["ours", "trl"] if round_ % 2 == 0 else ["trl", "ours"]
        for trainer in order:
            r = run_worker(trainer, args, round_)
            runs[trainer].append(r)
            print(f"round {round_} {trainer:4s}: steps {[round(t, 1) for t in r['step_time']]} s, "
                  f"cpu {[round(t, 1) for t in r['step_cpu_time']]} s, "
                  f"peak {r['peak_rss_mb']:.0f} MiB, rewards {[round(x, 2) for x in r['reward']]}", flush=True)
    s = {k: summarize(v) for k, v in runs.items()}
    print(f"\n{'':28s}{'ours':>12s}{'TRL':>12s}{'ours/TRL':>10s}")
    for key, label in [("step_time_median_s", "step time, median (s)"),
                       ("tokens_per_s_median", "completion tokens/s, median"),
                       ("peak_rss_mb_median", "peak memory (MiB)"),
                       ("mean_reward", "mean reward over steps"),
                       ("first_reward", "reward, first step"),
                       ("last_reward", "reward, last step")]:
        a, b = s["ours"][key], s["trl"][key]
        print(f"{label:28s}{a:12.3f}{b:12.3f}{a / b if b else float('nan'):10.2f}")
    print(f"(steps timed per trainer: {s['ours']['steps_timed']} and {s['trl']['steps_timed']}; "
          f"device: {runs['ours'][0]['device']})")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "runs": runs,
                                         "summary": s}, indent=2))


if __name__ == "__main__":
    main()
