import pandas as pd
import pytest

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.choices import make_choices
from llm_exploration.riddles.evaluate import score_samples
from llm_exploration.riddles.experiment import accuracy_table, gain, learnable


def test_learnable_keeps_items_with_a_right_sample():
    items = make_choices(load_riddles("test"))[:3]
    right = lambda it: it.options[it.correct]
    wrong = lambda it: it.options[(it.correct + 1) % 4]
    samples = score_samples(items, [[wrong(items[0])] * 2, [wrong(items[1]), right(items[1])], [right(items[2])] * 2])
    assert learnable(items, samples) == items[1:]


def test_gain_is_paired_by_seed_with_a_t_interval():
    table = pd.DataFrame([
        {"set": "held-out", "run": "base", "seed": -1, "accuracy": 0.20},
        *({"set": "held-out", "run": "correctness", "seed": s, "accuracy": a} for s, a in [(0, .30), (1, .35), (2, .40)]),
        *({"set": "held-out", "run": "format", "seed": s, "accuracy": a} for s, a in [(0, .25), (1, .30), (2, .30)]),
    ])
    g = gain(table, "held-out", "correctness")
    assert g["mean"] == pytest.approx(0.15) and g["seeds"] == 3
    assert g["low"] == pytest.approx(0.15 - 4.303 * 0.05 / 3 ** 0.5, rel=1e-3)
    assert gain(table, "held-out", "correctness", over="format")["per_seed"] == [0.05, 0.05, 0.1]


def test_accuracy_table_rows():
    items = make_choices(load_riddles("test"))[:2]
    df = score_samples(items, [[items[0].options[items[0].correct]], ["B"]])
    run = {"eval": {"held-out": df.assign(run="correctness", seed=0)}}
    table = accuracy_table({"held-out": df}, [run])
    assert list(table["run"]) == ["base", "correctness"] and list(table["seed"]) == [-1, 0]
    assert (table["accuracy"] == 0.5).all() and (table["commit_rate"] == 0.5).all()
