"""The engine versus TRL's GRPOTrainer: same model, prompts, G, completion length, sampling,
dtype, loss and number of steps; per-step wall time, completion tokens/s, peak memory, reward.

    python benchmarks/grpo_vs_trl.py                  # cpu defaults: SmolLM2-135M, 2 rounds
    python benchmarks/grpo_vs_trl.py --steps 4 --rounds 1 --max-completion-length 16   # quick
    python benchmarks/grpo_vs_trl.py --model Qwen/Qwen2.5-0.5B-Instruct --dataset openai/gsm8k
    python benchmarks/grpo_vs_trl.py --config configs/grpo/cpu.yaml --steps 6   # the post's cpu settings
    python benchmarks/grpo_vs_trl.py --config configs/grpo/cpu.yaml --precision fp32

Each run is a fresh subprocess (so its peak memory is its own and neither trainer inherits
the other's warm caches), and runs alternate between the trainers round by round (ours, TRL,
TRL, ours, ...) so that a busy neighbour on a shared machine slows both alike. Both use the
same thread settings (``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY=PASSIVE``). A step's wall time is
measured the same way for both (``llm_exploration.grpo.compare``: from the end of the
previous optimizer step to the end of this one, generation included); the first step of each
run is dropped as warm-up. Reported: medians over the remaining steps of all rounds, and the
ratio ours / TRL (> 1 means ours is faster for throughput, slower for time).

The compute floor: one step needs at least 2·N FLOPs per token sampled (each distinct prompt
prefilled once, every completion token decoded) plus 6·N per token trained (forward and backward
over every prompt + completion), N the model's parameters. Divided by the matmul rate this
machine reaches on the model's own layer shapes (measured here, in the step's precision), it is
the time a step could not beat; each trainer's share of it is floor / median step time.
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

    if args.config:
        overrides = {"max_steps": args.steps, "seed": args.seed, "eval_size": 0, "log_completions": 0}
        if args.precision:
            overrides["bf16"] = args.precision == "bf16"
        return GRPOConfig.from_yaml(args.config, **overrides)
    dataset_kwargs = json.loads(args.dataset_kwargs) if args.dataset_kwargs else {}
    return GRPOConfig(
        model=args.model, dataset=args.dataset, dataset_kwargs=dataset_kwargs, few_shot=args.few_shot,
        train_size=args.train_size, eval_size=0, num_generations=args.num_generations,
        per_device_train_batch_size=args.batch_size, max_completion_length=args.max_completion_length,
        temperature=args.temperature, learning_rate=args.learning_rate, max_steps=args.steps,
        loss_type=args.loss_type, beta=0.0, seed=args.seed, reward_funcs=args.rewards.split(","),
        bf16=args.bf16 if args.precision is None else args.precision == "bf16", gradient_accumulation_steps=args.grad_accum, log_completions=0,
    )


def run_worker(trainer: str, args: argparse.Namespace, round_: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", trainer, "--seed", str(args.seed + round_)]
    for key in ("model", "dataset", "dataset_kwargs", "few_shot", "train_size", "num_generations", "batch_size",
                "max_completion_length", "temperature", "learning_rate", "steps", "loss_type", "threads", "rewards",
                "grad_accum"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.bf16:
        cmd.append("--bf16")
    if args.config:
        cmd += ["--config", str(args.config)]
    if args.precision:
        cmd += ["--precision", args.precision]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE",
               HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"), TQDM_DISABLE="1",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{trainer} run failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def compute_floor(cfg, threads: int, completion_tokens: float) -> dict:
    """The FLOPs of one step at ``cfg`` and the matmul rate of this machine: see the docstring."""
    import torch

    from llm_exploration.grpo.compare import training_rows
    from llm_exploration.grpo.data import apply_template
    from llm_exploration.models import load_causal_lm

    torch.set_num_threads(threads)
    model, tokenizer = load_causal_lm(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    rows = training_rows(cfg)
    prompt_len = statistics.fmean(len(tokenizer(apply_template(tokenizer, r["prompt"]))["input_ids"])
                                  for r in rows)
    sequences = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    prompts = sequences / cfg.num_generations
    flops = 2 * n_params * (prompts * prompt_len + completion_tokens) \
        + 6 * n_params * (sequences * prompt_len + completion_tokens)
    # the matmul rate on the model's MLP shapes, one step's worth of tokens, best of 5
    hidden, inter = model.config.hidden_size, model.config.intermediate_size
    dtype = torch.bfloat16 if cfg.bf16 else torch.float32
    a = torch.randn(int(sequences * prompt_len + completion_tokens), hidden, dtype=dtype)
    b = torch.randn(hidden, inter, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, (time.perf_counter() - t0) / 10)
    rate = 2 * a.shape[0] * hidden * inter / best
    return {"params": n_params, "prompt_tokens_mean": prompt_len, "step_tflop": flops / 1e12,
            "matmul_gflop_per_s": rate / 1e9, "floor_s": flops / rate}


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
    p.add_argument("--config", type=Path, help="a GRPO YAML config (e.g. configs/grpo/cpu.yaml): its "
                   "model, data, sampling, loss and optimisation replace the flags above; --steps and "
                   "--seed still apply")
    p.add_argument("--precision", choices=["bf16", "fp32"], help="override the precision (default: the "
                   "config's, or --bf16)")
    p.add_argument("--json", type=Path, help="also write the raw runs and summary here")
    args = p.parse_args()
    if args.config:
        replaced = [f"--{k.replace('_', '-')}" for k in ("model", "dataset", "dataset_kwargs", "few_shot",
                    "train_size", "num_generations", "batch_size", "max_completion_length", "temperature",
                    "learning_rate", "loss_type", "rewards", "grad_accum", "bf16")
                    if getattr(args, k) != p.get_default(k)]
        if replaced:
            p.error(f"--config sets {', '.join(replaced)} from the YAML; drop those flags or drop --config")
        if not args.config.is_file():
            p.error(f"--config {args.config}: no such file")
    if args.worker:
        worker(args)
        return

    cfg = config_from_args(args)
    print(f"settings: model={cfg.model} dataset={cfg.dataset} {cfg.dataset_kwargs} G={cfg.num_generations} "
          f"completions/step={cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps} "
          f"max_completion_length={cfg.max_completion_length} T={cfg.temperature} loss={cfg.loss_type} "
          f"rewards={cfg.reward_funcs} steps={args.steps} rounds={args.rounds} threads={args.threads} "
          f"dtype={'bf16' if cfg.bf16 else 'fp32'}" + (f" (from {args.config})" if args.config else ""), flush=True)
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
    if runs["ours"][0]["device"] == "cpu":
        tokens = statistics.median(n for r in runs["ours"] + runs["trl"] for n in r["completion_tokens"][1:])
        floor = compute_floor(cfg, args.threads, tokens)
        s["floor"] = floor
        print(f"compute floor: {floor['params'] / 1e6:.0f}M parameters, {floor['prompt_tokens_mean']:.0f} prompt "
              f"tokens, {tokens:.0f} completion tokens a step -> {floor['step_tflop']:.2f} TFLOP; matmul rate "
              f"{floor['matmul_gflop_per_s']:.0f} GFLOP/s -> floor {floor['floor_s']:.2f} s a step; share of the "
              f"floor: ours {floor['floor_s'] / s['ours']['step_time_median_s']:.2f}, "
              f"TRL {floor['floor_s'] / s['trl']['step_time_median_s']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "runs": runs,
                                         "summary": s}, indent=2))


if __name__ == "__main__":
    main()
