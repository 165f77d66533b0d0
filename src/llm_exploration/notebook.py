"""What every post calls: setup in its first cell, record for its headline numbers, finish last.

``PROFILE = setup(profile)`` resolves the profile (``$LLM_EXPLORATION_PROFILE`` wins), turns off
progress bars and library warnings so they do not spill into the rendered page, sets a readable
matplotlib style, makes figures, DataFrames and Altair charts reach the page in forms Quarto lays
out offline (see ``display``), and starts the post's ``_output/results.json``. Show a table with
``markdown_table(df)`` (never a pandas ``Styler``).

``record(name, value)`` adds a number the post's prose rests on to that file (rewritten at every
call, so a run that stops half way still leaves what it measured); ``finish()`` in the last cell
stamps the whole run time. The file holds the post, profile, start time, run time and every
recorded value: the machine-readable form of the post's results.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .display import markdown_table, use_page_outputs  # noqa: F401  (posts import it from here)
from .profiles import resolve_profile

THUMBNAIL = "thumbnail.png"
RESULTS = Path("_output") / "results.json"
T = TypeVar("T")


def quiet() -> None:
    """Silence progress bars and library warnings (transformers, datasets, Lightning, tqdm)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    import datasets
    import lightning.pytorch  # noqa: F401  (importing it resets its loggers to INFO: import first)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    for name in (
        "lightning",
        "lightning.pytorch",
        "lightning.fabric",
        "pytorch_lightning",
        "trl",
        "peft",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def style_figures() -> None:
    """Matplotlib defaults readable at blog width; figures, tables and charts fit the page."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )
    # Figures responsive, DataFrames as markdown tables, Altair charts with their libraries
    # inlined once per page: no CDN script, nothing wider than the column.
    use_page_outputs()


def setup(profile: str | None = None) -> str:
    """Prepare a post's kernel, start its ``results.json`` and return the profile it runs at."""
    resolved = resolve_profile(profile)
    quiet()
    style_figures()
    start_results(resolved)
    return resolved


# --- results.json -------------------------------------------------------------------------------

_results: dict[str, Any] = {}
_started: float = 0.0


def results_path(folder: Path | None = None) -> Path | None:
    """``posts/<slug>/_output/results.json`` when ``folder`` (default: cwd) is a post's folder.

    Quarto, ``python -m llm_exploration.posts run`` and nbmake all execute a post in its folder
    (``posts/<slug>/``, holding ``index.qmd``); anywhere else (the site's root, a test, an
    interactive session) results stay in memory only.
    """
    folder = (folder or Path.cwd()).resolve()
    is_post = folder.parent.name == "posts" and (folder / "index.qmd").is_file()
    return folder / RESULTS if is_post else None  # not the site's home page (also index.qmd)


def start_results(profile: str) -> None:
    """Begin a fresh results record for a run at ``profile`` (called by :func:`setup`)."""
    global _started
    _started = time.perf_counter()
    path = results_path()
    _results.clear()
    _results.update(
        post=path.parent.parent.name if path else None,
        profile=profile,
        started=dt.datetime.now().isoformat(timespec="seconds"),
        run_time_s=0.0,
        finished=False,
        values={},
    )
    _write()


def record(name: str, value: T) -> T:
    """Record ``value`` under ``name`` in the post's ``results.json``; return ``value``.

    Values may be numbers, strings, booleans, None, lists/tuples, dicts with string keys,
    dataclasses, numpy or torch scalars and arrays. Non-finite floats are stored as null.
    """
    if not _results:
        raise RuntimeError("record() before setup(): call notebook.setup(profile) in the first cell.")
    if not isinstance(name, str) or not name:
        raise TypeError(f"record() needs a non-empty string name, got {name!r}.")
    _results["values"][name] = _jsonable(value, name)
    _write()
    return value


def finish() -> float:
    """Stamp the run as finished with its total run time (seconds since ``setup``); return it."""
    if not _results:
        raise RuntimeError("finish() before setup(): call notebook.setup(profile) in the first cell.")
    _results["finished"] = True
    _write()
    return _results["run_time_s"]


def results() -> dict[str, Any]:
    """A copy of everything recorded so far (what ``results.json`` holds)."""
    return json.loads(json.dumps(_results))


def _write() -> None:
    _results["run_time_s"] = round(time.perf_counter() - _started, 1)
    path = results_path()
    if path is None:
        return
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_results, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _jsonable(value: Any, name: str) -> Any:
    """``value`` as plain JSON types; a TypeError naming ``name`` for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / torch scalars and arrays
        return _jsonable(value.tolist(), name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value), name)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"record({name!r}): dict keys must be strings, got {key!r}.")
            out[str(key)] = _jsonable(item, name)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, name) for item in value]
    raise TypeError(
        f"record({name!r}): cannot store a {type(value).__name__} in results.json; "
        "record numbers, strings, lists or dicts of them."
    )


def save_thumbnail(fig, profile: str, path: str | Path = THUMBNAIL) -> None:
    """Save ``fig`` as the post's listing image, except in the ``smoke`` profile."""
    if profile == "smoke":
        return
    fig.savefig(path, dpi=80, bbox_inches="tight")
