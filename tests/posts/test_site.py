"""Checks a Quarto render would otherwise catch late: front matter, citations, cross-references."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llm_exploration.posts import list_posts
from llm_exploration.posts.convert import cell_options, qmd_to_notebook

ROOT = Path(__file__).resolve().parents[2]
POSTS = list_posts(ROOT)
BIB_KEYS = set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", (ROOT / "references.bib").read_text()))


def test_site_config_is_a_website_with_offline_math():
    config = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    assert config["project"]["type"] == "website"
    assert config["format"]["html"]["html-math-method"] == "mathml"
    assert config["bibliography"] == "references.bib"
    metadata = yaml.safe_load((ROOT / "posts" / "_metadata.yml").read_text())
    assert metadata["execute"]["freeze"] == "auto"


def test_every_post_is_listed_in_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [p.slug for p in POSTS if f"posts/{p.slug}/index.qmd" not in readme]
    assert not missing, f"add these posts to README's table: {missing}"


@pytest.mark.parametrize("post", POSTS, ids=lambda p: p.slug)
def test_front_matter_has_what_the_listing_shows(post):
    text = post.path.read_text()
    meta = yaml.safe_load(text.split("---")[1])
    for key in ("title", "description", "date", "categories"):
        assert meta.get(key), f"{post.slug}: front matter needs {key!r}"
    if "image" in meta:
        assert (post.folder / meta["image"]).is_file() or meta["image"] == "thumbnail.png"


@pytest.mark.parametrize("post", POSTS, ids=lambda p: p.slug)
def test_parameters_cell_and_setup(post):
    nb = qmd_to_notebook(post.path, profile="smoke")  # raises without a parameters cell
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("setup(profile)" in s for s in sources), f"{post.slug}: call notebook.setup(profile)"


@pytest.mark.parametrize("post", POSTS, ids=lambda p: p.slug)
def test_citations_exist_in_bibliography(post):
    text = post.path.read_text()
    body = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code is not prose
    cited = set(re.findall(r"(?<![\w.])@((?!fig-|tbl-|sec-|eq-)[A-Za-z][\w:-]*\w)", body))
    cited -= {"parameters"}
    missing = sorted(k for k in cited if k not in BIB_KEYS and "." not in k)
    assert not missing, f"{post.slug}: cited but not in references.bib: {missing}"


@pytest.mark.parametrize("post", POSTS, ids=lambda p: p.slug)
def test_cross_references_point_at_labelled_figures(post):
    text = post.path.read_text()
    labels = set()
    for chunk in re.findall(r"```\{python[^}]*\}\n(.*?)```", text, flags=re.DOTALL):
        label = cell_options(chunk).get("label")
        if label:
            labels.add(label)
    labels |= set(re.findall(r"\{#((?:fig|tbl|sec|eq)-[\w-]+)", text))
    body = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    refs = set(re.findall(r"@((?:fig|tbl|sec|eq)-[\w-]*\w)", body))
    assert refs <= labels, f"{post.slug}: references without a label: {sorted(refs - labels)}"
    for chunk in re.findall(r"```\{python[^}]*\}\n(.*?)```", text, flags=re.DOTALL):
        options = cell_options(chunk)
        if str(options.get("label", "")).startswith("fig-"):
            assert options.get("fig-cap"), f"{post.slug}: {options['label']} needs a fig-cap"


def test_frozen_results_match_the_posts():
    """The site is published from _freeze/: every post must be frozen as its source stands."""
    if not (ROOT / "_freeze").is_dir():
        pytest.skip("no _freeze/ yet: `make site` renders the posts and writes it (then commit it)")
    check = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "check-freeze")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def _prose(markdown: str) -> str:
    """Markdown without its fenced code blocks (cell sources and outputs)."""
    return re.sub(r"^(```+|~~~+)[^\n]*\n.*?^\1\s*$", "", markdown, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("post", POSTS, ids=lambda p: p.slug)
def test_inline_expressions_sit_on_one_line(post):
    """Quarto leaves an inline `{python} ...` that spans a line break as literal text."""
    broken = [line for line in _prose(post.path.read_text()).splitlines()
              if re.search(r"`\{python\}[^`]*$", line)]
    assert not broken, f"{post.slug}: inline expression broken across lines: {broken}"


@pytest.mark.parametrize("post", POSTS, ids=lambda p: p.slug)
def test_frozen_pages_show_no_unevaluated_inline_code(post):
    """An inline expression that evaluates to an empty string is left on the page as code."""
    import json

    frozen = ROOT / "_freeze" / "posts" / post.slug / "index" / "execute-results" / "html.json"
    if not frozen.is_file():
        pytest.skip(f"{post.slug} is not frozen yet")
    prose = _prose(json.loads(frozen.read_text())["result"]["markdown"])
    left = re.findall(r"`?\{python\}[^\n]{0,60}", prose)
    assert not left, f"{post.slug}: inline code left unevaluated on the page: {left}"
