import pytest

from llm_exploration.profiles import PROFILES, UnknownProfileError, by_profile, resolve_profile

VALID = "one of 'smoke', 'cpu', 'gpu'"


def test_default_is_cpu(monkeypatch):
    monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    assert resolve_profile() == "cpu"
    assert resolve_profile("smoke") == "smoke"


# The rule: the command-line flag when given, else LLM_EXPLORATION_PROFILE, else the post's cell.
@pytest.mark.parametrize("flag, env, cell, expected", [
    ("gpu", "smoke", "cpu", "gpu"),      # the flag beats the variable and the cell
    ("smoke", None, "cpu", "smoke"),     # the flag beats the cell
    (None, "smoke", "cpu", "smoke"),     # the variable beats the cell (and quarto -P, which sets the cell)
    (None, "", "gpu", "gpu"),            # an empty variable counts as unset
    (None, None, "gpu", "gpu"),          # the cell alone
    (None, None, None, "cpu"),           # nothing given: cpu
])
def test_profile_precedence(monkeypatch, flag, env, cell, expected):
    if env is None:
        monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    else:
        monkeypatch.setenv("LLM_EXPLORATION_PROFILE", env)
    assert resolve_profile(cell, flag=flag) == expected


@pytest.mark.parametrize("bad", ["CPU", "fast", ""])
def test_unknown_profile_lists_valid_ones(monkeypatch, bad):
    monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    with pytest.raises(UnknownProfileError, match=VALID):
        resolve_profile(bad)


@pytest.mark.parametrize("flag, env, cell, source", [
    ("laptop", None, "cpu", "--profile"),
    (None, "laptop", "cpu", "environment variable LLM_EXPLORATION_PROFILE"),
    ("cpu", "laptop", "cpu", "environment variable LLM_EXPLORATION_PROFILE"),  # checked though the flag wins
    ("cpu", None, "laptop", "parameters cell"),
])
def test_an_invalid_profile_from_any_source_is_named_with_its_source(monkeypatch, flag, env, cell, source):
    if env is None:
        monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    else:
        monkeypatch.setenv("LLM_EXPLORATION_PROFILE", env)
    with pytest.raises(UnknownProfileError) as err:
        resolve_profile(cell, flag=flag)
    assert "profile='laptop'" in str(err.value) and source in str(err.value) and VALID in str(err.value)


def test_by_profile_picks_and_checks():
    assert [by_profile(p, smoke=1, cpu=2, gpu=3) for p in PROFILES] == [1, 2, 3]
    with pytest.raises(UnknownProfileError):
        by_profile("tpu", smoke=1, cpu=2, gpu=3)


def test_setup_quiets_lightning_even_when_imported_first(monkeypatch):
    import logging

    from llm_exploration.notebook import setup

    monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    assert setup("smoke") == "smoke"
    import lightning.pytorch  # noqa: F401

    assert logging.getLogger("lightning.pytorch").getEffectiveLevel() >= logging.ERROR
