"""The rendered site's files: pages, listing, RSS, search index, references, links, results.json."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

# Quarto writes an unresolved cross-reference as "?@fig-x" and an unknown citation as "?@key".
UNRESOLVED = re.compile(r"\?@[\w:.-]*\w")


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def test_page_is_rendered(site, page):
    assert (site / page).is_file(), f"{page}: listed in _quarto.yml but not rendered into _site/"


def test_listing_shows_every_post_with_its_fields(site, posts):
    doc = soup(site / "index.html")
    items = {}
    for item in doc.select(".quarto-post"):
        link = item.select_one(".listing-title a")
        if link is not None:
            items[PurePosixPath(link["href"]).parent.name] = item
    problems = []
    for post in posts:
        item = items.get(post.slug)
        if item is None:
            problems.append(f"{post.slug}: not in the home listing")
            continue
        title = item.select_one(".listing-title").get_text(" ", strip=True)
        if title != post.title:
            problems.append(f"{post.slug}: listing title {title!r}, front matter {post.title!r}")
        description = item.select_one(".listing-description")
        if description is None or not description.get_text(strip=True):
            problems.append(f"{post.slug}: no description in the listing")
        shown = {c.get_text(strip=True) for c in item.select(".listing-category")}
        if set(post.categories) - shown:
            problems.append(
                f"{post.slug}: categories {sorted(set(post.categories) - shown)} missing"
            )
        date = item.select_one(".listing-date")
        if date is None or not date.get_text(strip=True):
            problems.append(f"{post.slug}: no date in the listing")
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", post.date):
            ms = int(item["data-listing-date-sort"])
            listed = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date()
            if listed != dt.date.fromisoformat(post.date):
                problems.append(f"{post.slug}: listed as {listed}, front matter says {post.date}")
        image = item.select_one(".thumbnail img")
        if image is None:
            problems.append(f"{post.slug}: no image in the listing (front matter image:)")
        elif not (site / unquote(image["src"])).is_file():
            problems.append(f"{post.slug}: listing image {image['src']} is not in _site/")
    assert not problems, "\n".join(problems)


def test_rss_feed_parses_and_lists_every_post(site, posts):
    feed = site / "index.xml"
    assert feed.is_file(), "no index.xml: the listing needs `feed: true`"
    channel = ET.parse(feed).getroot().find("channel")
    assert channel is not None, "index.xml is not an RSS 2.0 feed (no <channel>)"
    links = [item.findtext("link") or "" for item in channel.iter("item")]
    missing = [p.slug for p in posts if not any(f"/posts/{p.slug}/" in link for link in links)]
    assert not missing, f"index.xml lists no item for {missing}; its links: {links}"
    for item in channel.iter("item"):
        for field in ("title", "description"):
            assert (item.findtext(field) or "").strip(), (
                f"RSS item {item.findtext('link')}: no {field}"
            )


def test_search_index_holds_every_post(site, posts):
    entries = json.loads((site / "search.json").read_text(encoding="utf-8"))
    hrefs = {urlsplit(e["href"]).path.lstrip("/") for e in entries}
    missing = [p.slug for p in posts if f"posts/{p.slug}/index.html" not in hrefs]
    assert not missing, f"search.json has no entry for {missing}"


def test_no_unresolved_reference_or_citation(site, page):
    doc = soup(site / page)
    main = doc.select_one("main") or doc
    found = sorted(set(UNRESOLVED.findall(main.get_text(" "))))
    assert not found, f"{page}: unresolved references or citations {found} (label or bib key?)"


def _local_targets(doc: BeautifulSoup):
    """(tag, url) for every resource and link a page refers to; anchors and external URLs out."""
    for tag, attr in (("img", "src"), ("script", "src"), ("link", "href"), ("a", "href")):
        for el in doc.find_all(tag):
            url = el.get(attr)
            if not url or url.startswith(("#", "data:", "mailto:", "javascript:")):
                continue
            if urlsplit(url).scheme or url.startswith("//"):
                continue  # another host: the browser check counts such requests
            yield tag, url


def test_every_local_file_and_anchor_resolves(site, page):
    path = site / page
    doc = soup(path)
    missing = []
    for tag, url in _local_targets(doc):
        target = unquote(urlsplit(url).path)
        file = (site / target.lstrip("/")) if target.startswith("/") else path.parent / target
        if target.endswith("/") or file.is_dir():
            file = file / "index.html"
        if not file.resolve().is_file():
            missing.append(f"<{tag}> {url}")
    ids = {el["id"] for el in doc.find_all(id=True)}
    for a in doc.find_all("a", href=True):
        if a["href"].startswith("#") and len(a["href"]) > 1 and unquote(a["href"][1:]) not in ids:
            missing.append(f"<a> {a['href']} (no element with that id)")
    assert not missing, f"{page}: these do not resolve in _site/:\n" + "\n".join(
        sorted(set(missing))
    )


def test_every_post_left_finished_results(root, posts):
    problems = []
    for post in posts:
        path = post.folder / "_output" / "results.json"
        if not path.is_file():
            problems.append(f"{post.slug}: no {path.relative_to(root)} (call notebook.setup first)")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("post") != post.slug:
            problems.append(f"{post.slug}: results.json names post {data.get('post')!r}")
        if data.get("finished") is not True:
            problems.append(f"{post.slug}: results.json not finished (call notebook.finish() last)")
    assert not problems, "\n".join(problems)
