import numpy as np
import pandas as pd

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.evaluate import (
    failure_modes,
    score_completion,
    side_by_side,
    summarise,
)
from llm_exploration.riddles.prompts import format_reply, worked_examples
from llm_exploration.riddles.rewards import constant_answer_rewards


def frame(riddle, answers):
    rows = []
    for i, text in enumerate(answers):
        completion = format_reply("hm", text) if text is not None else "<think>hm</think>"
        rows.append({"id": riddle.id, "kind": riddle.kind, "sample": i, "completion": completion,
                     "reference": riddle.answer, "completion_tokens": 10,
                     **score_completion(completion, riddle)})
    return pd.DataFrame(rows)


def test_score_completion():
    echo = next(r for r in load_riddles() if r.answer == "echo")
    assert score_completion(format_reply("x", "An echo"), echo) == {
        "answer": "An echo", "correct": True, "formatted": True, "answer_words": 1}
    s = score_completion("echo", echo)
    assert s["answer"] is None and not s["correct"] and not s["formatted"] and np.isnan(s["answer_words"])


def test_failure_modes_and_summary():
    echo = next(r for r in load_riddles() if r.answer == "echo")
    df = frame(echo, ["echo", None, "kettle", "empty halls", "parrot"])
    labels = failure_modes(df, [echo], worked_examples())
    assert list(labels) == ["correct", "no answer", "worked example's answer",
                            "word from the riddle", "other wrong answer"]
    s = summarise(df)
    assert s["accuracy"] == 0.2 and s["pass_at_n"] == 1.0 and s["answer_rate"] == 0.8


def test_side_by_side_shows_solved_riddles_first():
    a, b = load_riddles("test")[:2]
    before = pd.concat([frame(a, ["x", "y"]), frame(b, ["z", "w"])])
    after = pd.concat([frame(a, ["x", "y"]), frame(b, ["z", b.answer])])
    table = side_by_side(before, after, [a, b], k=2)
    assert list(table["answer"]) == [b.answer, a.answer]
    assert table["after"].iloc[0].endswith("[1/2 correct]")


def test_constant_answers_show_the_gap_between_rewards():
    table = constant_answer_rewards(load_riddles("train"), ["", "e", "egg"]).set_index("constant answer")
    assert table.loc["''", "substring reward"] == 1.0 and table.loc["''", "equality reward"] == 0.0
    assert table.loc["'e'", "substring reward"] > 0.5
    assert table.loc["'egg'", "equality reward"] == table.loc["'egg'", "substring reward"] > 0
