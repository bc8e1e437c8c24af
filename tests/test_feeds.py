"""`provenance watch` end to end: feeds served on 127.0.0.1, real yt-dlp, real
ffmpeg, a real SQLite index. Clips are 2-3 s cuts of the samples, made once."""
from __future__ import annotations

import email.utils
import http.server
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import SAMPLES, ffmpeg_cut, video_page
from provenance import feeds
from provenance.config import load_settings

WHEN = ["2024-05-01T10:00:00Z", "2024-05-02T10:00:00Z", "2024-05-03T10:00:00Z",
        "2024-05-04T10:00:00Z", "2024-05-05T10:00:00Z"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Originals and a re-edited repost (trimmed and downscaled), cut once per module."""
    folder = tmp_path_factory.mktemp("clips")
    cuts = {
        "bunny": ("big-buck-bunny.mp4", 0.0, 3.0, None),
        "repost": ("big-buck-bunny.mp4", 0.5, 2.0, "scale=-2:240"),
        "repost2": ("big-buck-bunny.mp4", 1.0, 1.5, "scale=-2:200"),
        "tears": ("tears-of-steel.mp4", 0.0, 2.0, None),
        "friday": ("his-girl-friday.mp4", 0.0, 2.0, None),
        "basketball": ("basketball.mp4", 0.0, 2.0, None),
        "flower": ("unrelated.mp4", 0.0, 2.0, None),
    }
    return {name: ffmpeg_cut(SAMPLES / src, folder / f"{name}.mp4", start=start,
                             duration=length, vf=vf)
            for name, (src, start, length, vf) in cuts.items()}


def publish(server, clips, name: str, as_name: str | None = None) -> str:
    target = server.root / (as_name or f"{name}.mp4")
    shutil.copy(clips[name], target)
    return server.url(target.name)


def page(server, clips, slug: str, clip: str, author: str, when: str, title: str = "") -> str:
    media = publish(server, clips, clip, f"{slug}.mp4")
    (server.root / f"{slug}.html").write_text(
        video_page(title or slug, author, when, media), encoding="utf-8")
    return server.url(f"{slug}.html")


def rss(items: list[dict]) -> str:
    body = []
    for it in items:
        stamp = datetime.fromisoformat(it["when"].replace("Z", "+00:00"))
        when = email.utils.format_datetime(stamp, usegmt=True)
        enclosure = (f'<enclosure url="{it["enclosure"]}" type="video/mp4" length="1"/>'
                     if it.get("enclosure") else "")
        body.append(f"<item><title>{it.get('title', 'item')}</title><link>{it['link']}</link>"
                    f"<guid isPermaLink=\"false\">{it['guid']}</guid><pubDate>{when}</pubDate>"
                    f"{enclosure}</item>")
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Test</title>'
            '<link>http://127.0.0.1/</link><description>test</description>'
            + "".join(body) + "</channel></rss>")


def atom(entries: list[dict]) -> str:
    body = []
    for e in entries:
        links = f'<link rel="alternate" href="{e["link"]}"/>' if e.get("link") else ""
        if e.get("enclosure"):
            links += f'<link rel="enclosure" type="video/mp4" href="{e["enclosure"]}"/>'
        body.append(f"<entry><title>{e.get('title', 'entry')}</title><id>{e['id']}</id>"
                    f"{links}<published>{e['when']}</published><updated>{e['when']}</updated>"
                    "</entry>")
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            "<title>Test</title><id>urn:test:feed</id><updated>2024-05-05T00:00:00Z</updated>"
            + "".join(body) + "</feed>")


def write_feed(server, name: str, text: str) -> str:
    path = server.root / name
    old = path.stat().st_mtime if path.exists() else None
    path.write_text(text, encoding="utf-8")
    if old is not None:  # Last-Modified has 1 s resolution: make the change visible
        os.utime(path, (old + 60, old + 60))
    return server.url(name)


def config(folder: Path, feed_tables: list[dict], **top) -> Path:
    lines = [f"{key} = {json.dumps(str(value))}" for key, value in top.items()]
    for table in feed_tables:
        lines.append("[[feed]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path = folder / "feeds.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def items(env) -> dict[str, tuple]:
    with sqlite3.connect(env["PROVENANCE_DB"]) as db:
        rows = db.execute("SELECT url, status, attempts, error, report_path FROM feed_items")
        return {row[0]: row[1:] for row in rows}


def in_process(cfg: Path, **options) -> feeds.RunSummary:
    return feeds.watch(load_settings(cfg), cfg, **options)


def test_rss_and_atom_feeds_report_only_the_repost(cli, env, http_server, clips, tmp_path):
    s = http_server
    original = page(s, clips, "flood", "bunny", "Alice Reporter", WHEN[0])
    friday = page(s, clips, "friday", "friday", "Bob", WHEN[1])
    tears = publish(s, clips, "tears")
    hostile = "../../etc/passwd <!channel> &"
    repost = page(s, clips, "repost", "repost", "Mallory", WHEN[3], title=hostile)
    basketball = publish(s, clips, "basketball")
    rss_url = write_feed(s, "news.rss", rss([
        {"link": original, "guid": "news-1", "when": WHEN[0]},
        {"link": friday, "guid": "news-2", "when": WHEN[1]},
        {"link": tears, "guid": "news-3", "when": WHEN[2]}]))
    atom_url = write_feed(s, "social.atom", atom([
        {"id": "urn:post:9", "link": repost, "when": WHEN[3]},
        {"id": "urn:post:10", "link": s.url("post10.html"), "enclosure": basketball,
         "when": WHEN[4]}]))
    # The repost's feed comes first: items are still checked oldest first across feeds.
    cfg = config(tmp_path, [{"name": "social", "kind": "atom", "url": atom_url},
                            {"name": "news", "kind": "rss", "url": rss_url}],
                 reports_dir=tmp_path / "out")

    run = cli("--config", str(cfg), "watch")

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert len(lines) == 2
    assert re.match(r"social: 2 seen, 2 new, 1 indexed, 1 matched, 0 failed \(", lines[0])
    assert re.match(r"news: 3 seen, 3 new, 3 indexed, 0 matched, 0 failed \(", lines[1])
    written = sorted((tmp_path / "out").rglob("*.json"))
    reports = [p for p in written if p.parent.name != "runs"]
    assert len(reports) == 1
    day = datetime.now(timezone.utc).date().isoformat()
    assert reports[0] == tmp_path / "out" / "social" / day / f"{feeds.safe_id('urn:post:9')}.json"
    report = json.loads(reports[0].read_text())
    assert report["query"]["source"] == repost
    assert [(m["video"]["url"], m["video"]["uploader"]) for m in report["matches"]] == [
        (original, "Alice Reporter")]
    assert report["earliest_sighting"]["sighting"]["upload_time"]["value"] == WHEN[0]
    state = items(env)
    assert state[repost][:2] == ("matched", 1) and state[repost][3] == str(reports[0])
    assert {state[u][0] for u in (original, friday, tears, basketball)} == {"indexed"}
    summary = json.loads(next(p for p in written if p.parent.name == "runs").read_text())
    assert summary["totals"] == {"seen": 5, "new": 5, "indexed": 4, "matched": 1, "failed": 0,
                                 "skipped": 0, "deferred": 0}
    with sqlite3.connect(env["PROVENANCE_DB"]) as db:
        times = {row[0]: row[1:] for row in db.execute(
            "SELECT source, upload_time, upload_time_source FROM sightings")}
    # A direct file's only other date is Last-Modified: the feed's pubDate wins.
    assert times[tears] == (WHEN[2], "feed") and times[basketball] == (WHEN[4], "feed")
    assert times[original] == (WHEN[0], "platform")

    # Second run: one new entry; the unchanged Atom feed answers 304.
    flower = publish(s, clips, "flower")
    write_feed(s, "news.rss", rss([
        {"link": original, "guid": "news-1", "when": WHEN[0]},
        {"link": friday, "guid": "news-2", "when": WHEN[1]},
        {"link": tears, "guid": "news-3", "when": WHEN[2]},
        {"link": flower, "guid": "news-4", "when": WHEN[4]}]))
    again = cli("--config", str(cfg), "watch")
    assert again.returncode == 0, again.stderr
    first, second = again.stdout.splitlines()
    assert first.startswith("social: not modified, 0 new, 0 indexed, 0 matched, 0 failed")
    assert second.startswith("news: 4 seen, 1 new, 1 indexed, 0 matched, 0 failed")
    state = items(env)
    assert state[flower][:2] == ("indexed", 1)
    assert all(attempts == 1 for _, attempts, *_ in state.values())
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 2


def test_broken_entries_fail_retry_and_give_up(cli, env, http_server, clips, tmp_path):
    s = http_server
    good = publish(s, clips, "tears")
    missing = s.url("missing.mp4")
    (s.root / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    text = s.url("notes.mp4")
    url = write_feed(s, "feed.rss", rss([
        {"link": missing, "guid": "a", "when": WHEN[0]},
        {"link": text, "guid": "b", "when": WHEN[1]},
        {"link": good, "guid": "c", "when": WHEN[2]}]))
    cfg = config(tmp_path, [{"name": "wire", "kind": "rss", "url": url}])

    run = cli("--config", str(cfg), "watch", "--reports-dir", str(tmp_path / "out"))

    assert run.returncode == 0, run.stderr
    assert "1 indexed, 0 matched, 2 failed [" in run.stdout
    assert "404" in run.stdout
    state = items(env)
    assert state[good][0] == "indexed"
    assert state[missing][:2] == ("failed", 1) and "404" in state[missing][2]
    assert state[text][:2] == ("failed", 1)
    assert state[text][2].startswith(("DecodeError", "BadInputError")), state[text][2]

    # Later runs retry the failures only; the 404 gets fixed in between.
    second = in_process(cfg, reports_dir=tmp_path / "out")
    assert (second.total("indexed"), second.total("failed")) == (0, 2)
    assert items(env)[text][:2] == ("failed", 2)
    publish(s, clips, "friday", "missing.mp4")
    third = in_process(cfg, reports_dir=tmp_path / "out")
    state = items(env)
    assert state[missing][:2] == ("indexed", 3)
    assert state[text][:2] == ("gave_up", 3)
    assert [f.gave_up for f in third.feeds[0].failed] == [True]
    assert "(gave up)" in third.log_lines()[0]
    fourth = in_process(cfg, reports_dir=tmp_path / "out")
    assert fourth.total("failed") == 0 and items(env)[text][1] == 3


class _HeldFeed(http.server.BaseHTTPRequestHandler):
    """Answers only once `release` is set: whoever lists the feed holds the lock until then."""

    body = b""
    release = threading.Event()

    def do_GET(self) -> None:
        self.release.wait(120)
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


def test_two_concurrent_runs_one_works_the_other_exits_7(env, http_server, clips, tmp_path):
    s = http_server
    links = [publish(s, clips, name) for name in ("tears", "friday")]
    _HeldFeed.body = rss([{"link": link, "guid": link, "when": WHEN[i]}
                          for i, link in enumerate(links)]).encode()
    _HeldFeed.release.clear()
    held = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeldFeed)
    threading.Thread(target=held.serve_forever, daemon=True).start()
    try:
        cfg = config(tmp_path, [{"name": "held", "kind": "rss",
                                 "url": f"http://127.0.0.1:{held.server_address[1]}/feed"}],
                     reports_dir=tmp_path / "out")
        command = [sys.executable, "-m", "provenance", "--config", str(cfg), "watch"]
        runs = [subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
                for _ in range(2)]
        deadline = time.monotonic() + 120
        while all(run.poll() is None for run in runs) and time.monotonic() < deadline:
            time.sleep(0.05)
        _HeldFeed.release.set()  # one run has given up: let the other one finish
        outputs = [run.communicate(timeout=120) for run in runs]
    finally:
        _HeldFeed.release.set()
        held.shutdown()
        held.server_close()
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 7], outputs
    winner = next(i for i, run in enumerate(runs) if run.returncode == 0)
    loser_err = outputs[1 - winner][1]
    found = re.search(r"another provenance watch is running \(pid (\d+|\?) since (\S+)\)",
                      loser_err)
    assert found, loser_err
    assert found.group(1) in (str(runs[winner].pid), "?")
    assert outputs[1 - winner][0] == ""
    assert "held: 2 seen, 2 new, 2 indexed" in outputs[winner][0]
    assert {v[:2] for v in items(env).values()} == {("indexed", 1)}
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 1


def test_a_stale_lock_file_does_not_block(cli, env, http_server, clips, tmp_path):
    link = publish(http_server, clips, "tears")
    (tmp_path / "list.txt").write_text(link + "\n")
    cfg = config(tmp_path, [{"name": "list", "kind": "urls", "path": "list.txt"}])
    lock = Path(env["PROVENANCE_DB"] + ".watch.lock")
    lock.parent.mkdir(parents=True)
    lock.write_text("4242 2020-01-01T00:00:00Z\n")  # left by a run that was killed
    run = cli("--config", str(cfg), "watch", "--reports-dir", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert lock.read_text().split()[0] != "4242"


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_webhook_gets_the_alert_and_a_dead_one_fails_nothing(cli, env, http_server, clips,
                                                              tmp_path):
    s = http_server
    original = page(s, clips, "flood", "bunny", "Alice Reporter", WHEN[0])
    repost = page(s, clips, "repost", "repost", "Mallory", WHEN[1],
                  title="Flood <!channel> @here @everyone")
    other = publish(s, clips, "repost2")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    try:
        cfg = config(tmp_path, [
            {"name": "live", "kind": "rss", "url": write_feed(s, "live.rss", rss([
                {"link": original, "guid": "1", "when": WHEN[0]},
                {"link": repost, "guid": "2", "when": WHEN[1]}])),
             "webhook": f"http://127.0.0.1:{receiver.server_address[1]}/hook"},
            {"name": "dead", "kind": "rss", "url": write_feed(s, "dead.rss", rss([
                {"link": other, "guid": "3", "when": WHEN[2]}]))}],
            webhook=f"http://127.0.0.1:{closed}/hook", reports_dir=tmp_path / "out")
        run = cli("--config", str(cfg), "watch")
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert run.returncode == 0, run.stderr
    assert "live: 2 seen, 2 new, 1 indexed, 1 matched, 0 failed" in run.stdout
    assert "dead: 1 seen, 1 new, 0 indexed, 1 matched, 0 failed" in run.stdout
    assert f"webhook http://127.0.0.1:{closed}/hook failed" in run.stderr
    assert items(env)[other][0] == "matched"
    assert len(_Receiver.bodies) == 1
    body = _Receiver.bodies[0]
    assert body["feed"] == "live" and body["item"]["url"] == repost
    assert Path(body["report"]).is_file() and body["report"] == items(env)[repost][3]
    assert [(m["url"], m["uploader"]) for m in body["matches"]] == [(original, "Alice Reporter")]
    assert "\n" not in body["text"] and original in body["text"]
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" in body["text"]
    # Mattermost and Discord ping on these words; a zero-width space disarms them.
    assert not re.search(r"@(here|everyone)", body["text"]) and "@\u200bhere" in body["text"]


def test_urls_file_and_ytdlp_kind(cli, env, http_server, clips, tmp_path):
    s = http_server
    # Undated: file order decides, not the keys' order ("z-flood" sorts last).
    original = page(s, clips, "z-flood", "bunny", "Alice Reporter", WHEN[0])
    repost = publish(s, clips, "repost")
    (tmp_path / "urls.txt").write_text(f"# watched by hand\n\n{original}\n{repost}\n")
    listed = publish(s, clips, "tears")
    # yt-dlp reads RSS 2.0 as a playlist: a stand-in for a channel URL.
    channel = write_feed(s, "channel.rss", rss([{"link": listed, "guid": "t", "when": WHEN[2]}]))
    cfg = config(tmp_path, [{"name": "hand", "kind": "urls", "path": "urls.txt"},
                            {"name": "channel", "kind": "ytdlp", "url": channel, "max_items": 5},
                            {"name": "gone", "kind": "ytdlp", "url": s.url("nope.rss")}])
    run = cli("--config", str(cfg), "watch", "--reports-dir", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("hand: 2 seen, 2 new, 1 indexed, 1 matched, 0 failed")
    assert lines[1].startswith("channel: 1 seen, 1 new, 1 indexed, 0 matched, 0 failed")
    assert lines[2].startswith("gone: listing failed (") and "404" in lines[2]
    assert items(env)[repost][0] == "matched"
    assert len(list((tmp_path / "out" / "hand").rglob("*.json"))) == 1


def test_dry_run_since_and_max_items(cli, env, http_server, clips, tmp_path):
    s = http_server
    links = [publish(s, clips, name) for name in ("tears", "friday", "basketball")]
    url = write_feed(s, "f.rss", rss([{"link": link, "guid": link, "when": WHEN[i]}
                                      for i, link in enumerate(links)]))
    cfg = config(tmp_path, [{"name": "f", "kind": "rss", "url": url}],
                 reports_dir=tmp_path / "out")

    dry = cli("--config", str(cfg), "watch", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "f: 3 seen, 3 new (dry run)",
        *(f"  new {WHEN[i]:<20} {link}" for i, link in enumerate(links))]
    assert not Path(env["PROVENANCE_DB"]).exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()

    capped = cli("--config", str(cfg), "watch", "--since", "2024-05-02", "--max-items", "1")
    assert capped.returncode == 0, capped.stderr
    assert capped.stdout.startswith("f: 3 seen, 3 new, 1 indexed, 0 matched, 0 failed, "
                                    "1 left for later runs (item cap), "
                                    "1 skipped (published before --since)")
    assert {u: v[:2] for u, v in items(env).items()} == {
        links[0]: ("pending", 0), links[1]: ("indexed", 1), links[2]: ("pending", 0)}
    dry_again = in_process(cfg, dry_run=True)
    assert dry_again.log_lines() == ["f: 3 seen, 0 new (dry run)"]


@pytest.mark.parametrize("text, problem", [
    ('[[feed]]\nname = "a"\nkind = "youtube"\nurl = "http://x/"\n',
     "feed 'a': kind must be one of ytdlp, rss, atom, urls"),
    ('[[feed]]\nname = "a"\nkind = "rss"\n', "feed 'a': url must be an http(s) URL"),
    ('[[feed]]\nname = "a"\nkind = "rss"\nurl = "file:///etc/passwd"\n',
     "feed 'a': url must be an http(s) URL"),
    ('[[feed]]\nname = "a"\nkind = "urls"\npath = "missing.txt"\n', "feed 'a': path "),
    ('[[feed]]\nname = "a"\nkind = "rss"\nurl = "http://x/"\nmax_items = 0\n',
     "feed 'a': max_items must be a whole number >= 1"),
    ('[[feed]]\nname = "a/../b"\nkind = "rss"\nurl = "http://x/"\n', "feed 'a/../b': name must"),
    ('[[feed]]\nname = "a"\nkind = "rss"\nurl = "http://x/"\n'
     '[[feed]]\nname = "a"\nkind = "atom"\nurl = "http://y/"\n',
     "feed 'a': the name is used twice"),
    ('[[feed]]\nname = "a"\nkind = "rss"\nurl = "http://x/"\nwebhok = "http://h/"\n',
     "feed 'a': unknown key 'webhok'"),
    ('[[feeds]]\nname = "a"\n', "unknown key 'feeds'"),
    ('webhook = "slack"\n[[feed]]\nname = "a"\nkind = "rss"\nurl = "http://x/"\n',
     "webhook: must be an http(s) URL"),
    ('[[feed]]\nname = "a"\nkind = "rss"\nurl = "http://x/"\n[settings]\nnope = 1\n',
     "unknown setting 'nope'"),
    ('[[feed]\nname = "a"\n', "config file"),
])
def test_bad_config_exits_3_with_a_clear_message(cli, tmp_path, text, problem):
    cfg = tmp_path / "feeds.toml"
    cfg.write_text(text)
    run = cli("--config", str(cfg), "watch")
    assert run.returncode == 3, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith(f"provenance: error: config file {cfg}")
    assert problem in run.stderr


def test_missing_config_and_unknown_feed_exit_3(cli, tmp_path):
    missing = cli("--config", str(tmp_path / "none.toml"), "watch")
    assert missing.returncode == 3 and "not found" in missing.stderr
    cfg = config(tmp_path, [{"name": "a", "kind": "rss", "url": "http://127.0.0.1:9/"}])
    unknown = cli("--config", str(cfg), "watch", "--feed", "b")
    assert unknown.returncode == 3 and "no feed named 'b' (feeds: a)" in unknown.stderr


def test_sample_config_is_valid(tmp_path):
    cfg = tmp_path / "feeds.toml"
    shutil.copy(SAMPLES / "feeds.toml", cfg)
    (tmp_path / "watchlist.txt").write_text("")
    loaded = feeds.load_watch_config(cfg)
    assert sorted(f.kind for f in loaded.feeds) == ["atom", "rss", "urls", "ytdlp"]
    assert loaded.reports_dir == Path("~/provenance/reports").expanduser()


def test_a_broken_index_exits_6(cli, env, tmp_path):
    Path(env["PROVENANCE_DB"]).parent.mkdir(parents=True)
    Path(env["PROVENANCE_DB"]).write_text("not a database, " * 100)
    (tmp_path / "list.txt").write_text("")
    cfg = config(tmp_path, [{"name": "list", "kind": "urls", "path": "list.txt"}])
    run = cli("--config", str(cfg), "watch")
    assert run.returncode == 6, run.stderr
    assert "corrupt or not a provenance index" in run.stderr


def test_an_item_the_run_ended_on_each_time_is_given_up_not_tried_first_forever(
        env, http_server, clips, tmp_path):
    s = http_server
    fatal, later = publish(s, clips, "tears"), publish(s, clips, "friday")
    cfg = config(tmp_path, [{"name": "wire", "kind": "rss", "url": write_feed(s, "w.rss", rss([
        {"link": fatal, "guid": "a", "when": WHEN[0]}]))}], reports_dir=tmp_path / "out")
    in_process(cfg)
    # As a run killed during the item's third attempt leaves it: tries counted, pending.
    with sqlite3.connect(env["PROVENANCE_DB"]) as db:
        db.execute("UPDATE feed_items SET status = 'pending', attempts = 3, video_id = NULL")
    write_feed(s, "w.rss", rss([{"link": fatal, "guid": "a", "when": WHEN[0]},
                                {"link": later, "guid": "b", "when": WHEN[1]}]))
    run = in_process(cfg)
    state = items(env)
    assert state[fatal][:2] == ("gave_up", 3) and "ended during each" in state[fatal][2]
    assert state[later][:2] == ("indexed", 1)
    assert [f.gave_up for f in run.feeds[0].failed] == [True]


def test_a_link_that_is_no_web_address_is_given_up_at_once(env, http_server, clips, tmp_path):
    s = http_server
    cfg = config(tmp_path, [{"name": "wire", "kind": "rss", "url": write_feed(s, "j.rss", rss([
        {"link": "javascript:alert(1)", "guid": "j", "when": WHEN[0]}]))}],
        reports_dir=tmp_path / "out")
    in_process(cfg)
    assert items(env)["javascript:alert(1)"][:2] == ("gave_up", 1)


def test_impossible_feed_dates_leave_entries_undated_and_the_feed_listed(
        env, http_server, clips, tmp_path):
    s = http_server
    old, future, good = (publish(s, clips, name) for name in ("tears", "friday", "flower"))
    text = rss([{"link": good, "guid": "g", "when": WHEN[0]}]).replace(
        "</channel>", f"<item><link>{old}</link><guid>o</guid>"
                      "<pubDate>Mon, 02 Jan 0202 10:00:00 GMT</pubDate></item></channel>")
    atom_text = atom([{"id": "urn:f", "link": future, "when": "9999-12-31T23:59:59-05:00"}])
    cfg = config(tmp_path, [{"name": "wire", "kind": "rss", "url": write_feed(s, "d.rss", text)},
                            {"name": "social", "kind": "atom",
                             "url": write_feed(s, "d.atom", atom_text)}],
                 reports_dir=tmp_path / "out")
    run = in_process(cfg)
    assert [f.error for f in run.feeds] == [None, None]
    with sqlite3.connect(env["PROVENANCE_DB"]) as db:
        published = dict(db.execute("SELECT url, published FROM feed_items"))
    assert published == {good: WHEN[0], old: None, future: None}


class _TrickledFeed(http.server.BaseHTTPRequestHandler):
    """A feed sent a byte every half second: each wait is short, the whole endless."""

    def do_GET(self) -> None:
        body = rss([{"link": "http://127.0.0.1:9/x.mp4", "guid": "x", "when": WHEN[0]}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def log_message(self, *args) -> None:
        pass


def test_a_feed_that_trickles_in_is_given_up_on_and_the_others_still_run(
        env, http_server, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("PROVENANCE_MAX_DOWNLOAD_SECONDS", "3")
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickledFeed)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    good = publish(http_server, clips, "tears")
    try:
        cfg = config(tmp_path, [
            {"name": "slow", "kind": "rss", "url": f"http://127.0.0.1:{slow.server_address[1]}/"},
            {"name": "wire", "kind": "rss", "url": write_feed(http_server, "g.rss", rss([
                {"link": good, "guid": "g", "when": WHEN[0]}]))}], reports_dir=tmp_path / "out")
        started = time.monotonic()
        run = in_process(cfg)
        assert time.monotonic() - started < 60
    finally:
        slow.shutdown()
        slow.server_close()
    assert "took over 3 s to arrive" in (run.feeds[0].error or ""), run.feeds[0].error
    assert items(env)[good][0] == "indexed"


def test_a_feed_is_read_to_its_newest_entries_and_an_empty_one_is_no_feed(
        env, http_server, tmp_path):
    # A first run on an archive of thousands of posts would hold the batch for days.
    s = http_server
    many = rss([{"link": s.url(f"v{i}.mp4"), "guid": f"g{i}", "when": WHEN[0]}
                for i in range(feeds.DEFAULT_LISTING + 10)])
    (s.root / "empty.rss").write_bytes(b"")
    cfg = config(tmp_path, [{"name": "archive", "kind": "rss", "url": write_feed(s, "a.rss", many)},
                            {"name": "empty", "kind": "rss", "url": s.url("empty.rss")}])
    run = in_process(cfg, dry_run=True)
    assert run.feeds[0].seen == feeds.DEFAULT_LISTING
    assert [item["url"] for item in run.feeds[0].new_items][-1] == s.url("v0.mp4")  # newest
    assert "not an RSS or Atom feed" in (run.feeds[1].error or ""), run.feeds[1].error
