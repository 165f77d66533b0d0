"""Questions, prompts and the micro-step prompt stream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_exploration.grpo.data import (
    FEW_SHOT_EXAMPLES,
    GSM8K,
    SYSTEM_PROMPT,
    PromptStream,
    apply_template,
    build_messages,
    load_rows,
)
from llm_exploration.grpo.rewards import correctness_reward, format_strict_reward

EASY = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}


def test_train_and_eval_rows_are_distinct_and_disjoint():
    train = load_rows("basic_arithmetic", "train", 150, 0, EASY)
    held = load_rows("basic_arithmetic", "eval", 50, 0, EASY, exclude=[r["question"] for r in train])
    qs_train, qs_held = [r["question"] for r in train], [r["question"] for r in held]
    assert len(set(qs_train)) == 150 and len(set(qs_held)) == 50
    assert not set(qs_train) & set(qs_held)
    assert not {q for q, _ in FEW_SHOT_EXAMPLES} & (set(qs_train) | set(qs_held))
    assert train == load_rows("basic_arithmetic", "train", 150, 0, EASY)  # seeded


@pytest.mark.parametrize("task", ["chain_sum", "gsm_symbolic"])
def test_other_reasoning_gym_tasks(task):
    rows = load_rows(task, "train", 3, 0)
    assert len(rows) == 3 and all(r["answer"] for r in rows)


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="reasoning-gym"):
        load_rows("no_such_task", "train", 2)


MIRROR = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_gsm8k_rows_through_the_data_loader(monkeypatch):
    root = os.environ.get("LLM_EXPLORATION_DATA_MIRROR") or (str(MIRROR) if MIRROR.is_dir() else None)
    if root is None:
        pytest.skip("no data mirror: set LLM_EXPLORATION_DATA_MIRROR")
    monkeypatch.setenv("LLM_EXPLORATION_DATA_MIRROR", root)
    rows = load_rows(GSM8K, "test", 4)
    assert len(rows) == 4 and "####" in rows[0]["answer"]
    good = "<think>x</think><answer>" + rows[0]["answer"].split("####")[-1].strip() + "</answer>"
    assert correctness_reward(None, [good], answer=[rows[0]["answer"]]) == [1.0]


def test_prompt_messages_and_examples_follow_the_format(tokenizer):
    messages = build_messages("Calculate 1 + 1.", few_shot=2)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert format_strict_reward(None, [a for _, a in FEW_SHOT_EXAMPLES]) == [1.0] * len(FEW_SHOT_EXAMPLES)
    text = apply_template(tokenizer, messages)
    assert text.endswith("<|im_start|>assistant\n") and "<answer>38</answer>" in text
    with pytest.raises(ValueError, match="few_shot"):
        build_messages("q", few_shot=len(FEW_SHOT_EXAMPLES) + 1)


def test_prompt_stream_windows_ranks_and_epochs():
    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(12)]
    stream = PromptStream(rows, prompts_per_step=2, repeats=3, seed=0, few_shot=0)
    items = [stream[i]["question"] for i in range(12)]
    assert items[0] == items[1] == items[2] != items[3]  # a window repeats its prompts
    epoch = [q for w in range(6) for q in stream[3 * w]["question"]]
    assert sorted(epoch) == sorted(r["question"] for r in rows)  # one epoch sees every row once
    epoch1 = [q for w in range(6, 12) for q in stream[3 * w]["question"]]
    assert sorted(epoch1) == sorted(epoch) and epoch1 != epoch  # reshuffled each epoch
    ranks = [PromptStream(rows, 2, 1, 0, rank=k, world_size=2, few_shot=0) for k in (0, 1)]
    assert not set(ranks[0][0]["question"]) & set(ranks[1][0]["question"])
    assert stream[5]["index"] == 5 and stream[5]["prompt"][0][0]["role"] == "system"
    with pytest.raises(ValueError, match="train_size"):
        PromptStream(rows[:1], prompts_per_step=2, repeats=1, seed=0)
