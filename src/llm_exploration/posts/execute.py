"""Execute posts headless (no Quarto) and export them as standalone HTML.

``run_post`` converts ``posts/<slug>/index.qmd``, executes it in the post's folder with
nbclient, and writes ``posts/<slug>/_output/``: the executed ``index.ipynb``, a standalone
``index.html`` and every figure as ``fig-NN.png``. ``build_site`` does that for every post and
writes an index page: the fallback for ``make site`` when Quarto is not installed.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from ..display import RAW_HTML
from ..profiles import ENV_VAR, resolve_profile
from ..settings import InputError, SettingError, one_of
from .convert import INLINE_TAG, cell_parameters, qmd_to_notebook, split_front_matter

OUTPUT_DIR = "_output"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class PostNotFoundError(SettingError, FileNotFoundError):
    """No ``posts/<slug>/index.qmd``."""


class ProjectNotFoundError(InputError, FileNotFoundError):
    """Not inside a project checkout (no ``_quarto.yml`` at or above the folder)."""


class PostExecutionError(RuntimeError):
    """A cell of a post raised; the message carries the cell's error."""


@dataclass
class Post:
    slug: str
    path: Path  # the index.qmd
    title: str = ""
    description: str = ""
    date: str = ""
    categories: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``_quarto.yml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_quarto.yml").is_file():
            return folder
    raise ProjectNotFoundError(
        f"No _quarto.yml at or above {here}: run this from the project checkout."
    )


def list_posts(root: Path | None = None) -> list[Post]:
    """Every ``posts/<slug>/index.qmd``, newest first."""
    root = root or project_root()
    posts = []
    for qmd in sorted((root / "posts").glob("*/index.qmd")):
        meta, _ = split_front_matter(qmd.read_text(encoding="utf-8"))
        posts.append(
            Post(
                slug=qmd.parent.name,
                path=qmd,
                title=str(meta.get("title", qmd.parent.name)),
                description=str(meta.get("description", "")),
                date=str(meta.get("date", "")),
                categories=list(meta.get("categories") or []),
            )
        )
    return sorted(posts, key=lambda p: (p.date, p.slug), reverse=True)


def find_post(slug: str, root: Path | None = None) -> Post:
    posts = {p.slug: p for p in list_posts(root)}
    if slug not in posts:
        raise PostNotFoundError(setting="post", value=slug,
                                expected=one_of(sorted(posts)) if posts else "a post (there are none)")
    return posts[slug]


def post_profile(post: Post, flag: str | None = None) -> str:
    """The profile ``post`` runs at: ``flag``, else ``$LLM_EXPLORATION_PROFILE``, else its cell."""
    return resolve_profile(cell_parameters(post.path).get("profile"), flag=flag)


def _error_text(nb: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = ANSI.sub("", "\n".join(output.get("traceback", [])))
                return f"cell {index}:\n{cell.source}\n\n{output['ename']}: {output['evalue']}\n{trace}"
    return "unknown error"


def execute_notebook(nb: nbformat.NotebookNode, folder: Path, profile: str, timeout: int) -> float:
    """Execute ``nb`` in ``folder`` at ``profile``; return seconds. Raises PostExecutionError."""
    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = profile  # the kernel inherits it; it wins over the parameters cell
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True).execute(
            cwd=str(folder)
        )
    except CellExecutionError as err:
        raise PostExecutionError(_error_text(nb)) from err
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
    return time.perf_counter() - start


def extract_figures(nb: nbformat.NotebookNode, folder: Path) -> list[Path]:
    """Write every PNG output as ``fig-NN.png`` in ``folder``."""
    paths = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                path = folder / f"fig-{len(paths) + 1:02d}.png"
                path.write_bytes(base64.b64decode(data["image/png"]))
                paths.append(path)
    return paths


