import shutil
from pathlib import Path

import pytest

from llm_exploration.posts import (
    PostExecutionError,
    PostNotFoundError,
    build_site,
    list_posts,
    run_post,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\n")
    for name in ("passing", "failing"):
        shutil.copytree(FIXTURES / name, tmp_path / "posts" / name)
    return tmp_path


def test_list_posts_newest_first(project):
    posts = list_posts(project)
    assert [p.slug for p in posts] == ["passing", "failing"]
    assert posts[0].title == "A passing fixture post" and posts[0].categories == ["test"]


def test_run_post_writes_notebook_html_and_evaluates_inline_code(project):
    out = run_post("passing", "smoke", root=project)
    html = (out / "index.html").read_text()
    assert "The answer is 42 at profile smoke." in html
    assert "#| label" not in html  # cell options are not shown
    assert "eval: false cells are never executed" in html  # shown, not run
    assert (out / "index.ipynb").is_file() and "seconds:" in (out / "run.txt").read_text()


def test_run_post_reports_the_failing_cell(project):
    with pytest.raises(PostExecutionError, match=r"(?s)numerator / 0.*ZeroDivisionError") as err:
        run_post("failing", "smoke", root=project)
    assert "\x1b[" not in str(err.value)  # readable in a terminal log: no colour codes


def test_unknown_post(project):
    with pytest.raises(PostNotFoundError, match="passing"):
        run_post("nope", "smoke", root=project)


def test_fallback_site_links_posts_and_reports_failures(project):
    with pytest.raises(PostExecutionError, match="failing"):
        build_site(project, profile="smoke")
    index = (project / "_site" / "index.html").read_text()
    assert 'href="posts/passing/index.html"' in index
    assert (project / "_site" / "posts" / "passing" / "index.html").is_file()
