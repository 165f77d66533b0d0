import pytest

from llm_exploration.riddles import load_riddles, riddle_dataset_rows, riddle_messages
from llm_exploration.riddles.choices import make_choices
from llm_exploration.riddles.prompts import (
    SYSTEM_CHOICE,
    SYSTEM_FREE,
    SYSTEM_THINK,
    line_stop_ids,
    question_text,
    reply_answer,
    worked_examples,
)


def test_direct_choice_prompt_letters_the_candidates():
    item = make_choices(load_riddles("test"))[0]
    messages = riddle_messages(item)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_CHOICE
    lines = question_text(item).splitlines()
    assert lines[0] == item.text and lines[1:] == [f"{l}) {o}" for l, o in zip("ABCD", item.options)]


def test_free_form_and_think_prompts():
    riddle = load_riddles("test")[0]
    assert riddle_messages(riddle) == [{"role": "system", "content": SYSTEM_FREE},
                                       {"role": "user", "content": riddle.riddle}]
    think = riddle_messages(riddle, think=True)
    assert [m["role"] for m in think] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert think[0]["content"] == SYSTEM_THINK and think[2]["content"].startswith("<think>")
    with pytest.raises(ValueError, match="think form"):
        riddle_messages(riddle, shots=worked_examples(1))


def test_worked_examples_count_is_checked():
    assert len(worked_examples(1)) == 1
    with pytest.raises(ValueError, match="worked examples"):
        worked_examples(5)


def test_reply_answer_reads_the_first_line_or_the_tags():
    assert reply_answer("\n  B) echo \nmore") == "B) echo"
    assert reply_answer("   ") is None
    assert reply_answer("<think>x</think><answer>echo</answer>", think=True) == "echo"


def test_line_stop_ids_end_a_reply_at_its_first_newline(tokenizer):
    stops = line_stop_ids(tokenizer)
    assert stops[0] == tokenizer.eos_token_id
    assert tokenizer.convert_tokens_to_ids("Ċ") in stops and len(stops) > 5
    assert tokenizer("echo", add_special_tokens=False).input_ids[0] not in stops


def test_dataset_rows_have_reward_columns(tokenizer):
    items = make_choices(load_riddles("train"))[:3]
    rows = riddle_dataset_rows(items)
    assert set(rows[0]) == {"prompt", "answer", "aliases", "options", "correct", "think", "id", "kind"}
    assert rows[0]["options"] == list(items[0].options) and rows[0]["correct"] == items[0].correct
    text = tokenizer.apply_chat_template(rows[0]["prompt"], tokenize=False, add_generation_prompt=True)
    assert text.rstrip().endswith("assistant")
    free = riddle_dataset_rows(load_riddles("train")[:1])[0]
    assert free["options"] == [] and free["correct"] == -1
