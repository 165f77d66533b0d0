from collections import Counter

import pytest

from llm_exploration.riddles import load_riddles
from llm_exploration.riddles.answers import normalise_words
from llm_exploration.riddles.choices import answer_words, chosen_option, make_choices, strip_lead_in

OPTIONS = ("kettle", "echo", "alarm clock", "tooth")


@pytest.mark.parametrize("split", ["train", "test"])
def test_positions_are_balanced_and_distractors_come_from_the_same_split(split):
    riddles = load_riddles(split)
    items = make_choices(riddles)
    counts = Counter(item.correct for item in items)
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) - min(counts.values()) <= 1
    answers = {r.answer for r in riddles}
    for item in items:
        assert item.options[item.correct] == item.riddle.answer
        assert set(item.options) <= answers and len(set(item.options)) == 4


def test_no_candidate_shares_a_word_with_another_or_with_an_alias():
    for item in make_choices(load_riddles("test")) + make_choices(load_riddles("train")):
        words = [set(normalise_words(o)) for o in item.options]
        taken = set(normalise_words(item.riddle.answer)).union(*(normalise_words(a) for a in item.riddle.aliases))
        for k, w in enumerate(words):
            if k != item.correct:
                assert not w & taken, (item.riddle.id, item.options)
            assert all(not w & other for j, other in enumerate(words) if j != k)


def test_choices_are_reproducible_and_seeded():
    riddles = load_riddles("test")
    assert make_choices(riddles) == make_choices(riddles)
    assert make_choices(riddles, seed=1) != make_choices(riddles)


def test_reworded_items_show_the_rewording_with_a_new_draw():
    riddles = load_riddles("test")
    original, reworded = make_choices(riddles), make_choices(riddles, wording="reworded")
    assert all(r.text == r.riddle.reworded != o.text for o, r in zip(original, reworded))
    assert sum(o.options != r.options for o, r in zip(original, reworded)) > len(riddles) // 2
    with pytest.raises(ValueError, match="no rewording"):
        make_choices([r for r in load_riddles("train") if not r.reworded][:2], wording="reworded")


def test_too_few_answers_for_distractors_is_a_clear_error():
    with pytest.raises(ValueError, match="distractors"):
        make_choices(load_riddles("test")[:3])


@pytest.mark.parametrize("reply, chosen", [
    ("echo", 1), ("Echo.", 1), ("An echo", 1), ("B) echo", 1), ("(B) echo", 1), ("b. Echo", 1),
    ("B: echo", 1), ("The answer is B) echo.", 1), ("The correct answer is echo", 1),
    ("Answer: D) tooth", 3), ("teeth", 3), ("C) alarm clock", 2), ("It is a kettle!", 0),
    ("C). alarm clock", 2),
])
def test_committed_replies(reply, chosen):
    assert chosen_option(reply, OPTIONS) == chosen


@pytest.mark.parametrize("reply", [
    "", "B", "(B)", "B.", "b)", "A) echo", "echo or kettle", "kettle, echo", "A) kettle B) echo",
    "A B C D", "kettle echo alarm clock tooth", "clock", "alarm", "the answer", "None of the above",
    "echo echo", "E) echo", "I think it is probably an echo because of the cliffs", "x" * 500,
])
def test_replies_that_do_not_commit_to_one_candidate(reply):
    assert chosen_option(reply, OPTIONS) is None


def test_lead_in_is_stripped_once():
    assert strip_lead_in("The correct answer is: B) echo") == "B) echo"
    assert strip_lead_in("My final answer would be echo") == "echo"
    assert strip_lead_in("answer answer") == "answer"


def test_answer_words_drop_the_letter_and_lead_in():
    assert answer_words("The answer is B) alarm clock.") == ["alarm", "clock"]
    assert answer_words("kettle") == ["kettle"] and answer_words(None) == []
