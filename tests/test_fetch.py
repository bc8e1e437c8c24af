"""yt-dlp against a local HTTP server: metadata flows from the page to the report."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

from conftest import SAMPLES, video_page


def _serve(server, name: str) -> str:
    shutil.copy(SAMPLES / name, server.root / name)
    return server.url(name)


def test_plain_mp4_url_is_indexed_with_server_time(cli, http_server, env):
    url = _serve(http_server, "basketball.mp4")
    done = cli("add", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"added {url} ")
    shown = cli("show", "1").stdout
    assert url in shown
    # Last-Modified is the server's clock, not an upload time: labelled so.
    assert "(second, from server)" in shown
    info_json = next(Path(env["XDG_CACHE_HOME"]).rglob("media.info.json"))
    assert json.loads(info_json.read_text())["extractor_key"] == "Generic"


def test_page_with_json_ld_gives_uploader_and_upload_time(cli, http_server, tmp_path):
    media = _serve(http_server, "big-buck-bunny.mp4")
    (http_server.root / "post.html").write_text(
        video_page("Bunny in the meadow", "Field Reporter", "2024-03-01T12:30:00Z", media))
    page = http_server.url("post.html")
    assert cli("add", page).returncode == 0
    done = cli("check", str(SAMPLES / "repost-big-buck-bunny.mp4"), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    video = report["matches"][0]["video"]
    assert video["uploader"] == "Field Reporter"
    assert video["title"] == "Bunny in the meadow"
    assert video["upload_time"] == {"value": "2024-03-01T12:30:00Z", "precision": "second",
                                    "source": "platform"}
    assert video["source"] == page
    earliest = report["earliest_sighting"]
    assert earliest["basis"] == "upload_time"
    assert earliest["sighting"]["uploader"] == "Field Reporter"


def test_same_content_at_two_urls_is_one_video_with_two_sightings(cli, http_server):
    first = _serve(http_server, "his-girl-friday.mp4")
    shutil.copy(SAMPLES / "his-girl-friday.mp4", http_server.root / "mirror-copy.mp4")
    second = http_server.url("mirror-copy.mp4")
    assert cli("add", first).stdout.startswith("added ")
    assert cli("add", second).stdout.startswith("new sighting ")
    assert cli("add", second).stdout.startswith("already indexed ")
    listed = cli("list").stdout.strip().splitlines()
    assert len(listed) == 1 and "2 sighting(s)" in listed[0]


def test_a_fetched_url_is_cached(cli, http_server):
    url = _serve(http_server, "basketball.mp4")
    assert cli("add", str(SAMPLES / "unrelated.mp4")).returncode == 0  # an index to check against
    assert cli("check", url).returncode == 0
    http_server.close()  # the second fetch must not need the network
    again = cli("check", url, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["query"]["source"] == url


def test_a_download_that_is_no_video_is_fetched_again_next_time(cli, http_server):
    # The server sent an error page as clip.mp4; once it serves the clip, adding
    # the URL again must download it, not decode the bad copy from the cache.
    (http_server.root / "clip.mp4").write_text("<html>503 Service Unavailable</html>\n" * 40)
    url = http_server.url("clip.mp4")
    first = cli("add", url)
    assert first.returncode == 5 and first.stdout.startswith(f"failed {url}: "), first.stdout
    _serve(http_server, "basketball.mp4")
    (http_server.root / "basketball.mp4").replace(http_server.root / "clip.mp4")
    again = cli("add", url)
    assert again.returncode == 0 and again.stdout.startswith(f"added {url} "), again.stdout


def test_a_page_that_states_no_date_is_dated_by_its_server_not_as_uploaded(cli, http_server):
    # yt-dlp dates a page without JSON-LD by its Last-Modified header: when the
    # file was last saved, which must not pass for when the video was posted.
    _serve(http_server, "basketball.mp4")
    (http_server.root / "post.html").write_text(
        '<!doctype html><html><head><title>Post</title></head><body>'
        '<video src="basketball.mp4" controls></video></body></html>')
    done = cli("add", http_server.url("post.html"))
    assert done.returncode == 0, done.stderr
    assert "(second, from server)" in cli("show", "1").stdout


class _RedirectToFtp(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_redirect_to_anything_but_http_is_not_followed(cli):
    # Only http(s) links are fetched: a page must not be able to send the
    # fetcher to an FTP server (or any other service) by redirecting there.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    _RedirectToFtp.target = f"ftp://127.0.0.1:{listener.getsockname()[1]}/clip.mp4"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RedirectToFtp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = cli("add", f"http://127.0.0.1:{server.server_address[1]}/clip.mp4")
        try:
            connection, _ = listener.accept()
            connection.close()
            contacted = True
        except socket.timeout:
            contacted = False
    finally:
        server.shutdown()
        server.server_close()
        listener.close()
    assert not contacted, "the fetcher followed the redirect to ftp://"
    assert done.returncode == 4, done.stdout + done.stderr


def test_partial_downloads_a_killed_run_left_are_swept(cli, http_server, env):
    # SIGKILL leaves a half-written download behind; SIGTERM and Ctrl-C clean
    # their own. A day on, no download is still running in it.
    media = Path(env["XDG_CACHE_HOME"]) / "provenance" / "media"
    old, recent = media / ".partial-killed", media / ".partial-running"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "media.mp4.part").write_bytes(b"\0" * 1024)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    assert cli("add", _serve(http_server, "basketball.mp4")).returncode == 0
    assert not old.exists() and recent.exists()
