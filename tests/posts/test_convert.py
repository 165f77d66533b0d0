import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llm_exploration.posts.convert import PostFormatError, qmd_to_notebook

FIXTURES = Path(__file__).parent / "fixtures"


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_cells_options_and_front_matter():
    nb = qmd_to_notebook(FIXTURES / "passing" / "index.qmd")
    assert nb.cells[0].cell_type == "raw" and "A passing fixture post" in nb.cells[0].source
    cells = code_cells(nb)
    assert cells[0].metadata["tags"] == ["parameters"]
    assert cells[1].metadata["quarto"] == {
        "label": "fig-demo",
        "fig-cap": "A caption",
        "echo": False,
    }
    assert cells[1].source.startswith("#| label: fig-demo")  # options stay for Quarto
    assert "skip-execution" in cells[2].metadata["tags"]
    # The fenced ```python block is markdown, not a cell.
    assert any("this is markdown" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert not any("this is markdown" in c.source for c in cells)


def test_profile_is_injected_after_parameters():
    cells = code_cells(qmd_to_notebook(FIXTURES / "passing" / "index.qmd", profile="smoke"))
    assert cells[1].metadata["tags"] == ["injected-parameters"]
    assert cells[1].source == "profile = 'smoke'"


def test_inline_expressions_become_evaluated_markdown():
    cells = code_cells(qmd_to_notebook(FIXTURES / "passing" / "index.qmd"))
    inline = [c for c in cells if "inline-markdown" in c.metadata.get("tags", [])]
    assert len(inline) == 1 and "str(answer)" in inline[0].source


def test_unclosed_chunk_is_an_error(tmp_path):
    bad = tmp_path / "index.qmd"
    bad.write_text("```{python}\nx = 1\n")
    with pytest.raises(PostFormatError, match="never closed"):
        qmd_to_notebook(bad)


def test_profile_without_parameters_cell_is_an_error(tmp_path):
    bad = tmp_path / "index.qmd"
    bad.write_text("```{python}\nx = 1\n```\n")
    with pytest.raises(PostFormatError, match="parameters"):
        qmd_to_notebook(bad, profile="smoke")


def run_nbmake(qmd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Convert and execute ``qmd`` exactly as `make test` does for the real posts."""
    notebook = tmp_path / "_smoke.ipynb"
    nbformat.write(qmd_to_notebook(qmd, profile="smoke"), notebook)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbmake", "-p", "no:cacheprovider", str(notebook)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )


def test_passing_post_passes_through_nbmake(tmp_path):
    result = run_nbmake(FIXTURES / "passing" / "index.qmd", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_failing_post_fails_through_nbmake_with_the_cell_error(tmp_path):
    result = run_nbmake(FIXTURES / "failing" / "index.qmd", tmp_path)
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stdout
    assert "numerator / 0" in result.stdout
