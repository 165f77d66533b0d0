"""Profiles: one post, three scales.

- ``smoke``: CI. Seconds to about two minutes per post; proves the code path, not the science.
- ``cpu``: the default and the published site. Small real models and real data on a laptop CPU.
- ``gpu``: paper scale, hub models and full datasets on a CUDA GPU.

One rule picks the profile: the command-line flag (``--profile`` of ``python -m
llm_exploration.posts``) when given, else the environment variable ``LLM_EXPLORATION_PROFILE``,
else the post's parameters cell (``profile = "cpu"``; Quarto's ``-P profile:gpu`` rewrites that
cell, so it ranks as the cell). Every value given is checked, used or not.
"""

from __future__ import annotations

import os
from typing import TypeVar

from .settings import SettingError, one_of

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
DEFAULT_PROFILE = "cpu"
ENV_VAR = "LLM_EXPLORATION_PROFILE"
FLAG = "--profile"
CELL = "the post's parameters cell or quarto -P profile:..."

T = TypeVar("T")


class UnknownProfileError(SettingError):
    """A profile name that is not one of :data:`PROFILES`."""


def check_profile(name: str, source: str | None = None) -> str:
    """Return ``name`` if it is a valid profile, else raise an error listing the valid ones."""
    if name not in PROFILES:
        raise UnknownProfileError(setting="profile", value=name, expected=one_of(PROFILES),
                                  source=source)
    return name


def resolve_profile(cell: str | None = None, *, flag: str | None = None) -> str:
    """The profile a run uses: ``flag`` when given, else ``$LLM_EXPLORATION_PROFILE`` (when set
    and not empty), else ``cell`` (the post's parameters cell), else ``cpu``.

    Each of the three that is given must be a valid profile, even when another one wins."""
    env = os.environ.get(ENV_VAR, "").strip() or None
    given = [(value, source) for value, source in
             ((flag, FLAG), (env, f"environment variable {ENV_VAR}"), (cell, CELL))
             if value is not None]
    for value, source in given:
        check_profile(value, source)
    return given[0][0] if given else DEFAULT_PROFILE


def by_profile(profile: str, *, smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for ``profile``: ``by_profile(p, smoke=5, cpu=2_000, gpu=20_000)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[check_profile(profile)]
