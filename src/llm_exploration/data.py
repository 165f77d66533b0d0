"""Public datasets by hub id, from the Hugging Face hub or a local mirror.

Set ``LLM_EXPLORATION_DATA_MIRROR`` to a folder laid out as
``<owner>/<name>/<config>/<split>.jsonl`` (one JSON object per line, same columns, splits and
row order as the hub) and :func:`load_dataset` reads from it; otherwise it asks the hub.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from .settings import InputError, SettingError

MIRROR_ENV_VAR = "LLM_EXPLORATION_DATA_MIRROR"
DEFAULT_CONFIG = "default"


class MirrorEntryMissingError(InputError, FileNotFoundError):
    """The configured mirror has no file for the requested dataset, config and split."""


class MirrorNotFoundError(SettingError, NotADirectoryError):
    """``$LLM_EXPLORATION_DATA_MIRROR`` names something that is not a folder."""


class DatasetUnreachableError(InputError, ConnectionError):
    """The hub could not serve a dataset and no mirror is set."""


def mirror_root() -> Path | None:
    """The mirror folder named by ``$LLM_EXPLORATION_DATA_MIRROR``, or None when unset."""
    value = os.environ.get(MIRROR_ENV_VAR, "").strip()
    if not value:
        return None
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise MirrorNotFoundError(
            setting=MIRROR_ENV_VAR, value=value, source="the environment",
            expected="a folder laid out as <owner>/<name>/<config>/<split>.jsonl",
            hint=f"{root} is not a folder; fix the path, or unset it to use the Hugging Face hub.",
        )
    return root


def mirror_path(root: Path, hub_id: str, config: str | None, split: str) -> Path:
    """Where the mirror keeps ``hub_id``/``config``/``split``."""
    return root / hub_id / (config or DEFAULT_CONFIG) / f"{split}.jsonl"


def load_dataset(
    hub_id: str, config: str | None = None, *, split: str = "train"
) -> datasets.Dataset:
    """Load one split of a public dataset as a :class:`datasets.Dataset`.

    Reads the local mirror when ``$LLM_EXPLORATION_DATA_MIRROR`` is set (same columns and rows as
    the hub), else calls :func:`datasets.load_dataset` on the hub.
    """
    if "/" not in hub_id:
        raise SettingError(setting="hub_id", value=hub_id, expected="a dataset id 'owner/name'")
    root = mirror_root()
    if root is None:
        try:
            return datasets.load_dataset(hub_id, config, split=split)
        except Exception as err:  # the hub raises many types for 'offline'
            raise DatasetUnreachableError(
                f"Could not load {hub_id!r} (config={config!r}, split={split!r}) from the Hugging "
                f"Face hub: {type(err).__name__}: {err}. Without network, set {MIRROR_ENV_VAR} to "
                "a local mirror folder (for example ../shared/data)."
            ) from err
    path = mirror_path(root, hub_id, config, split)
    if not path.is_file():
        available = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/*/*.jsonl"))
        raise MirrorEntryMissingError(
            f"The data mirror has no {hub_id!r} config={config!r} split={split!r}: looked for "
            f"{path}. Available: {', '.join(available) or 'nothing'}."
        )
    return datasets.Dataset.from_json(str(path), split=datasets.Split(split) if split else None)
