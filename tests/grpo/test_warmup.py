"""Format warm-up: targets wrap the model's own answer, each tag exactly once."""

from llm_exploration.grpo.rewards import extract_answer, is_strict_format
from llm_exploration.grpo.warmup import wrap_in_format


def test_wrap_in_format_keeps_the_last_number_and_one_of_each_tag():
    target = wrap_in_format("4 + 5 = 9. <answer>So 9</answer>")
    assert is_strict_format(target)
    assert extract_answer(target) == "9"
    assert target.count("<answer>") == 1 and target.count("<think>") == 1


def test_wrap_in_format_needs_a_number():
    assert wrap_in_format("I do not know.") is None
    assert extract_answer(wrap_in_format("it is -0")) == "0"
