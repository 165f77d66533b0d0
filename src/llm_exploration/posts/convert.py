"""Convert a Quarto post (``index.qmd``) to a Jupyter notebook, without Quarto.

What Quarto would execute is what the notebook executes:

- ```` ```{python} ```` chunks become code cells; their ``#| key: value`` options stay in the
  source (Quarto reads them there in notebooks too) and are parsed into ``metadata.quarto``.
- ``#| tags: [...]`` become cell tags, so the ``parameters`` cell stays tagged.
- ``#| eval: false`` cells get the ``skip-execution`` tag, which nbclient (and nbmake) skip.
- A ``profile`` argument adds an ``injected-parameters`` cell after the parameters cell, as
  ``quarto render -P profile:<p>`` does.
- The front matter becomes the first (raw) cell; other text becomes markdown cells.
- Markdown with inline expressions (`` `{python} expr` ``) becomes a code cell tagged
  ``inline-markdown`` that displays the text with the expressions evaluated, so they run
  (and can fail) as they would under Quarto.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import yaml

from ..settings import InputError

CHUNK_START = re.compile(r"^(?P<fence>`{3,})\s*\{python(?:[\s,][^}]*)?\}\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")
OPTION = re.compile(r"^#\|\s?(.*)$")
INLINE = re.compile(r"`\{python\}\s+([^`]+?)`")
SKIP_TAG = "skip-execution"
INLINE_TAG = "inline-markdown"


class PostFormatError(InputError):
    """A post that cannot be converted (unclosed chunk, bad cell options, ...)."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Return the YAML front matter (``{}`` if none) and the body after it."""
    if not text.startswith("---"):
        return {}, text
    match = re.match(r"^---\s*\n(.*?)\n---\s*(?:\n|$)", text, flags=re.DOTALL)
    if match is None:
        raise PostFormatError("The front matter starts with '---' but has no closing '---' line.")
    meta = yaml.safe_load(match.group(1)) or {}
    return meta, text[match.end() :]


def cell_options(source: str, where: str = "") -> dict[str, Any]:
    """Parse the leading ``#|`` lines of a chunk as YAML."""
    lines = []
    for line in source.splitlines():
        m = OPTION.match(line)
        if not m:
            break
        lines.append(m.group(1))
    if not lines:
        return {}
    try:
        options = yaml.safe_load("\n".join(lines)) or {}
    except yaml.YAMLError as err:
        raise PostFormatError(f"Cell options {where} are not valid YAML: {err}") from err
    if not isinstance(options, dict):
        raise PostFormatError(f"Cell options {where} must be 'key: value' lines.")
    return options


def _chunks(body: str) -> list[tuple[str, str, int]]:
    """Split the body into ("markdown" | "code", text, first line number) pieces."""
    pieces: list[tuple[str, str, int]] = []
    buf: list[str] = []
    kind, start = "markdown", 1
    md_fence: str | None = None  # inside a non-executed fenced block of the markdown
    code_fence = ""
    for number, line in enumerate(body.splitlines(), start=1):
        if kind == "code":
            if line.strip() == code_fence:
                pieces.append(("code", "\n".join(buf), start))
                buf, kind, start = [], "markdown", number + 1
            else:
                buf.append(line)
            continue
        if md_fence is None:
            m = CHUNK_START.match(line)
            if m:
                pieces.append(("markdown", "\n".join(buf), start))
                buf, kind, start, code_fence = [], "code", number + 1, m.group("fence")
                continue
            f = FENCE.match(line)
            if f:
                md_fence = f.group("fence")
        elif line.strip().startswith(md_fence) and line.strip() == md_fence[0] * len(line.strip()):
            md_fence = None
        buf.append(line)
    if kind == "code":
        raise PostFormatError(f"The python chunk starting at body line {start} is never closed.")
    pieces.append(("markdown", "\n".join(buf), start))
    return [p for p in pieces if p[0] == "code" or p[1].strip()]


def _markdown_cell(text: str) -> nbformat.NotebookNode:
    if not INLINE.search(text):
        return nbformat.v4.new_markdown_cell(text)
    parts: list[str] = []
    last = 0
    for m in INLINE.finditer(text):
        parts.append(repr(text[last : m.start()]))
        parts.append(f"str({m.group(1).strip()})")
        last = m.end()
    parts.append(repr(text[last:]))
    source = "from IPython.display import Markdown\nMarkdown(" + " + ".join(parts) + ")"
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INLINE_TAG]
    return cell


def qmd_to_notebook(path: str | Path, profile: str | None = None) -> nbformat.NotebookNode:
    """Read a ``.qmd`` post and return the notebook Quarto would execute."""
    path = Path(path)
    meta, body = split_front_matter(path.read_text(encoding="utf-8"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    execute = meta.get("execute") or {}
    if isinstance(execute, dict) and "timeout" in execute:
        nb.metadata["execution"] = {"timeout": execute["timeout"]}
    if meta:
        nb.cells.append(
            nbformat.v4.new_raw_cell("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---")
        )
    injected = False
    for kind, text, line in _chunks(body):
        if kind == "markdown":
            nb.cells.append(_markdown_cell(text.strip("\n")))
            continue
        options = cell_options(text, where=f"in {path} (chunk at body line {line})")
        cell = nbformat.v4.new_code_cell(text)
        tags = options.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        if options.get("eval") is False:
            tags = [*tags, SKIP_TAG]
        if tags:
            cell.metadata["tags"] = list(tags)
        if options:
            cell.metadata["quarto"] = options
        nb.cells.append(cell)
        if profile is not None and "parameters" in tags and not injected:
            injection = nbformat.v4.new_code_cell(f"profile = {profile!r}")
            injection.metadata["tags"] = ["injected-parameters"]
            nb.cells.append(injection)
            injected = True
    if profile is not None and not injected:
        raise PostFormatError(
            f"{path} has no parameters cell (a python chunk with '#| tags: [parameters]'), so "
            f"profile={profile!r} cannot be injected."
        )
    return nb


def cell_parameters(path: str | Path) -> dict[str, Any]:
    """The literal values the post's parameters cell assigns (``{"profile": "cpu"}``)."""
    for cell in qmd_to_notebook(path).cells:
        if "parameters" in cell.metadata.get("tags", []):
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                        node.targets[0], ast.Name):
                    try:
                        values[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass  # not a literal: Quarto's -P cannot set it either
            return values
    return {}


def convert_post(qmd: str | Path, out: str | Path, profile: str | None = None) -> Path:
    """Write the notebook for ``qmd`` to ``out`` and return ``out``."""
    out = Path(out)
    nbformat.write(qmd_to_notebook(qmd, profile=profile), out)
    return out
