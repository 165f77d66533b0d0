"""The rendered site under test, a local web server for it, and headless Chromium visits.

The checks need a site Quarto rendered: ``LLM_EXPLORATION_SITE=<project>/_site`` (``.ci/run``
renders one at the smoke profile and sets it). Without it every check here skips, with one line
saying why. ``LLM_EXPLORATION_SCREENSHOTS=<folder>`` also saves a full-page screenshot of every
visit (page x width x colour scheme), to look at the site as a reader.

Every request to a host other than the local server is blocked and counted; the browser is
Debian's ``chromium`` (``$CHROMIUM`` overrides the path), driven by Playwright.
"""

from __future__ import annotations

import functools
import glob
import http.server
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

SITE_VAR = "LLM_EXPLORATION_SITE"
SHOTS_VAR = "LLM_EXPLORATION_SCREENSHOTS"
WIDTHS = {"desktop": 1280, "phone": 390}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_SITE = (
    "no rendered site to check: set LLM_EXPLORATION_SITE=<project>/_site (.ci/run renders one)"
)


def site_dir() -> Path | None:
    """The rendered ``_site`` named by ``$LLM_EXPLORATION_SITE``, or None."""
    value = os.environ.get(SITE_VAR)
    return Path(value).resolve() if value else None


def rendered_pages() -> list[str]:
    """The site's pages, as paths under ``_site`` (``posts/x/index.html``), from ``_quarto.yml``.

    Collected before any check runs; without a site, one placeholder so that every check skips
    with the same single reason.
    """
    site = site_dir()
    if site is None:
        return ["(no site)"]
    root = site.parent
    config = yaml.safe_load((root / "_quarto.yml").read_text())
    pages = []
    for pattern in config["project"]["render"]:
        for qmd in sorted(glob.glob(pattern, root_dir=root)):
            pages.append(str(Path(qmd).with_suffix(".html")))
    return pages


def pytest_generate_tests(metafunc) -> None:
    """A check taking ``page`` runs once per page; one taking ``width``, at desktop and phone."""
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", rendered_pages())
    if "width" in metafunc.fixturenames:
        metafunc.parametrize("width", list(WIDTHS.values()), ids=list(WIDTHS))


def pytest_collection_modifyitems(config, items) -> None:
    """Without a site, one check stands for all of them and skips with the one reason."""
    if site_dir() is not None:
        return
    here = Path(__file__).parent
    mine = [item for item in items if here in item.path.parents]
    if not mine:
        return
    mine[0].add_marker(pytest.mark.skip(reason=NO_SITE))
    rest = set(mine[1:])
    config.hook.pytest_deselected(items=mine[1:])
    items[:] = [item for item in items if item not in rest]


@pytest.fixture(scope="session")
def site() -> Path:
    path = site_dir()
    if path is None:
        pytest.skip(NO_SITE)
    if not (path / "index.html").is_file():
        pytest.fail(
            f"{SITE_VAR}={path} holds no index.html: render the site first (quarto render)."
        )
    if not (path.parent / "_quarto.yml").is_file():
        pytest.fail(
            f"{SITE_VAR}={path}: the folder above it must be the project (its _quarto.yml)."
        )
    return path


@pytest.fixture(scope="session")
def root(site: Path) -> Path:
    """The project that was rendered (the folder holding ``_quarto.yml`` and ``_site``)."""
    return site.parent


@pytest.fixture(scope="session")
def posts(root: Path):
    from llm_exploration.posts import list_posts

    found = list_posts(root)
    assert found, f"no posts/<slug>/index.qmd under {root}"
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on the test output
        pass


@pytest.fixture(scope="session")
def server(site: Path):
    """``http://127.0.0.1:<port>/`` serving ``_site`` (pages fetch search.json: file:// cannot)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser(site: Path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The site checks need playwright: pip install -e '.[dev]'.")
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as pw:
        try:
            launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        except Exception as err:  # noqa: BLE001  (the message names what is missing)
            pytest.fail(
                f"Cannot start Chromium ({executable or 'Playwright default'}): {err}\n"
                "Install it (apt-get install chromium) or set CHROMIUM=/path/to/chromium."
            )
        yield launched
        launched.close()


@dataclass
class Visit:
    """What one page load showed: errors, requests and the page's own measurements."""

    page: str
    width: int
    dark: bool
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    local_files: list[str] = field(default_factory=list)  # paths under _site, in load order
    measured: dict = field(default_factory=dict)  # from MEASURE_JS


