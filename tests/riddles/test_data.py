import pytest

from llm_exploration.data import MIRROR_ENV_VAR
from llm_exploration.riddles import is_correct, load_hub_riddles, load_riddles, normalise_answer
from llm_exploration.riddles.data import HUB_ID


def test_size_and_fixed_split():
    riddles = load_riddles()
    assert len(riddles) >= 300
    splits = [r.split for r in riddles]
    assert (splits.count("train"), splits.count("test"), splits.count("shot")) == (217, 103, 2)
    assert [r.id for r in load_riddles("test")][:3] == ["r003", "r004", "r012"]  # split is stored


def test_no_duplicates():
    riddles = load_riddles()
    assert len({r.id for r in riddles}) == len(riddles)
    assert len({normalise_answer(r.riddle) for r in riddles}) == len(riddles)
    answers = [normalise_answer(r.answer) for r in riddles]
    assert len(set(answers)) == len(answers)


def _content_words(text: str) -> set[str]:
    stop = {"i", "am", "what", "me", "my", "you", "your", "and", "but", "of", "to", "in", "on", "it",
            "is", "are", "have", "has", "no", "not", "can", "with", "that", "for", "at", "or", "be",
            "when", "who", "by", "as", "from", "one", "all", "never", "every", "up", "so", "we",
            "they", "them", "if", "into", "out", "do", "does", "this", "there", "their", "without"}
    return {w for w in normalise_answer(text).split() if w not in stop and len(w) > 2}


def test_no_near_duplicates_across_splits():
    """No test riddle (or its rewording) shares 60% or more of its content words with a training
    riddle (or its rewording), and no answer appears in two splits. (The closest pairs today,
    at 57%, are different answers in one template: "Which ship..." riddles, sea creatures with
    arms and ink.)"""
    def texts(r):
        return [r.riddle] + ([r.reworded] if r.reworded else [])

    train = [(r, _content_words(t)) for r in load_riddles("train") for t in texts(r)]
    for r in load_riddles("test") + load_riddles("shot"):
        for t in texts(r):
            words = _content_words(t)
            for other, w in train:
                overlap = len(words & w) / max(1, min(len(words), len(w)))
                assert overlap < 0.6, (r.id, other.id, sorted(words & w))
    by_split = {s: {normalise_answer(r.answer) for r in load_riddles(s)} for s in ("train", "test", "shot")}
    assert not by_split["train"] & by_split["test"] and not by_split["shot"] & by_split["test"]


def test_every_test_riddle_has_a_rewording_and_so_do_some_training_riddles():
    assert all(r.reworded for r in load_riddles("test"))
    assert sum(bool(r.reworded) for r in load_riddles("train")) >= 60


def test_answers_are_accepted_and_short():
    for r in load_riddles():
        assert is_correct(r.answer, r.answer, r.aliases)
        for alias in r.aliases:
            assert is_correct(alias, r.answer, r.aliases)
        assert 1 <= len(normalise_answer(r.answer).split()) <= 3, r.id


def test_no_riddle_accepts_one_letter_a_or_i():
    for r in load_riddles():
        if r.answer not in ("letter a", "letter i"):  # the riddles about those letters
            assert not is_correct("a", r.answer, r.aliases)
            assert not is_correct("i", r.answer, r.aliases)


def test_worked_examples_are_not_evaluated_on():
    shots = load_riddles("shot")
    assert all(r.reasoning for r in shots)
    shot_answers = {normalise_answer(r.answer) for r in shots}
    assert not shot_answers & {normalise_answer(r.answer) for r in load_riddles("test")}


def test_both_kinds_in_test_split():
    kinds = {r.kind for r in load_riddles("test")}
    assert kinds == {"descriptive", "wordplay"}


def test_bad_split_name_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        load_riddles("validation")


def test_hub_riddles_unreachable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV_VAR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="Hypersniper/riddles_v1"):
        load_hub_riddles()


def test_hub_riddles_from_a_mirror_keep_short_answers(tmp_path, monkeypatch):
    folder = tmp_path / HUB_ID / "default"
    folder.mkdir(parents=True)
    rows = [
        '{"instruction": "What has keys but no locks?", "answer": "A piano"}',
        '{"instruction": "Long one?", "answer": "It is a long explanation with many words in it"}',
        '{"instruction": "", "answer": "empty"}',
    ]
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv(MIRROR_ENV_VAR, str(tmp_path))
    riddles, dropped = load_hub_riddles()
    assert dropped == 2
    assert [(r.riddle, r.answer, r.split, r.source) for r in riddles] == [
        ("What has keys but no locks?", "A piano", "train", HUB_ID)]
    assert is_correct("pianos", riddles[0].answer)


def test_hub_riddles_with_unknown_columns_name_them(tmp_path, monkeypatch):
    folder = tmp_path / HUB_ID / "default"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text('{"q": "x", "a": "y"}\n')
    monkeypatch.setenv(MIRROR_ENV_VAR, str(tmp_path))
    with pytest.raises(ValueError, match="found q, a"):
        load_hub_riddles()
