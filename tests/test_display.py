"""How outputs reach the page: no text/html (Quarto would add CDN scripts), responsive figures."""

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from llm_exploration import display

CELLS = [
    "from llm_exploration.notebook import setup, markdown_table\nsetup('smoke')",
    "import pandas as pd\npd.DataFrame({'a': [1.5, 2.0], 'b': ['x', 'y']})",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(12, 3))\nax.plot([0, 1])\nplt.show()",
    "import altair as alt\nalt.Chart(pd.DataFrame({'x': [1]})).mark_point().encode(x='x')",
    "alt.Chart(pd.DataFrame({'x': [2]})).mark_bar().encode(x='x')",
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """The display outputs of a small notebook that calls setup(), run in a real kernel."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=300, kernel_name="python3").execute(
        cwd=str(tmp_path_factory.mktemp("nb"))
    )
    return [[o for o in cell.outputs if "data" in o] for cell in nb.cells]


def test_no_output_is_html(outputs):
    html = [i for i, cell in enumerate(outputs) for o in cell if "text/html" in o["data"]]
    assert not html, f"cells {html} show text/html: Quarto then loads require.js from a CDN"


def test_dataframe_shows_as_a_markdown_table(outputs):
    (shown,) = outputs[1]
    # A default RangeIndex is noise on the page: left out.
    assert shown["data"]["text/markdown"].splitlines()[0].replace(" ", "") == "|a|b|"


def test_figure_has_a_width_and_no_height(outputs):
    (shown,) = outputs[2]
    assert set(shown["data"]) >= {"image/png"}
    assert list(shown["metadata"]["image/png"]) == ["width"]
    assert 1000 < shown["metadata"]["image/png"]["width"] < 1500  # 12 in at 110 dpi, cropped


def test_altair_libraries_come_once_per_page(outputs):
    first, second = (cell[0]["data"]["text/markdown"] for cell in outputs[3:5])
    for chart in (first, second):
        assert display.RAW_HTML.match(chart), "a chart must be one {=html} raw block"
        assert "quarto-html-table-processing: none" in chart
    assert "window.vegaEmbed" in first and "window.vegaEmbed" not in second
    assert len(second) < 10_000 < len(first)


def test_markdown_table_escapes_text_and_formats_numbers():
    df = pd.DataFrame({"answer": ["<answer>4</answer>", "$5 *x* @key | y\nz"], "p": [0.12345, 1.0]})
    table = display.markdown_table(df, floatfmt=".2f").data
    body = table.splitlines()[2]
    assert r"\<answer\>4\</answer\>" in body and "0.12" in body
    assert r"\$5 \*x\* \@key \| y z" in table.splitlines()[3]


def test_markdown_table_shows_index_levels_as_columns_and_blanks_missing_values():
    columns = pd.MultiIndex.from_tuples([("model", "acc"), ("model", "note")])
    rows = pd.MultiIndex.from_tuples([("a", "<|endoftext|>"), ("b", "x")], names=["run", None])
    df = pd.DataFrame([[0.5, "ok"], [float("nan"), None]], index=rows, columns=columns)
    lines = display.markdown_table(df, floatfmt=".2f").data.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "run",
        "",
        "model acc",
        "model note",
    ]
    assert r"\<\|endoftext\|\>" in lines[2] and "0.50" in lines[2]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["b", "x", "", ""]


def test_export_html_turns_chart_blocks_back_into_html(tmp_path):
    from llm_exploration.posts.execute import export_html

    chart = display.altair_markdown({"mark": "point"})
    cell = nbformat.v4.new_code_cell("chart")
    cell.outputs = [nbformat.v4.new_output("display_data", data=chart)]
    export_html(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "page.html", "t")
    page = (tmp_path / "page.html").read_text()
    assert 'class="altair-chart"' in page and "```{=html}" not in page
