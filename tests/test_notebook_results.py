"""results.json: what a post records, where it lands, and what cannot be stored."""

import json
import math

import numpy as np
import pytest
import torch

from llm_exploration import notebook


@pytest.fixture
def post_folder(tmp_path, monkeypatch):
    folder = tmp_path / "posts" / "demo"
    folder.mkdir(parents=True)
    (folder / "index.qmd").write_text("---\ntitle: demo\n---\n")
    monkeypatch.chdir(folder)
    monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    return folder


def read(folder):
    return json.loads((folder / "_output" / "results.json").read_text())


def test_setup_starts_a_fresh_file_with_post_and_profile(post_folder):
    notebook.start_results("smoke")
    notebook.record("old", 1)
    notebook.start_results("cpu")
    data = read(post_folder)
    assert data["post"] == "demo"
    assert data["profile"] == "cpu"
    assert data["values"] == {}
    assert data["finished"] is False


def test_record_converts_numpy_torch_and_nonfinite(post_folder):
    notebook.start_results("smoke")
    returned = notebook.record("acc", np.float32(0.5))
    assert returned == np.float32(0.5)
    notebook.record("per_seed", {"dense": torch.tensor([0.25, 0.5]), "n": np.int64(3)})
    notebook.record("nan", float("nan"))
    notebook.record("seeds", (0, 1, 2))
    values = read(post_folder)["values"]
    assert values == {
        "acc": 0.5,
        "per_seed": {"dense": [0.25, 0.5], "n": 3},
        "nan": None,
        "seeds": [0, 1, 2],
    }


def test_finish_stamps_the_run_time(post_folder):
    notebook.start_results("smoke")
    seconds = notebook.finish()
    data = read(post_folder)
    assert data["finished"] is True
    assert math.isclose(data["run_time_s"], seconds) and seconds >= 0


def test_unstorable_value_names_the_record(post_folder):
    notebook.start_results("smoke")
    with pytest.raises(TypeError, match="record\\('model'\\).*object"):
        notebook.record("model", object())


@pytest.mark.parametrize("has_index", [False, True], ids=["plain folder", "site root"])
def test_outside_a_post_folder_nothing_is_written(tmp_path, monkeypatch, has_index):
    if has_index:  # the site's root holds an index.qmd too, but it is not a post
        (tmp_path / "index.qmd").write_text("---\ntitle: home\n---\n")
    monkeypatch.chdir(tmp_path)
    notebook.start_results("smoke")
    notebook.record("x", 1)
    assert not (tmp_path / "_output").exists()
    assert notebook.results()["values"] == {"x": 1}


def test_the_site_home_page_is_not_a_post(tmp_path):
    (tmp_path / "index.qmd").write_text("---\ntitle: home\n---\n")  # the project root's home page
    assert notebook.results_path(tmp_path) is None
    post = tmp_path / "posts" / "demo"
    post.mkdir(parents=True)
    (post / "index.qmd").write_text("---\ntitle: demo\n---\n")
    assert notebook.results_path(post) == post / "_output" / "results.json"
