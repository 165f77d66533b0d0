"""How a post's outputs reach the rendered page: figures, tables and charts Quarto can lay out.

Quarto turns notebook outputs into the page, and three kinds of output go wrong there:

- Matplotlib's retina PNGs carry ``width`` *and* ``height`` metadata; Quarto writes both onto the
  ``<img>``, and an image with a ``height`` attribute is left out of its responsive images, so a
  wide figure overflows the text column. :func:`figure_png` keeps the width only.
- Any ``text/html`` output (a pandas DataFrame, a ``Styler``, ``IPython.display.HTML``, Altair's
  HTML renderer) makes Quarto add ``require.js`` and ``jquery`` from a CDN to the page, which
  fail offline; Styler tables also cannot be parsed into Quarto tables. DataFrames are shown as
  markdown tables instead (:func:`markdown_table`), and Altair charts as a raw HTML block inside
  markdown (:func:`altair_markdown`), with the Vega libraries inlined once per page.

:func:`use_page_outputs` installs all three in the running IPython kernel (``notebook.setup``
calls it).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

RAW_HTML = re.compile(r"\A```{=html}\n(?P<html>.*)\n```\s*\Z", re.DOTALL)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|$~^@#])")
_vega_on_page = False


def figure_png(fig) -> tuple[str, dict[str, int]] | None:
    """A matplotlib figure as a 2x (retina) PNG whose metadata gives its CSS width only.

    Without a ``height`` Quarto marks the image ``img-fluid`` (at most the column's width, height
    following), so wide figures shrink to the column instead of overflowing it.
    """
    from IPython.core.pylabtools import retina_figure

    shown = retina_figure(fig, base64=True, bbox_inches="tight")
    if shown is None:  # an empty figure: nothing to show, as matplotlib-inline does
        return None
    data, metadata = shown
    return data, {"width": metadata["width"]}


def escape_markdown(text: str) -> str:
    """``text`` safe inside a markdown table cell: no emphasis, math, citations, tags or pipes."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def markdown_table(df, floatfmt: str | tuple[str, ...] = "g", index: bool | None = None):
    """``df`` as a markdown table Quarto styles, numbers and captions (``#| tbl-cap:``).

    Use it instead of pandas ``Styler`` (which Quarto cannot parse). Numbers: ``floatfmt`` (e.g.
    ``".3f"``, or one format per column), or format columns to strings beforehand. The index is
    shown as ordinary columns headed by its names, unless it is the default ``0..n-1``
    (``index=True/False`` decides); column levels are joined with spaces; missing values are
    blank. Cells are escaped, so model output such as ``<answer>4</answer>``, ``$5`` or
    ``<|endoftext|>`` shows as written; headers are markdown (math like ``$\\beta$`` works).
    """
    import pandas as pd
    from IPython.display import Markdown
    from tabulate import tabulate

    if index is None:
        index = not isinstance(df.index, pd.RangeIndex)
    headers = [_header(c) for c in df.columns]
    rows = df.astype(object).where(df.notna(), None).to_numpy().tolist()
    if index:
        headers = ["" if n is None else _header(n) for n in df.index.names] + headers
        levels = df.index.to_frame(index=False).astype(object).to_numpy().tolist()
        rows = [level + row for level, row in zip(levels, rows, strict=True)]
    cells = [[_cell(v) for v in row] for row in rows]
    text = tabulate(cells, headers, tablefmt="pipe", floatfmt=floatfmt, missingval="")
    return Markdown(text)


def _header(name) -> str:
    parts = name if isinstance(name, tuple) else (name,)
    return " ".join(str(p) for p in parts if str(p)).replace("|", r"\|")


def _cell(value):
    if value is None or isinstance(value, (int, float)):  # numbers stay numbers (floatfmt)
        return value
    return escape_markdown(str(value))


def _dataframe_markdown(df) -> str:
    return markdown_table(df).data


def altair_markdown(spec: dict, **embed_options: Any) -> dict[str, str]:
    """An Altair renderer: the chart as a ``{=html}`` raw block in a ``text/markdown`` output.

    The first chart of a kernel carries the Vega, Vega-Lite and vega-embed libraries (inlined,
    about 0.9 MB); later charts on the page reuse them. So the first chart must be displayed
    (not in an ``include: false`` cell) for the others to draw.
    """
    global _vega_on_page
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    chart_id = f"altair-{uuid.uuid4().hex[:12]}"
    options = {"mode": "vega-lite", "actions": False, **embed_options}
    # The bundle's templates hold "<table" text: tell Quarto not to parse the block for tables.
    parts = ["<!--| quarto-html-table-processing: none -->"]
    if not _vega_on_page:
        bundle = vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())
        parts.append(f'<script type="text/javascript">\n{bundle}\n</script>')
        _vega_on_page = True
    parts.append(
        f'<div id="{chart_id}" class="altair-chart"></div>\n'
        '<script type="text/javascript">\n'
        f"vegaEmbed({json.dumps('#' + chart_id)}, {json.dumps(spec)}, {json.dumps(options)})"
        ".catch(console.error);\n</script>"
    )
    html = "\n".join(parts)
    if "\n```" in html:
        raise ValueError(
            "An Altair chart's HTML holds a line starting with ``` (the raw block fence)."
        )
    return {"text/markdown": "```{=html}\n" + html + "\n```\n"}


def use_page_outputs() -> None:
    """Show figures, DataFrames and Altair charts as Quarto lays them out well (see module doc)."""
    global _vega_on_page
    import altair as alt

    if "llm_exploration" not in alt.renderers.names():
        alt.renderers.register("llm_exploration", altair_markdown)
    alt.renderers.enable("llm_exploration")
    _vega_on_page = False

    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:  # a plain Python process: nothing is displayed
        return
    # The inline backend installs its own figure formatters when first loaded: load it, then
    # replace them.
    import matplotlib_inline.backend_inline  # noqa: F401
    import pandas as pd
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    formatters["image/png"].for_type(Figure, figure_png)
    for mime in ("image/jpeg", "image/svg+xml", "application/pdf"):
        formatters[mime].pop(Figure, None)
    formatters["text/html"].for_type(pd.DataFrame, lambda df: None)
    formatters["text/markdown"].for_type(pd.DataFrame, _dataframe_markdown)
