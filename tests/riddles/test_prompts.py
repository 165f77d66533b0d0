import pytest

from llm_exploration.riddles import load_riddles, riddle_dataset_rows, riddle_messages
from llm_exploration.riddles.prompts import SYSTEM_PROMPT, worked_examples


def test_messages_carry_worked_examples_then_the_riddle():
    riddle = load_riddles("test")[0]
    messages = riddle_messages(riddle)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert messages[-1]["content"] == riddle.riddle
    assert messages[2]["content"].startswith("<think>") and messages[2]["content"].endswith("</answer>")


def test_zero_shot_and_plain_string():
    assert [m["role"] for m in riddle_messages("What am I?", [])] == ["system", "user"]


def test_worked_examples_count_is_checked():
    assert len(worked_examples(1)) == 1
    with pytest.raises(ValueError, match="worked examples"):
        worked_examples(5)


def test_dataset_rows_have_reward_columns(tokenizer):
    rows = riddle_dataset_rows(load_riddles("train")[:3])
    assert set(rows[0]) == {"prompt", "answer", "aliases", "id", "kind"}
    text = tokenizer.apply_chat_template(rows[0]["prompt"], tokenize=False, add_generation_prompt=True)
    assert text.count("<answer>") == 3  # the instruction and two worked examples
    assert text.rstrip().endswith("assistant")
