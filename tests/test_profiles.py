import pytest

from llm_exploration.profiles import PROFILES, UnknownProfileError, by_profile, resolve_profile


def test_default_is_cpu(monkeypatch):
    monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    assert resolve_profile() == "cpu"
    assert resolve_profile("smoke") == "smoke"


def test_environment_overrides_parameter(monkeypatch):
    monkeypatch.setenv("LLM_EXPLORATION_PROFILE", "gpu")
    assert resolve_profile("smoke") == "gpu"


@pytest.mark.parametrize("bad", ["CPU", "fast", ""])
def test_unknown_profile_lists_valid_ones(monkeypatch, bad):
    monkeypatch.delenv("LLM_EXPLORATION_PROFILE", raising=False)
    with pytest.raises(UnknownProfileError, match="smoke, cpu, gpu"):
        resolve_profile(bad)


def test_unknown_profile_from_environment(monkeypatch):
    monkeypatch.setenv("LLM_EXPLORATION_PROFILE", "laptop")
    with pytest.raises(UnknownProfileError, match="'laptop'"):
        resolve_profile("cpu")


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
