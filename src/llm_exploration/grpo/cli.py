"""``python -m llm_exploration.grpo fit|evaluate --config <yaml> [--set field=value ...]``.

``fit`` trains with a ``GRPOConfig`` read from YAML (every field of ``GRPOConfig``; ``--set``
overrides single fields with YAML-parsed values, e.g. ``--set max_steps=5``).
``evaluate`` scores the config's model, or a training checkpoint (``--checkpoint``), on the
held-out questions of the config's dataset and prints a table; ``--output`` writes JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llm_exploration import cli, settings
from llm_exploration.grpo.config import GSM8K, GRPOConfig
from llm_exploration.settings import Rule, SettingError, check_value


def load_config(path: str, sets: list[str]) -> GRPOConfig:
    """The config in the YAML file ``path`` with the ``--set field=value`` overrides (and, for a
    hub dataset, the data mirror setting), checked before anything is loaded."""
    try:
        config = settings.load(GRPOConfig, path, sets)
    except SettingError as err:
        raise err.from_source("--config") if err.setting == "config" else err
    if config.dataset == GSM8K:
        from llm_exploration.data import mirror_root

        mirror_root()
    return config


def check_evaluate_args(args: argparse.Namespace, config: GRPOConfig) -> None:
    """The ``evaluate`` options given, checked before any model is loaded."""
    splits = ("train", "test") if config.dataset == GSM8K else ("train", "eval")
    for name, tp, rule in (("n", int, Rule(ge=1)), ("temperature", float, Rule(ge=0)),
                           ("limit", int, Rule(ge=1)), ("max_completion_length", int, Rule(ge=1)),
                           ("checkpoint", str, Rule(test=lambda p: Path(p).is_file(),
                                                    expected="an existing .ckpt file")),
                           ("split", str, Rule(choices=splits))):
        if getattr(args, name) is not None:
            check_value(name, getattr(args, name), tp, rule, source=f"--{name.replace('_', '-')}")
    if args.limit is None:
        check_value("eval_size", config.eval_size, int,
                    Rule(ge=1, hint="evaluate needs at least one question (or pass --limit)."))


def cmd_fit(args: argparse.Namespace) -> int:
    from llm_exploration.grpo.train import fit

    config = load_config(args.config, args.set)
    result = fit(config)
    rows = result.metrics()
    if rows:
        last = [r for r in rows if "reward" in r][-1:] or rows[-1:]
        keys = ("step", "reward", "completions/mean_length", "step_time")
        print("last logged step: " + ", ".join(f"{k}={last[0][k]:.4g}" for k in keys if k in last[0]))
    print(f"logs: {result.log_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from llm_exploration.grpo.data import GSM8K, load_rows
    from llm_exploration.grpo.evaluate import evaluate
    from llm_exploration.grpo.module import GRPOModule

    config = load_config(args.config, args.set)
    check_evaluate_args(args, config)
    module = GRPOModule(config.replace(beta=0.0))  # no reference model needed to evaluate
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state, strict=False)
    split = args.split or ("test" if config.dataset == GSM8K else "eval")
    train_q = [] if config.dataset == GSM8K else [
        r["question"] for r in load_rows(config.dataset, "train", config.train_size, config.seed,
                                         config.dataset_kwargs)]
    rows = load_rows(config.dataset, split, args.limit or config.eval_size, config.seed,
                     config.dataset_kwargs, exclude=train_q)
    torch.set_grad_enabled(False)
    result = evaluate(module.policy, module.tokenizer, rows, n_samples=args.n, temperature=args.temperature,
                      max_completion_length=args.max_completion_length or config.max_completion_length,
                      system_prompt=config.system_prompt, few_shot=config.few_shot, seed=config.seed)
    print(result.table())
    if args.output:
        result.to_json(args.output)
        print(f"wrote {args.output}")
    return 0


def _main(argv: list[str]) -> int:
    parser = cli.ArgumentParser(prog="python -m llm_exploration.grpo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fit", "evaluate"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True, help="YAML file of GRPOConfig fields")
        p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override one field")
        if name == "evaluate":
            p.add_argument("--checkpoint", help="a Lightning .ckpt from fit (default: the untrained model)")
            p.add_argument("--split", help="dataset split (default: eval / GSM8K test)")
            p.add_argument("--n", type=int, default=1, help="samples per question")
            p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
            p.add_argument("--limit", type=int, help="number of questions (default: eval_size)")
            p.add_argument("--max-completion-length", type=int, dest="max_completion_length")
            p.add_argument("--output", help="write the result (with every sample) as JSON here")
    args = parser.parse_args(argv)
    return cmd_fit(args) if args.command == "fit" else cmd_evaluate(args)


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad input is one line on stderr and exit status 2 (``--debug``: traceback)."""
    return cli.run(_main, "python -m llm_exploration.grpo", argv)


if __name__ == "__main__":
    sys.exit(main())
