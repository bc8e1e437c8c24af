"""The outside world of ``provenance watch``: its config, the feeds it lists and
the webhooks it alerts. The batch logic and its state live in ``feeds``.

Contract: ``load_watch_config(path)`` returns a validated ``WatchConfig`` or
raises ``BadInputError`` naming the file, the feed and the problem.
``list_feed(feed, settings, ...)`` returns the feed's current entries, oldest
first as far as the feed's order tells (or "not modified"), or raises
``FetchError``; it never downloads media.
``post_webhook(url, body)`` returns False instead of raising.
"""
from __future__ import annotations

import calendar
import datetime as dt
import http.client
import itertools
import json
import logging
import os
import re
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Settings, default_config_path
from .errors import BadInputError, FetchError
from .fetch import YtdlpLog
from .report import clean

if TYPE_CHECKING:
    from .report import Report

log = logging.getLogger(__name__)

KINDS = ("ytdlp", "rss", "atom", "urls")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".ts", ".3gp",
                    ".flv", ".mpg", ".mpeg", ".ogv", ".m3u8")
# A feed name becomes a folder under reports/; "runs" is where run summaries go.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FEED_KEYS = {"name", "kind", "url", "path", "max_items", "webhook"}
_TOP_KEYS = {"feed", "webhook", "reports_dir", "settings"}
# How far down a channel or playlist we look each run when no cap says more:
# enough to catch up after a day of missed runs, bounded so a channel with
# 10,000 uploads is one cheap request, not a crawl.
DEFAULT_LISTING = 50
MAX_FEED_BYTES = 20 * 1024**2
USER_AGENT = f"provenance/{__version__} (feed watcher)"
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_TRIES = 3
WEBHOOK_BACKOFF_S = 1.0


@dataclass(frozen=True)
class FeedConfig:
    name: str
    kind: str
    url: str | None = None
    path: Path | None = None  # for kind "urls"
    max_items: int | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class WatchConfig:
    path: Path
    feeds: list[FeedConfig]
    webhook: str | None = None
    reports_dir: Path | None = None

    def select(self, names: list[str]) -> list[FeedConfig]:
        known = {f.name: f for f in self.feeds}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadInputError(f"config file {self.path}: no feed named {unknown[0]!r} "
                                f"(feeds: {', '.join(known)})")
        return [f for f in self.feeds if not names or f.name in names]


@dataclass(frozen=True)
class Entry:
    key: str  # stable identity of the item within its feed
    url: str
    published: str | None = None  # ISO 8601 UTC, as the feed or platform states it
    title: str | None = None


@dataclass(frozen=True)
class Listing:
    entries: list[Entry] = field(default_factory=list)
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


def is_http_url(text: str) -> bool:
    parts = urllib.parse.urlsplit(text)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def looks_like_media(url: str) -> bool:
    return urllib.parse.urlsplit(url).path.lower().endswith(VIDEO_EXTENSIONS)


# -- config -------------------------------------------------------------------

