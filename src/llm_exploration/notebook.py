"""What the first cell of every post calls: profile, quiet libraries, figure style.

``PROFILE = setup(profile)`` resolves the profile (``$LLM_EXPLORATION_PROFILE`` wins), turns off
progress bars and library warnings so they do not spill into the rendered page, sets a readable
matplotlib style, and makes Altair charts carry their JavaScript inline so pages work offline.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from .profiles import resolve_profile

THUMBNAIL = "thumbnail.png"


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
    """Matplotlib defaults readable at blog width; Altair with its libraries inlined."""
    import altair as alt
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
    # "inline" embeds vega, vega-lite and vega-embed in the page (no CDN), via vl-convert.
    alt.renderers.enable("html", template="inline")


def setup(profile: str | None = None) -> str:
    """Prepare a post's kernel and return the profile it runs at."""
    resolved = resolve_profile(profile)
    quiet()
    style_figures()
    return resolved


def save_thumbnail(fig, profile: str, path: str | Path = THUMBNAIL) -> None:
    """Save ``fig`` as the post's listing image, except in the ``smoke`` profile."""
    if profile == "smoke":
        return
    fig.savefig(path, dpi=80, bbox_inches="tight")