# Runs in the page once it has loaded (argument: is this a phone-width window): code folds
# opened, Altair charts given time to draw, then every figure, table, code block and chart
# measured against its container. The rule: nothing is wider than its column, and nothing scrolls
# sideways, except that on a phone a table may scroll inside its own box.
MEASURE_JS = """
async (phone) => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const charts = [...document.querySelectorAll('.altair-chart, [id^="altair-viz"], .vega-embed')]
    .filter(el => !el.parentElement.closest('.vega-embed, .altair-chart'));
  for (let i = 0; i < 100 && charts.some(c => !c.querySelector('svg, canvas')); i++) {
    await new Promise(r => setTimeout(r, 100));
  }
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)));
  const describe = el => {
    const cell = el.closest('[id^="fig-"], [id^="tbl-"], .cell');
    const where = cell && cell.id ? ' in #' + cell.id : '';
    const src = el.getAttribute('src') ? ' ' + el.getAttribute('src').split('/').pop() : '';
    const cls = el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '';
    return `${el.tagName.toLowerCase()}${cls}${src}${where}`;
  };
  const main = document.querySelector('main') || document.body;
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const inScrollBox = el => {
    for (let a = el.parentElement; a && a !== main; a = a.parentElement) if (scrolls(a)) return true;
    return false;
  };
  const tableMayScroll = el => phone && (el.tagName === 'TABLE' || el.querySelector('table'))
    && !el.querySelector('img, canvas, svg, pre');
  const overflow = [];
  const selectors = 'img, figure, table, pre, svg, canvas, .cell-output-display, .altair-chart';
  for (const el of main.querySelectorAll(selectors)) {
    if (el.tagName.toLowerCase() !== 'svg' && el.closest('svg')) continue;
    if (el.closest('.navbar, button, a.anchorjs-link, .code-copy-button')) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 && rect.height === 0) continue;
    const wide = el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0;
    if (scrolls(el)) {
      if (wide && !tableMayScroll(el)) {
        overflow.push(`${describe(el)}: scrolls sideways (${el.scrollWidth} px in ${el.clientWidth} px)`);
      }
      continue;
    }
    if (inScrollBox(el)) continue;  // its scrolling box is judged itself
    const room = el.parentElement.clientWidth;
    if (room > 0 && rect.width > room + 1) {
      overflow.push(`${describe(el)}: ${Math.round(rect.width)} px wide in a ${room}-px column`);
    } else if (wide) {
      overflow.push(`${describe(el)}: content ${el.scrollWidth} px wide in ${el.clientWidth} px`);
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    overflow.push(`the page scrolls sideways: ${page.scrollWidth} px in a ${window.innerWidth}-px window`);
  }
  // How much each figure is shrunk to fit the column (its width attribute is its size at 110 dpi).
  const shrunk = [...main.querySelectorAll('img[width]')].map(img => ({
    figure: describe(img), natural: +img.getAttribute('width'),
    shown: Math.round(img.getBoundingClientRect().width),
  })).filter(f => f.natural > 0 && f.shown > 0);
  const maths = [...document.querySelectorAll('math')];
  const texLeft = [...document.querySelectorAll('span.math')].filter(s => !s.querySelector('math'))
    .map(s => s.textContent.slice(0, 60));
  const images = [...main.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth === 0)
    .map(i => i.getAttribute('src'));
  return {
    overflow,
    charts: charts.map(c => ({id: c.id, drawn: !!c.querySelector('svg, canvas')})),
    math: {count: maths.length, drawn: maths.filter(m => m.getBoundingClientRect().width > 0).length, texLeft},
    brokenImages: images,
    shrunk,
    dark: document.body.classList.contains('quarto-dark'),
  };
}
"""


@pytest.fixture(scope="session")
def visit(site: Path, server: str, browser):
    """``visit(page, width=1280, dark=False) -> Visit``: load a page once, keep what it showed."""
    shots = os.environ.get(SHOTS_VAR)
    cache: dict[tuple[str, int, bool], Visit] = {}

    def load(page: str, width: int = WIDTHS["desktop"], dark: bool = False) -> Visit:
        key = (page, width, dark)
        if key in cache:
            return cache[key]
        result = Visit(page, width, dark)
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme="dark" if dark else "light",
            device_scale_factor=1,
        )
        scheme = "alternate" if dark else "default"
        context.add_init_script(f"localStorage.setItem('quarto-color-scheme', '{scheme}')")

        def route(r) -> None:
            url = r.request.url
            if url.startswith(server):
                path = unquote(urlsplit(url).path).lstrip("/")
                result.local_files.append(
                    path + ("index.html" if path.endswith("/") or not path else "")
                )
                r.continue_()
            else:
                result.foreign_requests.append(url)
                r.abort()

        context.route("**/*", route)
        tab = context.new_page()
        tab.on("console", lambda m: m.type == "error" and result.console_errors.append(m.text))
        tab.on("pageerror", lambda e: result.console_errors.append(f"uncaught: {e}"))
        tab.on(
            "response",
            lambda r: r.status >= 400 and result.failed_requests.append(f"{r.status} {r.url}"),
        )
        tab.goto(server + page, wait_until="load")
        tab.wait_for_load_state("networkidle")
        if shots:  # as a reader first sees it: code folded
            tab.wait_for_timeout(500)  # Altair charts draw after load
            name = f"{page.replace('/', '_').removesuffix('.html')}-{width}-{'dark' if dark else 'light'}.png"
            Path(shots).mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(Path(shots) / name), full_page=True)
        result.measured = tab.evaluate(MEASURE_JS, width < 600)
        context.close()
        cache[key] = result
        return result

    return load


WEIGHTS: dict[str, list[tuple[str, int]]] = {}  # page -> (file, bytes), filled by the weight check


@pytest.fixture(scope="session")
def weights() -> dict[str, list[tuple[str, int]]]:
    """Where the weight check leaves each page's files, for the summary at the end of the run."""
    return WEIGHTS


def pytest_terminal_summary(terminalreporter) -> None:
    if not WEIGHTS:
        return
    terminalreporter.section("page weight (HTML plus every file it loads)")
    for page, files in sorted(WEIGHTS.items()):
        total = sum(size for _, size in files)
        biggest = max(files, key=lambda f: f[1])
        terminalreporter.write_line(
            f"{page:40s} {total / 1e6:6.2f} MB in {len(files):3d} files "
            f"(largest {biggest[0]}: {biggest[1] / 1e6:.2f} MB)"
        )
