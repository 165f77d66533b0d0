"""Reward functions: TRL's signature, tricky strings, and fuzzing (never raise, bounded time)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_exploration.grpo.rewards import (
    REWARD_FUNCS,
    answers_match,
    completion_text,
    correctness_reward,
    extract_answer,
    format_soft_reward,
    format_strict_reward,
    last_number,
    lenient_correctness_reward,
    normalize_number,
    reference_answer,
)

GOOD = "<think>6 * 7 = 42</think>\n<answer>42</answer>"


def test_trl_signature_with_strings_and_chat_messages_and_extra_kwargs():
    completions = [GOOD, [{"role": "assistant", "content": GOOD}], "42", [{"role": "assistant", "content": ""}]]
    prompts = ["q"] * 4
    extra = {"completion_ids": [[1]] * 4, "trainer_state": None, "log_extra": print, "log_metric": print,
                 "question": ["q"] * 4}
    for name, func in REWARD_FUNCS.items():
        values = func(prompts=prompts, completions=completions, answer=["42"] * 4, **extra)
        assert len(values) == 4, name
        assert all(v is None or isinstance(v, float) for v in values), name
    assert format_strict_reward(prompts, completions) == [1.0, 1.0, 0.0, 0.0]
    assert correctness_reward(prompts, completions, answer=["42"] * 4) == [1.0, 1.0, 0.0, 0.0]
    assert lenient_correctness_reward(prompts, completions, answer=["42"] * 4) == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("text, strict", [
    (GOOD, True),
    ("  <think>x</think>  <answer> 5 </answer>\n", True),
    ("<think>x</think><answer></answer>", False),  # empty answer
    ("<think>x</think> junk <answer>5</answer>", False),  # text between the blocks
    ("<answer>5</answer><think>x</think>", False),  # wrong order
    ("<think><think>x</think></think><answer>5</answer>", False),  # nested
    ("<think>x</think><answer>5</answer> trailing", False),
    ("<think>x</think><answer>5</answer><answer>6</answer>", False),
    ("<think>x<answer>5</answer></think>", False),
    ("", False),
])
def test_strict_format(text, strict):
    assert format_strict_reward(None, [text]) == [float(strict)]


def test_soft_format_is_graded():
    assert format_soft_reward(None, ["no tags", "<think>a", "<think>a</think>", GOOD,
                                     "<answer>1</answer><think>a</think>"]) == [0.0, 0.25, 0.5, 1.0, 0.5]


@pytest.mark.parametrize("text, expected", [
    ("<answer>7</answer>", "7"),
    ("<answer> 1 </answer> then <answer>2</answer>", "2"),  # the last pair
    ("<answer>unclosed", None),
    ("</answer><answer>", None),
    ("no tags", None),
    ("<answer><answer>3</answer>", "3"),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, value", [
    ("1,000", Decimal(1000)), ("$1,234.50", Decimal("1234.5")), ("-3", Decimal(-3)), ("\u22127", Decimal(-7)),
    ("+4", Decimal(4)), ("42.", Decimal(42)), ("0.50", Decimal("0.5")), ("3/4", Decimal("0.75")),
    ("72 dollars", Decimal(72)), ("50%", Decimal(50)), (".5", Decimal("0.5")),
    ("1 or 2", None), ("seven", None), ("", None), ("1/0", None), (None, None),
])
def test_normalize_number(text, value):
    assert normalize_number(text) == value


def test_reference_answers_and_matching():
    assert reference_answer("She sold 48/2 = <<48/2=24>>24 clips.\n#### 72") == "72"
    assert reference_answer(" 5 ") == "5"
    assert answers_match("72.0", "steps #### 72")
    assert answers_match("$1,000", "1000")
    assert not answers_match("71", "72")
    assert not answers_match(None, "72")
    assert answers_match("Paris", " paris ")  # non-numeric references compare as text
    assert not answers_match("7 2", "72")


def test_last_number():
    assert last_number("so 3 + 4 = 7. The answer is -12,000.5 apples") == Decimal("-12000.5")
    assert last_number("none") is None
    assert last_number("9" * 5000) is None  # absurdly long numbers are not answers


def test_correctness_needs_answer_column_and_passes_none_through():
    with pytest.raises(ValueError, match="answer"):
        correctness_reward(None, ["x"])
    assert correctness_reward(None, ["<answer>1</answer>"], answer=[None]) == [None]


def test_completion_text_shapes():
    assert completion_text("a") == "a"
    assert completion_text([{"role": "assistant", "content": "b"}]) == "b"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "c"}]}]) == "c"
    assert completion_text([]) == ""
    assert completion_text(None) == ""


# --- fuzzing ---------------------------------------------------------------------------------

PIECES = ["<think>", "</think>", "<answer>", "</answer>", "<", ">", "/", "answer", "think", "####",
          "1", "9" * 60, "-", ",", ".", "$", "%", " ", "\n", "\u2212", "\u00e9", "\U0001F600", "\x00", "/0"]
texts = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(PIECES), max_size=200).map("".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(completion=texts, reference=st.one_of(texts, st.integers().map(str), st.none()))
def test_rewards_never_raise(completion, reference):
    for func in REWARD_FUNCS.values():
        values = func(prompts=[""], completions=[completion], answer=[reference])
        assert len(values) == 1
        assert values[0] is None or 0.0 <= values[0] <= 1.0


@pytest.mark.parametrize("piece", ["<answer>", "<think>", "1,", "9", "<answer>1</answer>", "-1.", "<", "a1."])
def test_rewards_linear_time_on_adversarial_inputs(piece):
    """200k-character adversarial inputs (patterns that make backtracking regexes explode)
    are scored well within a second by every reward function."""
    text = piece * (200_000 // len(piece)) + "!"
    start = time.perf_counter()
    for func in REWARD_FUNCS.values():
        func(prompts=[""], completions=[text], answer=["1"])
    assert time.perf_counter() - start < 5.0  # generous: a quadratic scan would take minutes
