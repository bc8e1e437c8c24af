"""Shared fixtures: an isolated index and cache per test, the bundled samples,
real ffmpeg for cutting variants, and a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
INDEXED_SAMPLES = ["big-buck-bunny.mp4", "tears-of-steel.mp4", "basketball.mp4",
                   "his-girl-friday.mp4"]


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """Point the index, cache and config at this test's folder."""
    values = {
        "PROVENANCE_DB": str(tmp_path / "data" / "index.db"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PROVENANCE_CONFIG", raising=False)
    return values


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command line, as a newsroom script would run it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "provenance", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.fixture
def cli(env):
    return functools.partial(run_cli, env=env)


def ffmpeg_cut(source: Path, target: Path, *, start: float = 0.0, duration: float | None = None,
               vf: str | None = None, extra: list[str] | None = None) -> Path:
    """Make a repost-like variant of a clip with real ffmpeg."""
    args = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(start), "-i", str(source)]
    if duration is not None:
        args += ["-t", str(duration)]
    if vf:
        args += ["-vf", vf]
    args += [*(extra or []), "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "30",
             "-pix_fmt", "yuv420p", str(target)]
    subprocess.run(args, check=True, capture_output=True)
    return target


class LocalServer:
    """Serves files from ``root`` on 127.0.0.1; tests write pages and clips there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = LocalServer(root)
    yield server
    server.close()


def video_page(title: str, author: str, upload_date: str, content_url: str) -> str:
    """An HTML page like a platform's post: JSON-LD VideoObject, no <video> tag."""
    import json

    ld = {"@context": "https://schema.org", "@type": "VideoObject", "name": title,
          "description": f"{title} (test page)", "uploadDate": upload_date,
          "author": {"@type": "Person", "name": author}, "contentUrl": content_url,
          "thumbnailUrl": content_url + ".jpg"}
    return (f"<!doctype html><html><head><title>{title}</title>"
            f"<script type=\"application/ld+json\">{json.dumps(ld)}</script></head>"
            f"<body><h1>{title}</h1></body></html>")
