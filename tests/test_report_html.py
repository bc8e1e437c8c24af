"""The HTML view: one self-contained, escaped page, checked as markup and in a real browser."""
from __future__ import annotations

import base64
import functools
import html.parser
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLES, LocalServer, run_cli
from provenance import report, report_html
from test_report import (HOSTILE_AUTHOR, HOSTILE_TITLE, add, add_hostile_page,  # noqa: F401
                         check_json, copy_index, edit_sightings, indexed, samples_index)

REPOST = SAMPLES / "repost-big-buck-bunny.mp4"


class Page(html.parser.HTMLParser):
    """The elements and text of a page, as a browser's parser would see them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]

    @property
    def joined(self) -> str:
        return "".join(self.text)


def render(cli, json_path: Path, out: Path) -> str:
    done = cli("report", str(json_path), "--format", "html", "--output", str(out))
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


def assert_self_contained(page: Page) -> None:
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    for img in page.all("img"):
        assert img["src"].startswith("data:image/jpeg;base64,")
    for a in page.all("a"):
        assert a["href"].startswith(("http://", "https://")), a
        assert a["rel"] == "noopener noreferrer"
    for _, attrs in page.tags:
        assert not any(k.startswith("on") for k in attrs), attrs


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, samples_index) -> Path:
    """A report whose earliest sighting has script in its title and markup in its uploader,
    rendered by `check --format html` (made once: three tests read it)."""
    root = tmp_path_factory.mktemp("hostile")
    env = {"PROVENANCE_DB": str(root / "index.db"), "XDG_CACHE_HOME": str(root / "cache"),
           "XDG_CONFIG_HOME": str(root / "config"), "XDG_DATA_HOME": str(root / "data")}
    copy_index(samples_index, root / "index.db")
    cli = functools.partial(run_cli, env=env)
    (root / "www").mkdir()
    server = LocalServer(root / "www")
    try:
        add_hostile_page(cli, server, SAMPLES / "big-buck-bunny.mp4")
    finally:
        server.close()
    check_json(cli, REPOST, root / "r.json")
    done = cli("check", str(REPOST), "--format", "html", "--output", str(root / "r.html"))
    assert done.returncode == 0, done.stderr
    return root / "r.html"


def test_hostile_metadata_is_escaped(hostile):
    text = hostile.read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<img src=x" not in text and "<b>x</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in text
    page = Page(text)
    assert_self_contained(page)
    assert HOSTILE_TITLE in page.joined and HOSTILE_AUTHOR in page.joined
    assert page.all("a")  # the page URL is a real link


def test_sections_and_thumbnails(cli, indexed, tmp_path):
    data = check_json(cli, REPOST, tmp_path / "r.json")
    text = render(cli, tmp_path / "r.json", tmp_path / "r.html")
    page = Page(text)
    assert_self_contained(page)
    for heading in ("Known footage", "Earliest known sighting", "Timeline", "Matches", "Query",
                    "Evidence", "Per-keyframe hashes"):
        assert heading in page.joined, heading
    assert data["earliest_sighting"]["caveat"] in page.joined
    assert page.all("details") and data["evidence"]["keyframes"][0]["hash"] in page.joined
    pairs = min(len(data["matches"][0]["frame_pairs"]), report_html.MAX_PAIRS)
    images = page.all("img")
    assert len(images) == 2 * pairs + 1  # each pair, and one still of the query
    for img in images:
        raw = img["src"].removeprefix("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(raw))) as im:
            assert im.format == "JPEG" and im.width == report_html.THUMB_WIDTH


def test_zero_matches_page(cli, indexed, tmp_path):
    check_json(cli, SAMPLES / "unrelated.mp4", tmp_path / "r.json")
    page = Page(render(cli, tmp_path / "r.json", tmp_path / "r.html"))
    assert_self_contained(page)
    assert "No known footage" in page.joined and "Timeline" not in page.joined
    assert not [a for a in page.all("article")]


def test_missing_media_shows_placeholders(cli, tmp_path):
    copy = tmp_path / "bbb-copy.mp4"
    shutil.copy(SAMPLES / "big-buck-bunny.mp4", copy)
    add(cli, copy)
    data = check_json(cli, REPOST, tmp_path / "r.json")
    copy.unlink()
    page = Page(render(cli, tmp_path / "r.json", tmp_path / "r.html"))
    shown = min(len(data["matches"][0]["frame_pairs"]), report_html.MAX_PAIRS)
    assert page.joined.count("media file no longer available") == shown
    assert len(page.all("img")) == shown + 1  # the query's own frames are still there


def test_only_http_urls_become_links(cli, indexed, tmp_path):
    data = check_json(cli, REPOST, tmp_path / "r.json")
    edit_sightings(data, url="javascript:alert(3)", title="<i>t</i>")
    (tmp_path / "evil.json").write_text(json.dumps(data), encoding="utf-8")
    text = render(cli, tmp_path / "evil.json", tmp_path / "evil.html")
    assert "javascript:" not in "".join(str(a.get("href")) for a in Page(text).all("a"))
    assert "javascript:alert(3)" in Page(text).joined and "<i>t</i>" not in text
    for url in ("data:text/html,<b>x</b>", "JaVaScRiPt:alert(1)", " https://x.example/",
                "https://x.example/\u202egpj.exe", "file:///etc/passwd", "//x.example/"):
        edit_sightings(data, url=url)
        page = Page(report_html.render_html(report.from_dict(data), thumbnails=False))
        assert not page.all("a"), url
    edit_sightings(data, url="https://x.example/post?a=1&b=\"2\"")
    page = Page(report_html.render_html(report.from_dict(data), thumbnails=False))
    assert {a["href"] for a in page.all("a")} == {'https://x.example/post?a=1&b="2"'}


def test_strip_spreads_pairs_evenly():
    items = list(range(20))
    picked = report_html._spread(items, 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 19
    assert report_html._spread(items[:5], 8) == items[:5]


# --- a real browser -------------------------------------------------------------------

@pytest.fixture
def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not on PATH: CI must install Debian's chromium package")
        pytest.skip("chromium not on PATH (install Debian's chromium package); required in CI")
    return exe


def run_chromium(exe: str, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def console_problems(stderr: str) -> list[str]:
    # Chromium prints page console messages as CONSOLE lines; newer builds word CSP
    # blocks as "violates the following Content Security Policy" instead of "Refused to".
    signs = ("Uncaught", "Refused to", "Content Security Policy", ":CONSOLE")
    return [line for line in stderr.splitlines() if any(s in line for s in signs)]


def test_console_check_catches_errors(chromium, tmp_path):
    # Guards the check below against a Chromium whose log format no longer matches.
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><title>t</title><script>notDefined()</script>")
    done = run_chromium(chromium, tmp_path, bad, "--enable-logging=stderr", "--v=0",
                        "--dump-dom")
    assert any("Uncaught" in line for line in console_problems(done.stderr)), done.stderr


def test_browser_renders_hostile_page_as_text(chromium, hostile, tmp_path):
    done = run_chromium(chromium, tmp_path, hostile, "--enable-logging=stderr", "--v=0",
                        "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Page(done.stdout)
    assert [t for t, _ in dom.tags].count("title") == 1
    assert "Provenance report: repost-big-buck-bunny.mp4" in done.stdout
    assert HOSTILE_TITLE in dom.joined and HOSTILE_AUTHOR in dom.joined
    # Nothing the payload would have created: a script, an <img src=x>, a <b>.
    assert not dom.all("script") and not dom.all("b")
    assert all(img["src"].startswith("data:") for img in dom.all("img"))
    assert_self_contained(dom)
    assert console_problems(done.stderr) == []


def test_browser_screenshot(chromium, hostile, tmp_path):
    shot = tmp_path / "shot.png"
    done = run_chromium(chromium, tmp_path, hostile, f"--screenshot={shot}",
                        "--window-size=1280,2000")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").resize((320, 500)).getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 200  # text and thumbnails, not a blank page
