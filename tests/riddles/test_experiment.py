from collections import Counter

import pandas as pd
import pytest

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.choices import make_choices
from llm_exploration.riddles.evaluate import score_samples
from llm_exploration.riddles.experiment import (
    accuracy_given_commit, accuracy_table, gain, learnable, position_balanced)


def test_learnable_keeps_items_with_a_right_sample():
    items = make_choices(load_riddles("test"))[:3]
    right = lambda it: it.options[it.correct]
    wrong = lambda it: it.options[(it.correct + 1) % 4]
    samples = score_samples(items, [[wrong(items[0])] * 2, [wrong(items[1]), right(items[1])], [right(items[2])] * 2])
    assert learnable(items, samples) == items[1:]


def _run(items, replies, run, seed, set_name="held-out"):
    return {"eval": {set_name: score_samples(items, replies).assign(run=run, seed=seed)}}


def test_gain_is_paired_by_riddle_with_seed_and_riddle_intervals():
    items = make_choices(load_riddles("test"))[:4]
    right = lambda it: it.options[it.correct]
    wrong = lambda it: it.options[(it.correct + 1) % 4]
    base = {"held-out": score_samples(items, [[wrong(i)] for i in items])}
    runs = [_run(items, [[right(i) if k < n else wrong(i)] for k, i in enumerate(items)], "correctness", s)
            for s, n in [(0, 1), (1, 2), (2, 3)]]
    runs += [_run(items, [[right(i) if k < 1 else wrong(i)] for k, i in enumerate(items)], "format", s) for s in range(3)]
    g = gain(base, runs, "held-out", "correctness")
    assert g["mean"] == pytest.approx(0.5) and g["seeds"] == 3 and g["per_seed"] == [0.25, 0.5, 0.75]
    assert g["low"] < 0.5 < g["high"] and g["t_low"] == pytest.approx(0.5 - 4.303 * 0.25 / 3 ** 0.5, rel=1e-3)
    assert gain(base, runs, "held-out", "correctness", over="format")["per_seed"] == [0.0, 0.25, 0.5]
    only_first = gain(base, runs, "held-out", "correctness", ids_for=lambda r: [items[0].riddle.id])
    assert only_first["mean"] == 1.0 and only_first["riddles"] == [1, 1, 1]


def test_position_balanced_puts_every_item_at_every_letter():
    items = make_choices(load_riddles("test"))[:5]
    rows = position_balanced(items)
    assert len(rows) == 20 and Counter(r.letter for r in rows) == {"A": 5, "B": 5, "C": 5, "D": 5}
    assert all(r.options[r.correct] == r.riddle.answer for r in rows)
    assert all(sorted(r.options) == sorted(items[k // 4].options) for k, r in enumerate(rows))


def test_accuracy_given_commit_ignores_replies_that_commit_to_nothing():
    items = make_choices(load_riddles("test"))[:2]
    df = score_samples(items, [[items[0].options[items[0].correct], "B"], [items[1].options[(items[1].correct + 1) % 4]]])
    assert accuracy_given_commit(df) == 0.5


def test_accuracy_table_rows():
    items = make_choices(load_riddles("test"))[:2]
    df = score_samples(items, [[items[0].options[items[0].correct]], ["B"]])
    run = {"eval": {"held-out": df.assign(run="correctness", seed=0)}}
    table = accuracy_table({"held-out": df}, [run])
    assert list(table["run"]) == ["base", "correctness"] and list(table["seed"]) == [-1, 0]
    assert (table["accuracy"] == 0.5).all() and (table["commit_rate"] == 0.5).all()
