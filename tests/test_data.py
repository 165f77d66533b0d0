from pathlib import Path

import pytest

from llm_exploration.data import MIRROR_ENV_VAR, MirrorEntryMissingError, load_dataset

MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def mirror(monkeypatch):
    import os

    root = os.environ.get(MIRROR_ENV_VAR) or (str(MIRROR) if MIRROR.is_dir() else None)
    if root is None:
        pytest.skip(f"no data mirror: set {MIRROR_ENV_VAR}")
    monkeypatch.setenv(MIRROR_ENV_VAR, root)
    return Path(root)


def test_gsm8k_test_split_row_count(mirror):
    ds = load_dataset("openai/gsm8k", "main", split="test")
    assert len(ds) == 1319
    assert ds.column_names == ["question", "answer"]
    assert "####" in ds[0]["answer"]


def test_tweet_eval_offensive_train_row_count(mirror):
    ds = load_dataset("cardiffnlp/tweet_eval", "offensive", split="train")
    assert len(ds) == 11916
    assert set(ds["label"]) == {0, 1}


def test_mirror_keeps_row_order(mirror):
    first = (mirror / "openai/gsm8k/main/test.jsonl").read_text().splitlines()[0]
    import json

    assert load_dataset("openai/gsm8k", "main", split="test")[0] == json.loads(first)


def test_missing_mirror_entry_names_the_file(mirror):
    with pytest.raises(MirrorEntryMissingError, match=r"openai/gsm8k/main/validation\.jsonl"):
        load_dataset("openai/gsm8k", "main", split="validation")


def test_mirror_that_is_not_a_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(MIRROR_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(NotADirectoryError, match=MIRROR_ENV_VAR) as err:
        load_dataset("openai/gsm8k", "main", split="test")
    assert "nowhere' (from the environment) is invalid: expected a folder laid out as" in str(err.value)


def test_without_mirror_and_hub_says_how_to_fix(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV_VAR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match=MIRROR_ENV_VAR):
        load_dataset("someone/not-a-cached-dataset", split="train")
