"""The post's experiments: named attention variants, data, probes and fine-tunes scored with intervals.

A :class:`Variant` is a schedule plus which special tokens are global. Every variant is
compared with dense attention on the same test examples: probes with a paired bootstrap over
the test set, fine-tunes with a t-interval over the seeds' paired differences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_exploration.data import load_dataset
from llm_exploration.sparse import stats
from llm_exploration.sparse.attention import Backend, use_sparse_attention
from llm_exploration.sparse.finetune import Budget, train_top
from llm_exploration.sparse.masks import schedule
from llm_exploration.sparse.probe import L2_GRID, READOUTS, encode, fit_probe

DATASET = "cardiffnlp/tweet_eval"
TASKS = ("emotion", "offensive")


@dataclass(frozen=True)
class Variant:
    """A schedule with its global tokens, and what it stands for."""

    name: str
    schedule: str
    globals: tuple[str, ...] = ()  # "[CLS]", "[SEP]"
    about: str = ""
    null_values: bool = False  # global tokens' values zeroed: a content-free sink

    def global_ids(self, tok: PreTrainedTokenizerBase) -> list[int]:
        ids = {"[CLS]": tok.cls_token_id, "[SEP]": tok.sep_token_id}
        return [ids[g] for g in self.globals]

    def switch(
        self, model: PreTrainedModel, tok, window: int, backend: Backend = "sdpa", seed: int = 0
    ):
        """Switch ``model`` (in place) to this variant; dense runs the same code path."""
        kinds = schedule(self.schedule, model.config.num_hidden_layers)
        return use_sparse_attention(
            model,
            kinds,
            window,
            self.global_ids(tok) or [tok.cls_token_id],
            backend,
            seed,
            null_global_values=self.null_values,
        )


VARIANTS = {
    v.name: v
    for v in [
        Variant("dense", "dense", (), "every layer dense (the model as pretrained)"),
        Variant(
            "window+global",
            "window+global",
            ("[CLS]", "[SEP]"),
            "Longformer-style: window, [CLS] and [SEP] global in both roles",
        ),
        Variant("window", "window", (), "window only, no global token"),
        Variant(
            "[CLS] key only",
            "window+global-keys",
            ("[CLS]",),
            "every token may attend to [CLS] (sink); [CLS] sees only its window",
        ),
        Variant(
            "[CLS] key, zero value",
            "window+global-keys",
            ("[CLS]",),
            "as key only, but [CLS]'s value is zeroed: a sink that carries no content",
            null_values=True,
        ),
        Variant(
            "[CLS] query only",
            "window+global-queries",
            ("[CLS]",),
            "[CLS] sees every token (router); only its neighbours see it",
        ),
        Variant(
            "[CLS] alone",
            "window+global",
            ("[CLS]",),
            "[CLS] global in both roles, [SEP] a plain token",
        ),
        Variant(
            "[SEP] alone",
            "window+global",
            ("[SEP]",),
            "[SEP] global in both roles, [CLS] a plain token",
        ),
        Variant(
            "ModernBERT-style",
            "modernbert",
            (),
            "dense layers 0 and 3, plain windows in the others",
        ),
        Variant(
            "BigBird-style",
            "window+global+random",
            ("[CLS]", "[SEP]"),
            "window+global plus 2 random keys per query and layer",
        ),
    ]
}


@dataclass
class Split:
    """Token ids (with [CLS]/[SEP]) and labels of one split."""

    ids: list[list[int]]
    labels: torch.Tensor


def tweets(tok, task: str, split: str, size: int | None = None, max_length: int = 64) -> Split:
    """The first ``size`` tweets of a fixed shuffle (seed 0) of a tweet_eval split (all if None)."""
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; valid: {', '.join(TASKS)}.")
    data = load_dataset(DATASET, task, split=split).shuffle(seed=0)
    if size is not None:
        data = data.select(range(min(size, len(data))))
    ids = tok(list(data["text"]), truncation=True, max_length=max_length)["input_ids"]
    return Split(ids, torch.tensor(data["label"]))


@dataclass
class ProbeRun:
    """Everything one variant's probes produced on one task."""

    variant: str
    predictions: dict[str, torch.Tensor]  # readout -> test predictions
    l2: dict[str, float]
    cpu_seconds: float
    train_inputs: list[torch.Tensor] | None = None  # cached layer inputs, for fine-tuning
    test_inputs: list[torch.Tensor] | None = None


def probe_variant(
    model,
    tok,
    variant: Variant,
    window: int,
    train: Split,
    test: Split,
    n_classes: int,
    capture_layer: int | None = None,
    backend: Backend = "sdpa",
    batch_size: int = 64,
    l2_grid: tuple[float, ...] = L2_GRID,
) -> ProbeRun:
    """Encode both splits under ``variant`` and fit one probe per readout."""
    variant.switch(model, tok, window, backend)
    enc_train = encode(model, train.ids, tok.pad_token_id, batch_size, capture_layer)
    enc_test = encode(model, test.ids, tok.pad_token_id, batch_size, capture_layer)
    preds, l2 = {}, {}
    for readout in READOUTS:
        probe = fit_probe(enc_train.features[readout], train.labels, n_classes, l2_grid)
        preds[readout] = probe.predict(enc_test.features[readout])
        l2[readout] = probe.l2
    return ProbeRun(
        variant.name,
        preds,
        l2,
        enc_train.cpu_seconds + enc_test.cpu_seconds,
        enc_train.layer_inputs,
        enc_test.layer_inputs,
    )


