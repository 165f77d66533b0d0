"""Shared fixtures: the embedded models, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2():
    from llm_exploration.models import load_causal_lm

    return load_causal_lm("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def minilm():
    from llm_exploration.models import load_encoder

    return load_encoder("all-minilm-l6-v2")