def export_html(nb: nbformat.NotebookNode, path: Path, title: str) -> None:
    """Standalone HTML: option lines and hidden cells removed, as Quarto would show the post."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.from_dict(nb)  # a copy
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        options = cell.metadata.get("quarto", {})
        tags = set(cell.metadata.get("tags", []))
        if options.get("include") is False or tags & {"parameters", "injected-parameters"}:
            tags.add("remove_cell")
        if options.get("echo") is False or INLINE_TAG in tags:
            tags.add("remove_input")
        cell.metadata["tags"] = sorted(tags)
        cell.source = "\n".join(
            line for line in cell.source.splitlines() if not line.startswith("#|")
        )
        for output in cell.get("outputs", []):  # Altair charts reach Quarto as raw HTML blocks
            raw = RAW_HTML.match(output.get("data", {}).get("text/markdown", ""))
            if raw:
                output["data"] = {"text/html": raw.group("html")}
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = ("remove_cell",)
    config.TagRemovePreprocessor.remove_input_tags = ("remove_input",)
    config.HTMLExporter.exclude_raw = True
    config.HTMLExporter.exclude_input_prompt = True
    config.HTMLExporter.exclude_output_prompt = True
    body, _ = HTMLExporter(config=config).from_notebook_node(
        nb, resources={"metadata": {"name": title}}
    )
    path.write_text(body, encoding="utf-8")


def run_post(
    slug: str, profile: str | None = None, root: Path | None = None, timeout: int = 3600
) -> Path:
    """Execute one post at ``profile`` (None: ``$LLM_EXPLORATION_PROFILE``, else the post's cell);
    return its ``_output`` folder (notebook, HTML, figures)."""
    post = find_post(slug, root)
    profile = post_profile(post, profile)
    out = post.folder / OUTPUT_DIR
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    nb = qmd_to_notebook(post.path, profile=profile)
    try:
        seconds = execute_notebook(nb, post.folder, profile, timeout)
    finally:
        nbformat.write(nb, out / "index.ipynb")
    figures = extract_figures(nb, out)
    export_html(nb, out / "index.html", post.title)
    (out / "run.txt").write_text(
        f"post: {slug}\nprofile: {profile}\nseconds: {seconds:.1f}\nfigures: {len(figures)}\n"
        f"finished: {dt.datetime.now().isoformat(timespec='seconds')}\n"
    )
    print(
        f"{slug}: executed at profile {profile!r} in {seconds:.1f} s, {len(figures)} figures -> {out}"
    )
    return out


def build_site(root: Path | None = None, profile: str | None = None, site: Path | None = None) -> Path:
    """Execute every post (at ``profile``; None: as :func:`run_post`) and write standalone pages
    plus an index under ``_site/``."""
    root = root or project_root()
    site = site or root / "_site"
    site.mkdir(exist_ok=True)
    rows, failures, profiles = [], [], set()
    for post in list_posts(root):
        profiles.add(post_profile(post, profile))
        try:
            out = run_post(post.slug, profile, root)
        except PostExecutionError as err:
            failures.append(f"{post.slug}: {err}")
            print(f"{post.slug}: FAILED\n{err}")
            continue
        target = site / "posts" / post.slug
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "index.html", target / "index.html")
        thumb = ""
        if (post.folder / "thumbnail.png").is_file():
            shutil.copy(post.folder / "thumbnail.png", target / "thumbnail.png")
            thumb = f'<img src="posts/{post.slug}/thumbnail.png" alt="" width="220">'
        cats = " ".join(f"<code>{html.escape(c)}</code>" for c in post.categories)
        rows.append(
            f'<article>{thumb}<h2><a href="posts/{post.slug}/index.html">{html.escape(post.title)}</a></h2>'
            f"<p><small>{html.escape(post.date)} {cats}</small></p><p>{html.escape(post.description)}</p></article>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>LLM Exploration</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}"
        "article{border-bottom:1px solid #ddd;padding:1rem 0;overflow:auto}img{float:right;margin-left:1rem}"
        "</style></head><body><h1>LLM Exploration</h1>"
        f"<p>Executable research posts about how language models work and how to train them. "
        f"Built without Quarto (nbconvert fallback) at profile <code>{', '.join(sorted(profiles))}</code> on "
        f"{dt.date.today().isoformat()}.</p>" + "".join(rows) + "</body></html>"
    )
    (site / "index.html").write_text(page, encoding="utf-8")
    if failures:
        raise PostExecutionError("These posts failed:\n" + "\n\n".join(failures))
    return site