def score_probes(
    runs: list[ProbeRun],
    labels: torch.Tensor,
    n_classes: int,
    n_boot: int = 2000,
    reference: str = "dense",
) -> pd.DataFrame:
    """One row per (variant, readout): macro-F1 and accuracy with bootstrap intervals, the paired
    difference to ``reference`` with its interval, and whether the run collapsed."""
    ref = {r.variant: r for r in runs}[reference]
    rows = []
    for run in runs:
        for readout, pred in run.predictions.items():
            f1 = stats.bootstrap(pred, labels, n_classes, "macro_f1", n_boot=n_boot)
            acc = stats.bootstrap(pred, labels, n_classes, "accuracy", n_boot=n_boot)
            row = {
                "variant": run.variant,
                "readout": readout,
                "macro_f1": f1["value"],
                "macro_f1_low": f1["low"],
                "macro_f1_high": f1["high"],
                "accuracy": acc["value"],
                "accuracy_low": acc["low"],
                "accuracy_high": acc["high"],
                "collapsed": stats.collapsed(pred, n_classes),
                "l2": run.l2[readout],
            }
            if run.variant != reference:
                d = stats.paired_bootstrap(
                    pred, ref.predictions[readout], labels, n_classes, n_boot=n_boot
                )
                row.update(delta=d["value"], delta_low=d["low"], delta_high=d["high"])
            rows.append(row)
    return pd.DataFrame(rows)


def finetune_seeds(
    model,
    tok,
    runs: dict[str, ProbeRun],
    variants: list[str],
    first: int,
    train: Split,
    test: Split,
    n_classes: int,
    budget: Budget,
    seeds: list[int],
    window: int,
) -> pd.DataFrame:
    """Fine-tune layers ``first ..`` of each variant from its cached inputs, once per seed.

    One row per (variant, seed): macro-F1, accuracy, collapsed, final training loss, CPU time.
    """
    rows = []
    for name in variants:
        variant, run = VARIANTS[name], runs[name]
        if run.train_inputs is None:
            raise ValueError(
                f"{name}: probe it with capture_layer={first} to cache the layer inputs."
            )
        variant.switch(model, tok, window, "sdpa")
        for seed in seeds:
            out = train_top(
                model,
                first,
                (run.train_inputs, train.ids, train.labels),
                (run.test_inputs, test.ids),
                n_classes,
                variant.global_ids(tok) or [tok.cls_token_id],
                budget,
                seed,
            )
            pred = out["pred"]
            rows.append(
                {
                    "variant": name,
                    "seed": seed,
                    "macro_f1": float(stats.macro_f1(pred, test.labels, n_classes)),
                    "accuracy": float(stats.accuracy(pred, test.labels)),
                    "collapsed": stats.collapsed(pred, n_classes),
                    "loss": out["loss"],
                    "cpu_seconds": out["cpu_seconds"],
                }
            )
    return pd.DataFrame(rows)


def paired_seeds(
    results: pd.DataFrame, metric: str = "macro_f1", reference: str = "dense"
) -> pd.DataFrame:
    """Per variant: mean ``metric`` over seeds and the t-interval of its paired difference to
    ``reference`` (same seeds), counting collapsed runs; collapsed runs are kept out of means."""
    rows = []
    ref = results[results["variant"] == reference].set_index("seed")
    for name, group in results.groupby("variant", sort=False):
        ok = group[~group["collapsed"]].set_index("seed")
        row = {"variant": name, "seeds": len(group), "collapsed": int(group["collapsed"].sum())}
        if len(ok) >= 2:
            row.update(
                {f"{metric}_{k}": v for k, v in stats.t_interval(ok[metric]).items() if k != "n"}
            )
        if name != reference:
            common = ok.index.intersection(ref[~ref["collapsed"]].index)
            if len(common) >= 2:
                d = stats.t_interval(ok.loc[common, metric] - ref.loc[common, metric])
                row.update(delta=d["value"], delta_low=d["low"], delta_high=d["high"], pairs=d["n"])
        rows.append(row)
    return pd.DataFrame(rows)


def full_step_seconds(
    model_name: str, data: Split, n_classes: int, batch_size: int = 32, steps: int = 2
) -> float:
    """CPU seconds of one full fine-tuning step (every layer, AdamW, bf16 autocast), median of
    ``steps`` after a warm-up: what a full fine-tune would cost per batch."""
    from transformers import AutoModelForSequenceClassification

    from llm_exploration.models import load_encoder
    from llm_exploration.sparse.probe import pad

    model, tok = load_encoder(
        model_name, model_cls=AutoModelForSequenceClassification, num_labels=n_classes
    )
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids, mask = pad(data.ids[:batch_size], tok.pad_token_id)
    labels = data.labels[:batch_size]
    times = []
    for _ in range(steps + 1):
        start = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.process_time() - start)
    return sorted(times[1:])[len(times[1:]) // 2]
