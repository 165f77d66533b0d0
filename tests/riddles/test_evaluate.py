import pandas as pd
import torch

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.choices import make_choices
from llm_exploration.riddles.evaluate import (
    chosen_positions,
    evaluate,
    failure_modes,
    per_riddle,
    score_samples,
    side_by_side,
    summarise,
)
from llm_exploration.riddles.rewards import constant_answer_rewards


def test_choice_samples_are_scored_and_sorted_into_failures():
    item = make_choices(load_riddles("test"))[0]
    right = item.options[item.correct]
    wrong = item.options[(item.correct + 1) % 4]
    replies = [[right, f"{item.letter}) {right}", wrong, "B", f"{right} or {wrong}", "I do not know"]]
    df = score_samples([item], replies)
    assert list(df["correct"]) == [True, True, False, False, False, False]
    assert list(failure_modes(df, [item])) == ["correct", "correct", "wrong candidate", "position only",
                                               "several candidates", "no candidate"]
    s = summarise(df)
    assert s["accuracy"] == 2 / 6 and s["pass_at_k"] == 1.0 and s["commit_rate"] == 0.5
    assert 0 < s["accuracy_low"] < s["accuracy"] < s["accuracy_high"] < 1
    assert chosen_positions(df).sum() == 1.0


def test_free_form_failures_and_pass_at_k():
    echo = next(r for r in load_riddles() if r.answer == "echo")
    df = score_samples([echo], [["echo", "", "parrot", "empty halls", "it could be many things here"]])
    assert list(failure_modes(df, [echo])) == ["correct", "no candidate", "other wrong answer",
                                               "word from the riddle", "no candidate"]
    table = per_riddle(df, ks=(1, 2))
    assert table.loc[echo.id, "c"] == 1 and abs(table.loc[echo.id, "pass@2"] - 0.4) < 1e-9


def test_side_by_side_shows_improved_riddles_first():
    items = make_choices(load_riddles("test"))[:2]
    a, b = items
    wrong = lambda it: it.options[(it.correct + 1) % 4]
    before = score_samples(items, [[wrong(a), wrong(a)], [wrong(b), wrong(b)]])
    after = score_samples(items, [[wrong(a), wrong(a)], [wrong(b), b.options[b.correct]]])
    table = side_by_side(before, after, items, k=2)
    assert list(table["answer"]) == [b.riddle.answer, a.riddle.answer]
    assert table["after"].iloc[0].endswith("[1/2]")


def test_evaluate_on_a_tiny_model(tiny, tokenizer):
    items = make_choices(load_riddles("test"))[:3]
    df = evaluate(tiny, tokenizer, items, n=2, max_new_tokens=4, temperature=1.0, batch_size=2)
    assert len(df) == 6 and list(df["sample"]) == [0, 1] * 3
    assert list(df["id"]) == [i.riddle.id for i in items for _ in range(2)]
    assert (df["reply_tokens"] <= 4).all()
    assert summarise(df)["riddles"] == 3


def test_constant_answers_show_the_gap_between_rewards():
    table = constant_answer_rewards(load_riddles("train"), ["", "e", "egg"]).set_index("constant answer")
    assert table.loc["''", "substring reward"] == 1.0 and table.loc["''", "equality reward"] == 0.0
    assert table.loc["'e'", "substring reward"] > 0.5
    assert table.loc["'egg'", "equality reward"] == table.loc["'egg'", "substring reward"] > 0
