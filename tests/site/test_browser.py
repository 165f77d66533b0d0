"""Every page in headless Chromium: no console error, no other host, math, charts, no overflow."""

from __future__ import annotations

MAX_PAGE_BYTES = 5_000_000
# A figure shown at less than this share of its size has 10-pt labels below ~10 px: illegible.
MIN_FIGURE_SCALE = 0.7
CDN_HINT = (
    " (require.js/jquery from cdnjs mean a cell showed text/html: a pandas Styler, "
    "IPython.display.HTML or a DataFrame before notebook.setup(); use notebook.markdown_table)"
)


def test_loads_without_console_errors_or_other_hosts(visit, page, width):
    shown = visit(page, width)
    foreign = shown.foreign_requests
    hint = CDN_HINT if any("require" in u or "jquery" in u for u in foreign) else ""
    assert not foreign, f"{page}: requests to other hosts (blocked){hint}:\n" + "\n".join(foreign)
    assert not shown.failed_requests, f"{page}: failed requests:\n" + "\n".join(
        shown.failed_requests
    )
    assert not shown.console_errors, f"{page}: console errors:\n" + "\n".join(shown.console_errors)


def test_dark_mode_loads_without_console_errors(visit, page, width):
    shown = visit(page, width, dark=True)
    assert shown.measured["dark"], f"{page}: the dark colour scheme did not apply"
    assert not shown.console_errors, f"{page}: console errors in dark mode:\n" + "\n".join(
        shown.console_errors
    )


def test_math_is_rendered_as_mathml(visit, page):
    math = visit(page).measured["math"]
    assert not math["texLeft"], f"{page}: TeX left unrendered: {math['texLeft']}"
    assert math["drawn"] == math["count"], (
        f"{page}: {math['count'] - math['drawn']} of {math['count']} MathML formulas have no size"
    )


def test_every_altair_chart_draws(visit, page):
    charts = visit(page).measured["charts"]
    blank = [c["id"] for c in charts if not c["drawn"]]
    assert not blank, f"{page}: Altair charts without an svg or canvas: {blank}"


def test_no_figure_table_or_code_overflows_the_column(visit, page, width):
    shown = visit(page, width)
    overflow = shown.measured["overflow"]
    assert not overflow, f"{page} at {width} px, wider than their column:\n" + "\n".join(overflow)
    broken = shown.measured["brokenImages"]
    assert not broken, f"{page}: images that did not load: {broken}"


def test_figures_are_not_shrunk_below_legible_at_desktop_width(visit, page):
    small = [
        f"{f['figure']}: {f['natural']} px wide, shown at {f['shown']} px ({f['shown'] / f['natural']:.0%})"
        for f in visit(page).measured["shrunk"]
        if f["shown"] < MIN_FIGURE_SCALE * f["natural"]
    ]
    assert not small, (
        f"{page}: figures too wide for the ~800-px column, their labels shrink below legible "
        "(keep a figure at most ~1100 px, figsize width <= 10 in at 110 dpi, or split it):\n"
        + "\n".join(small)
    )


def test_page_weight(visit, page, site, weights):
    shown = visit(page)
    files = []
    for path in dict.fromkeys(shown.local_files):  # each file once, in load order
        file = site / path
        if file.is_file():
            files.append((path, file.stat().st_size))
    weights[page] = files
    total = sum(size for _, size in files)
    biggest = sorted(files, key=lambda f: -f[1])[:5]
    assert total <= MAX_PAGE_BYTES, (
        f"{page} weighs {total / 1e6:.1f} MB (limit {MAX_PAGE_BYTES / 1e6:.0f} MB); largest: "
        + ", ".join(f"{p} {s / 1e6:.2f} MB" for p, s in biggest)
    )