def load_watch_config(config_path: Path | None) -> WatchConfig:
    path = Path(config_path or os.environ.get("PROVENANCE_CONFIG") or default_config_path())
    if not path.is_file():
        raise BadInputError(f"config file {path} not found (see samples/feeds.toml for an example)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"config file {path}: {exc}") from exc

    def bad(problem: str) -> BadInputError:
        return BadInputError(f"config file {path}: {problem}")

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:  # a typo like [[feeds]] would otherwise watch nothing, silently
        raise bad(f"unknown key {unknown[0]!r} (expected [[feed]] tables, webhook, reports_dir)")
    tables = data.get("feed")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise bad("no feeds: add at least one [[feed]] table (see samples/feeds.toml)")
    feeds = [_feed(table, i, path, bad) for i, table in enumerate(tables, 1)]
    names = [f.name for f in feeds]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise bad(f"feed {duplicate!r}: the name is used twice")
    webhook = _webhook(data.get("webhook"), lambda p: bad(f"webhook: {p}"))
    reports_dir = data.get("reports_dir")
    if reports_dir is not None:
        if not isinstance(reports_dir, str) or not reports_dir.strip():
            raise bad("reports_dir must be a folder path (a string)")
        reports_dir = _relative_to(path, reports_dir)
    return WatchConfig(path, feeds, webhook, reports_dir)


def _feed(table: dict[str, Any], number: int, path: Path, bad) -> FeedConfig:
    name = table.get("name")
    label = f"feed {name!r}" if isinstance(name, str) and name else f"feed #{number}"

    def problem(text: str) -> BadInputError:
        return bad(f"{label}: {text}")

    unknown = sorted(set(table) - _FEED_KEYS)
    if unknown:
        raise problem(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_FEED_KEYS))})")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == "runs":
        raise problem("name must be 1-64 letters, digits, '.', '_' or '-' (not 'runs'): "
                      "it names the feed's reports folder")
    kind = table.get("kind")
    if kind not in KINDS:
        raise problem(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    url, file = table.get("url"), None
    if kind == "urls":
        if url is not None or not isinstance(table.get("path"), str):
            raise problem("a 'urls' feed takes path = a text file of URLs, one per line")
        file = _relative_to(path, table["path"])
        if not file.is_file():
            raise problem(f"path {file} is not a file")
    else:
        if table.get("path") is not None:
            raise problem(f"a {kind!r} feed takes url, not path")
        if not isinstance(url, str) or not is_http_url(url):
            raise problem(f"url must be an http(s) URL, not {url!r}")
    max_items = table.get("max_items")
    if max_items is not None and (type(max_items) is not int or max_items < 1):
        raise problem(f"max_items must be a whole number >= 1, not {max_items!r}")
    webhook = _webhook(table.get("webhook"), lambda p: problem(f"webhook: {p}"))
    return FeedConfig(name, kind, url, file, max_items, webhook)


def _webhook(value: Any, problem) -> str | None:
    if value is not None and (not isinstance(value, str) or not is_http_url(value)):
        raise problem(f"must be an http(s) URL, not {value!r}")
    return value


def _relative_to(config: Path, value: str) -> Path:
    # Relative to the config file, not the working directory: cron runs in $HOME.
    target = Path(value).expanduser()
    return target if target.is_absolute() else config.parent / target


# -- listing --------------------------------------------------------------------

def list_feed(feed: FeedConfig, settings: Settings, *, etag: str | None = None,
              last_modified: str | None = None, limit: int = DEFAULT_LISTING) -> Listing:
    # Oldest first matters for undated entries: the earlier copy must be indexed
    # before the repost is checked. A URL list grows at the bottom.
    if feed.kind == "ytdlp":
        return Listing(_list_ytdlp(feed.url or "", settings, limit))
    if feed.kind == "urls":
        return Listing(_list_urls(feed.path or Path()))
    return _list_feedparser(feed.url or "", settings, etag, last_modified, limit)


def _list_ytdlp(url: str, settings: Settings, limit: int) -> list[Entry]:
    import yt_dlp
    from yt_dlp.utils import unsmuggle_url

    log = YtdlpLog()
    options = {
        "extract_flat": "in_playlist", "lazy_playlist": True, "playlist_items": f"1:{limit}",
        "socket_timeout": settings.socket_timeout_s, "retries": settings.retries,
        "extractor_retries": settings.retries, "quiet": True, "no_warnings": True,
        "noprogress": True, "logger": log,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
            if not info:
                raise FetchError(f"{url}: yt-dlp listed nothing")
            raw = info.get("entries") if info.get("_type") == "playlist" else [info]
            # Inside the try: a lazy listing fetches further pages while iterated.
            items = [item for item in itertools.islice(raw or [], limit) if item]
    except FetchError:
        raise
    except Exception as exc:  # DownloadError and whatever an extractor lets escape
        reason = log.errors[-1] if log.errors else f"{type(exc).__name__}: {exc}"
        raise FetchError(f"{url}: listing failed: {reason[:300]}") from exc
    entries = []
    for item in items:
        link = item.get("webpage_url") or item.get("url")
        if not isinstance(link, str):
            continue
        link = unsmuggle_url(link)[0]  # yt-dlp's RSS reader smuggles data into the URL
        extractor, video_id = item.get("ie_key") or item.get("extractor_key"), item.get("id")
        # Generic ids are file basenames and collide (FIELD-NOTES): key those by URL.
        generic = not (extractor and video_id) or extractor == "Generic"
        key = link if generic else f"{extractor}:{video_id}"
        entries.append(Entry(key, link, _published_from_info(item), item.get("title")))
    return entries[::-1]  # channels and playlists list the newest first


def _published_from_info(info: dict[str, Any]) -> str | None:
    for name in ("timestamp", "release_timestamp"):
        stamp = info.get(name)
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            try:  # NaN, infinity or past year 9999: no time at all
                return _iso(stamp)
            except (OverflowError, ValueError, OSError):
                continue
    date = info.get("upload_date") or info.get("release_date")
    if isinstance(date, str) and re.fullmatch(r"\d{8}", date):
        return f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return None


def _iso(stamp: float) -> str:
    """UTC, ISO 8601 to the second; ValueError for a time before 1970 or over a
    day ahead, which no real post has (a feed's typo would else sort first as
    the earliest sighting, or last)."""
    when = dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
    if stamp < 0 or when > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1):
        raise ValueError(f"implausible date {when.isoformat()}")
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _list_urls(path: Path) -> list[Entry]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FetchError(f"{path}: cannot read the URL list ({exc})") from exc
    urls = [line.strip() for line in lines]
    return [Entry(u, u) for u in dict.fromkeys(u for u in urls if u and not u.startswith("#"))]


def _list_feedparser(url: str, settings: Settings, etag: str | None,
                     last_modified: str | None, limit: int = DEFAULT_LISTING) -> Listing:
    import feedparser

    request = urllib.request.Request(url, headers={
        "User-Agent": USER_AGENT,
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"})
    if etag:
        request.add_header("If-None-Match", etag)
    if last_modified:
        request.add_header("If-Modified-Since", last_modified)
    try:
        # Our own request, not feedparser's: feedparser has no timeout.
        with urllib.request.urlopen(request, timeout=settings.socket_timeout_s) as response:
            body = _read_within(response, url, settings.max_download_seconds)
            headers = {k.lower(): v for k, v in response.headers.items()}
            final_url = response.geturl()
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Listing(not_modified=True, etag=etag, last_modified=last_modified)
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    if len(body) > MAX_FEED_BYTES:
        raise FetchError(f"{url}: feed larger than {MAX_FEED_BYTES} bytes")
    # content-location makes feedparser resolve relative links against the feed.
    parsed = feedparser.parse(body, response_headers={**headers, "content-location": final_url})
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no RSS or Atom entries"
        raise FetchError(f"{url}: not an RSS or Atom feed ({reason})")
    entries = [e for e in (_feed_entry(item) for item in parsed.entries) if e is not None]
    # The newest ``limit`` entries, oldest first: a first run on an archive of
    # 60,000 posts would else hold the batch for days. Feeds list the newest
    # first; by their dates when every entry has one, as some list the oldest first.
    if all(e.published for e in entries):
        entries = sorted(entries, key=lambda e: e.published or "", reverse=True)
    return Listing(entries[:limit][::-1], etag=headers.get("etag"),
                   last_modified=headers.get("last-modified"))


def _read_within(response: Any, url: str, seconds: float) -> bytes:
    """The body, up to MAX_FEED_BYTES + 1 bytes, within ``seconds`` in all: the
    socket timeout bounds each wait, and a server sending a byte at a time
    would otherwise hold the whole batch."""
    deadline = time.monotonic() + seconds
    chunks, size = [], 0
    while size <= MAX_FEED_BYTES:
        chunk = response.read1(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise FetchError(f"{url}: the feed took over {seconds:g} s to arrive")
    return b"".join(chunks)


def _feed_entry(item: Any) -> Entry | None:
    link = item.get("link")
    url = _media_url(item) or link
    if not url:
        return None
    stamp = item.get("published_parsed") or item.get("updated_parsed")
    try:  # past year 9999, before 1970 or in the future: undated, the feed still listed
        published = _iso(calendar.timegm(stamp)) if stamp else None
    except (OverflowError, ValueError, OSError):
        published = None
    return Entry(item.get("id") or link or url, url, published, item.get("title"))


def _media_url(item: Any) -> str | None:
    """A direct video file in the entry (enclosure, Media RSS, or a link to a .mp4)."""
    candidates = [(e.get("href"), e.get("type", "")) for e in item.get("enclosures", [])]
    candidates += [(m.get("url"), m.get("type") or m.get("medium", ""))
                   for m in item.get("media_content", [])]
    for href, kind in candidates:
        if href and (str(kind).startswith("video") or looks_like_media(href)):
            return href
    link = item.get("link")
    return link if link and looks_like_media(link) else None


# -- alerts ---------------------------------------------------------------------

def _slack(text: object, limit: int = 200) -> str:
    # Uploader-controlled text must not ping a channel (<!channel>, or @channel,
    # @here and @everyone where Mattermost and Discord read them) or forge links.
    text = clean(text, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"@(?=(channel|here|everyone|all)\b)", "@\u200b", text)


def alert_body(feed: str, url: str, report: "Report", path: Path) -> dict[str, Any]:
    matches = [{"video_id": m.video.id, "url": m.video.url or m.video.source,
                "uploader": m.video.uploader, "upload_time": m.video.upload_time.value,
                "score": round(m.score, 3), "relations": [r.kind for r in m.relations]}
               for m in report.matches]
    earliest = report.earliest_sighting.sighting if report.earliest_sighting else None
    first = "" if earliest is None else (
        f"; earliest: {_slack(earliest.uploader or 'unknown uploader', 80)} "
        f"{_slack(earliest.url or earliest.source)} "
        f"({_slack(earliest.upload_time.value or 'upload time unknown', 40)})")
    title = report.query.metadata.title
    text = (f"Possible repost in feed {_slack(feed, 64)}: {_slack(url)}"
            f"{' (' + _slack(title, 80) + ')' if title else ''} shares footage with "
            f"{len(matches)} earlier video(s){first}. Report: {_slack(path, 300)}")
    return {"text": text, "feed": feed,
            "item": {"url": url, "title": title,
                     "upload_time": report.query.metadata.upload_time.value},
            "report": str(path), "matches": matches}


def post_webhook(url: str, body: dict[str, Any]) -> bool:
    """POST the alert; False (and a log line) when it could not be delivered."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    reason = "?"
    for attempt in range(1, WEBHOOK_TRIES + 1):
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                response.read(65536)
            return True
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code not in (408, 429):
                break  # the receiver refuses this request: asking again cannot help
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", exc))
        if attempt < WEBHOOK_TRIES:
            time.sleep(WEBHOOK_BACKOFF_S * 2 ** (attempt - 1))
    log.warning("webhook %s failed (%s); the report is on disk at %s", clean(url),
                clean(reason), body.get("report"))
    return False
