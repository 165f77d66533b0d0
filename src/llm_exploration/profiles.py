"""Profiles: one post, three scales.

- ``smoke``: CI. Seconds to about two minutes per post; proves the code path, not the science.
- ``cpu``: the default and the published site. Small real models and real data on a laptop CPU.
- ``gpu``: paper scale, hub models and full datasets on a CUDA GPU.

A post's parameters cell sets ``profile = "cpu"`` (Quarto's ``-P profile:gpu`` overrides it);
the environment variable ``LLM_EXPLORATION_PROFILE`` overrides both.
"""

from __future__ import annotations

import os
from typing import TypeVar

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
DEFAULT_PROFILE = "cpu"
ENV_VAR = "LLM_EXPLORATION_PROFILE"

T = TypeVar("T")


class UnknownProfileError(ValueError):
    """A profile name that is not one of :data:`PROFILES`."""


def check_profile(name: str) -> str:
    """Return ``name`` if it is a valid profile, else raise an error listing the valid ones."""
    if name not in PROFILES:
        raise UnknownProfileError(
            f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)} "
            f"(set it in the post's parameters cell or with {ENV_VAR}=<profile>)."
        )
    return name


def resolve_profile(name: str | None = None) -> str:
    """The profile a run uses: ``$LLM_EXPLORATION_PROFILE`` if set, else ``name``, else ``cpu``."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return check_profile(env)
    return check_profile(name if name is not None else DEFAULT_PROFILE)


def by_profile(profile: str, *, smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for ``profile``: ``by_profile(p, smoke=5, cpu=2_000, gpu=20_000)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[check_profile(profile)]
