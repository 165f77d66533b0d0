import math
from dataclasses import replace

import pytest

from llm_exploration.grpo.rewards import is_strict_format
from llm_exploration.riddles import load_riddles, riddle_correctness_reward, substring_reward
from llm_exploration.riddles.choices import make_choices
from llm_exploration.riddles.prompts import format_reply
from llm_exploration.riddles.rewards import (
    constant_choice_rewards, riddle_format_reward, surface_policies, word_overlap_reply)

TRL_EXTRAS = {"completion_ids": [[1]], "trainer_state": None, "log_extra": None, "log_metric": None}


def reply(answer: str) -> str:
    return format_reply("Thinking it over.", answer)


def score(answer_text: str, answer: str, aliases=()) -> float:
    return riddle_correctness_reward(["p"], [reply(answer_text)], answer=[answer],
                                     aliases=[list(aliases)], think=[True], **TRL_EXTRAS)[0]


def test_string_and_chat_completions():
    completions = [reply("An Echo"), [{"role": "assistant", "content": reply("echoes")}],
                   reply("towel"), "echo"]  # the last has no <answer> tags
    rewards = riddle_correctness_reward(["p"] * 4, completions, answer=["echo"] * 4,
                                        aliases=[[]] * 4, think=[True] * 4, **TRL_EXTRAS)
    assert rewards == [1.0, 1.0, 0.0, 0.0]
    direct = riddle_correctness_reward(["p"] * 3, ["An echo.\nmore", "echo or towel", "echo"],
                                       answer=["echo"] * 3, aliases=[[]] * 3)
    assert direct == [1.0, 0.0, 1.0]  # the direct form reads the first line


def paid_riddles(answer_text: str) -> set[str]:
    riddles = load_riddles()
    rewards = riddle_correctness_reward(["p"] * len(riddles), [reply(answer_text)] * len(riddles),
                                        answer=[r.answer for r in riddles],
                                        aliases=[list(r.aliases) for r in riddles],
                                        think=[True] * len(riddles))
    return {r.answer for r, reward in zip(riddles, rewards) if reward == 1.0}


@pytest.mark.parametrize("gaming", ["", " ", "the", "?", "an", "it"])
def test_degenerate_answers_score_zero_on_every_riddle(gaming):
    assert paid_riddles(gaming) == set()


@pytest.mark.parametrize("letter", list("abcdefghijklmnopqrstuvwxyz"))
def test_a_single_letter_pays_only_on_the_riddle_about_that_letter(letter):
    assert paid_riddles(letter) <= {f"letter {letter}"}


def test_unrelated_substrings_score_zero_but_the_old_reward_paid():
    # the earlier experiment's reward: either string contains the other
    for gaming, answer in [("a", "banana"), ("i", "pine tree"), ("key", "keyboard"),
                           ("e", "echo"), ("", "towel"), ("a candle or an echo", "echo")]:
        assert score(gaming, answer) == 0.0
        assert substring_reward(["p"], [reply(gaming)], answer=[answer])[0] == 1.0


def test_aliases_and_variants_score_one():
    riddle = next(r for r in load_riddles() if r.answer == "footsteps")
    for answer_text in ["footsteps", "Footstep", "the footprints", "Steps!", "A footprint."]:
        assert score(answer_text, riddle.answer, riddle.aliases) == 1.0


def test_aliases_column_is_optional_but_answer_is_required():
    assert riddle_correctness_reward(["p"], [reply("echo")], answer=["echo"], think=[True]) == [1.0]
    with pytest.raises(ValueError, match="answer"):
        riddle_correctness_reward(["p"], [reply("echo")])


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        riddle_correctness_reward(["p"], [reply("echo")], answer=["echo", "towel"], think=[True])


def test_worked_example_replies_are_in_strict_format():
    for shot in load_riddles("shot"):
        assert is_strict_format(format_reply(shot.reasoning, shot.answer))


def test_no_riddle_ignoring_choice_policy_beats_chance():
    for split in ("train", "test"):
        items = make_choices(load_riddles(split))
        table = constant_choice_rewards(items)
        # positions are balanced up to one item: the best position holds ceil(n / 4) answers
        assert table["mean reward"].max() <= math.ceil(len(items) / 4) / len(items) + 1e-9
        hedges = table[~table["policy"].str.startswith("always the candidate")]
        assert (hedges["mean reward"] == 0).all(), hedges


def test_surface_heuristics_commit_and_word_overlap_picks_the_shared_word():
    item = make_choices(load_riddles("test"))[0]
    replies = {name: policy(item) for name, policy in surface_policies().items()}
    assert all(r in item.options for r in replies.values())
    assert replies["the longest candidate"] == max(item.options, key=len)
    rigged = replace(item, text=f"Think of a {item.options[2]}.")
    assert word_overlap_reply(rigged) == item.options[2]
    table = constant_choice_rewards(make_choices(load_riddles("test")), surface_policies())
    assert list(table["policy"]) == list(surface_policies()) and table["mean reward"].between(0, 1).all()


def test_choice_rewards_pay_only_a_committed_right_candidate():
    options = [["kettle", "echo", "alarm clock", "tooth"]] * 5
    replies = ["B) echo", "echo", "B", "echo or kettle", "A) echo"]
    assert riddle_correctness_reward(["p"] * 5, replies, options=options, correct=[1] * 5) == [1, 1, 0, 0, 0]
    assert riddle_format_reward(["p"] * 5, replies, options=options, correct=[1] * 5) == [1, 1, 0, 0, 0]
    assert riddle_format_reward(["p"], ["A) kettle"], options=options[:1], correct=[1]) == [1.0]
