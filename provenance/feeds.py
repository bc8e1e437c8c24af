"""``provenance watch``: the cron batch that keeps the index growing and flags reposts.

A run takes an exclusive lock next to the index, lists every feed, records the
entries it has not seen in ``feed_items``, then fetches, checks and indexes the
queued items oldest first across all feeds, so a repost is checked against the
upload it copies whichever feed carried either. An item that shares footage
with earlier ones gets a report under ``<reports>/<feed>/<date>/`` and an
optional webhook alert. One item's failure never stops the batch: the item is
retried on later runs, ``MAX_ATTEMPTS`` in all. Every run (except a dry run)
leaves a summary in ``<reports>/runs/``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import itertools
import json
import logging
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import pipeline
from .config import Settings
from .errors import BadInputError, IndexDatabaseError, LockedError, ProvenanceError
from .feeds_sources import (DEFAULT_LISTING, FeedConfig, Listing, WatchConfig, alert_body,
                            is_http_url, list_feed, load_watch_config, post_webhook)
from .fetch import FetchedMedia, UploadTime, fetch, now_utc
from .hashing import hash_video, hasher_for
from .index import Index
from .report import Report, build_report, clean, to_json

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@dataclass
class ItemFailure:
    url: str
    error: str
    attempts: int
    gave_up: bool


@dataclass
class FeedResult:
    name: str
    kind: str
    seen: int = 0  # entries the feed listed this run
    new: int = 0  # of those, never seen before
    indexed: int = 0
    matched: int = 0
    failed: list[ItemFailure] = field(default_factory=list)
    skipped: int = 0  # queued, but published before --since
    deferred: int = 0  # queued, but over the item cap: left for the next run
    not_modified: bool = False
    error: str | None = None  # the listing failed; retries queued earlier still ran
    reports: list[str] = field(default_factory=list)
    new_items: list[dict[str, str | None]] = field(default_factory=list)  # dry run only
    duration_s: float = 0.0

    def line(self, dry_run: bool = False) -> str:
        if self.error:
            parts = [f"listing failed ({clean(self.error, 200)})"]
        else:
            parts = ["not modified" if self.not_modified else f"{self.seen} seen"]
        parts.append(f"{self.new} new")
        if not dry_run:
            parts += [f"{self.indexed} indexed", f"{self.matched} matched"]
            reasons = "; ".join(clean(f.error, 160) + (" (gave up)" if f.gave_up else "")
                                for f in self.failed[:3])
            more = f"; {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
            parts.append(f"{len(self.failed)} failed [{reasons}{more}]" if self.failed
                         else "0 failed")
        if self.deferred:
            parts.append(f"{self.deferred} left for later runs (item cap)")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (published before --since)")
        suffix = "dry run" if dry_run else f"{self.duration_s:.1f} s"
        return f"{self.name}: {', '.join(parts)} ({suffix})"


@dataclass
class RunSummary:
    started_at: str
    dry_run: bool = False
    feeds: list[FeedResult] = field(default_factory=list)
    finished_at: str | None = None
    duration_s: float = 0.0
    aborted: str | None = None  # why the run stopped early (a broken index, Ctrl-C)
    run_report: str | None = None  # where this summary was written

    def total(self, name: str) -> int:
        return sum(len(v) if isinstance(v := getattr(f, name), list) else v for f in self.feeds)

    def log_lines(self) -> list[str]:
        lines = []
        for result in self.feeds:
            lines.append(result.line(self.dry_run))
            lines += [f"  new {item['published'] or 'undated':<20} {clean(item['url'], 200)}"
                      for item in result.new_items]
        return lines

    def to_dict(self) -> dict[str, Any]:
        totals = {name: self.total(name) for name in
                  ("seen", "new", "indexed", "matched", "failed", "skipped", "deferred")}
        return {**dataclasses.asdict(self), "totals": totals}


@dataclass(frozen=True)
class QueuedItem:
    feed: FeedConfig
    key: str
    url: str
    published: str | None
    attempts: int
    first_seen_at: str
    position: int = 0  # in this run's listing, oldest first: orders undated items

    @property
    def order(self) -> tuple[str, str, int]:
        return (self.published or self.first_seen_at, self.first_seen_at, self.position)


def safe_id(item_key: str) -> str:
    """A report file name that no title, uploader or URL can steer."""
    return hashlib.sha256(item_key.encode("utf-8")).hexdigest()[:16]


def watch(settings: Settings, config_path: Path | None, *, feed_names: list[str] | tuple = (),
          dry_run: bool = False, since: date | None = None, max_items: int | None = None,
          reports_dir: Path | None = None, verbose: bool = False) -> RunSummary:
    restore = _verbose_logging() if verbose else None
    try:
        config = load_watch_config(config_path)
        feeds = config.select(list(feed_names))
        if dry_run:
            return _dry_run(feeds, settings, since, max_items)
        reports = Path(reports_dir or config.reports_dir or "reports")
        with run_lock(settings.db_path), pipeline.default_index(settings) as index:
            summary = _Run(config, settings, index, reports, since, max_items).run(feeds)
            # Indexed now, so the next journalist's check need not catch up.
            pipeline.refresh_search(index)
            return summary
    finally:
        if restore:
            restore()


@contextlib.contextmanager
def run_lock(db_path: Path) -> Iterator[Path]:
    """One watch at a time per index. flock dies with its process: no stale locks."""
    path = Path(f"{db_path}.watch.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise IndexDatabaseError(f"cannot create the watch lock {path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # The holder may not have written its line yet: say so rather than guess.
            pid, since = (os.pread(fd, 200, 0).decode("utf-8", "replace").split() + ["?", "?"])[:2]
            raise LockedError(f"another provenance watch is running (pid {pid} since {since}); "
                              f"lock file {path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {now_utc()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


def _list(feed: FeedConfig, settings: Settings, result: FeedResult, cap: int | None,
          **validators: str | None) -> Listing | None:
    try:
        return list_feed(feed, settings, limit=max(cap or 0, DEFAULT_LISTING), **validators)
    except ProvenanceError as exc:
        result.error = str(exc)
        log.warning("%s: %s", feed.name, clean(exc, 300))
    except Exception as exc:  # an odd feed must not stop the other feeds
        result.error = f"{type(exc).__name__}: {exc}"
        log.error("%s: listing failed unexpectedly", feed.name, exc_info=True)
    return None


def _before(published: str | None, since: date | None) -> bool:
    # Undated items are kept: nothing says they are old.
    return bool(since and published and published[:10] < since.isoformat())


class _Run:
    def __init__(self, config: WatchConfig, settings: Settings, index: Index, reports: Path,
                 since: date | None, max_items: int | None) -> None:
        self.config, self.settings, self.index, self.reports = config, settings, index, reports
        self.since, self.max_items = since, max_items
        self.summary = RunSummary(now_utc())
        self.dead_webhooks: set[str] = set()

    def run(self, feeds: list[FeedConfig]) -> RunSummary:
        clock = time.monotonic()
        results = {feed.name: FeedResult(feed.name, feed.kind) for feed in feeds}
        self.summary.feeds = list(results.values())
        try:
            queue = [item for feed in feeds for item in self._refresh(feed, results[feed.name])]
            for item in sorted(queue, key=lambda q: q.order):
                self._attempt(item, results[item.feed.name])
        except BaseException as exc:  # a broken index or Ctrl-C: stop, but keep the record
            self.summary.aborted = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.summary.finished_at = now_utc()
            self.summary.duration_s = round(time.monotonic() - clock, 3)
            self._write_summary()
        return self.summary

    def _refresh(self, feed: FeedConfig, result: FeedResult) -> list[QueuedItem]:
        """List the feed, record unseen entries, return what to attempt this run."""
        clock = time.monotonic()
        with self.index.transaction() as db:
            state = db.execute("SELECT etag, last_modified FROM feed_state WHERE feed = ?",
                               (feed.name,)).fetchone() or (None, None)
        cap = self.max_items or feed.max_items
        listing = _list(feed, self.settings, result, cap, etag=state[0], last_modified=state[1])
        now = now_utc()
        with self.index.transaction() as db:
            if listing is not None:
                result.seen, result.not_modified = len(listing.entries), listing.not_modified
                for e in listing.entries:
                    result.new += db.execute(
                        "INSERT INTO feed_items (feed, item_key, url, published, first_seen_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (feed, item_key) DO NOTHING",
                        (feed.name, e.key, e.url, e.published, now)).rowcount
                state = (listing.etag, listing.last_modified)
            db.execute("INSERT INTO feed_state VALUES (?, ?, ?, ?) ON CONFLICT (feed) DO UPDATE"
                       " SET etag = excluded.etag, last_modified = excluded.last_modified,"
                       " last_run_at = excluded.last_run_at", (feed.name, *state, now))
            rows = db.execute(
                "SELECT item_key, url, published, attempts, first_seen_at FROM feed_items"
                " WHERE feed = ? AND status IN ('pending', 'failed')"
                " ORDER BY coalesce(published, first_seen_at), first_seen_at",
                (feed.name,)).fetchall()
        position = {e.key: i for i, e in enumerate(listing.entries if listing else [])}
        queue: list[QueuedItem] = []
        fresh = 0
        for row in rows:
            item = QueuedItem(feed, *row, position=position.get(row[0], -1))
            if item.attempts >= MAX_ATTEMPTS:
                # Its tries are counted before each one: the process ended during
                # the last (killed, out of memory, a cron timeout). Left queued,
                # it would be tried first on every run, and end every run.
                self._fail(item, result, item.attempts, "the run ended during each of its "
                           f"{item.attempts} attempts (killed, out of memory or timed out)")
                continue
            if _before(item.published, self.since):
                result.skipped += 1
            elif item.attempts == 0 and cap is not None and fresh >= cap:
                result.deferred += 1  # the cap bounds new work; retries always get their turn
            else:
                fresh += item.attempts == 0
                queue.append(item)
        log.info("%s: %s entries listed, %d new, %d to attempt", feed.name,
                 "no" if listing is None else len(listing.entries), result.new, len(queue))
        result.duration_s += time.monotonic() - clock
        return queue

    def _attempt(self, item: QueuedItem, result: FeedResult) -> None:
        clock = time.monotonic()
        attempts = item.attempts + 1
        # Counted before the work, so an item that kills the process still runs out of tries.
        self._update(item, attempts=attempts, last_attempt_at=now_utc())
        try:
            status, video_id, report, path = self._process(item)
        except IndexDatabaseError:
            raise  # the index itself is broken: every further item would fail too
        except ProvenanceError as exc:
            # A link that is no http(s) URL never will be: no use trying it again.
            self._fail(item, result, MAX_ATTEMPTS if not is_http_url(item.url) else attempts,
                       f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug or a surprise from a library: record it, go on
            log.error("%s: %s: unexpected error", item.feed.name, clean(item.url, 200),
                      exc_info=True)
            self._fail(item, result, attempts, f"unexpected {type(exc).__name__}: {exc}")
        else:
            self._update(item, status=status, error=None, video_id=video_id,
                         report_path=str(path) if path else None)
            setattr(result, status, getattr(result, status) + 1)
            log.info("%s: %s %s (video #%s)", item.feed.name, status, clean(item.url, 200),
                     video_id)
            if report is not None and path is not None:
                result.reports.append(str(path))
                self._alert(item, report, path)
        finally:
            result.duration_s += time.monotonic() - clock

    def _fail(self, item: QueuedItem, result: FeedResult, attempts: int, error: str) -> None:
        gave_up = attempts >= MAX_ATTEMPTS
        self._update(item, status="gave_up" if gave_up else "failed", error=error[:2000])
        result.failed.append(ItemFailure(item.url, clean(error, 500), attempts, gave_up))
        log.info("%s: %s %s: %s", item.feed.name, "gave up on" if gave_up else "failed",
                 clean(item.url, 200), clean(error, 300))

    def _process(self, item: QueuedItem) -> tuple[str, int, Report | None, Path | None]:
        if not is_http_url(item.url):  # a feed must not make us read local files
            raise BadInputError(f"{item.url}: not an http(s) URL")
        # A retry downloads afresh: the cached copy may be the broken one.
        media = with_feed_time(fetch(item.url, self.settings, refresh=item.attempts > 0), item)
        known = self.index.video_id_for(media.sha256)
        if known is not None and self._seen_at(known, media.metadata.source):
            # Indexed from this very URL already (a run killed mid-item, another
            # feed, a manual add): checking would only find the item itself.
            return "indexed", known, None, None
        hashed = hash_video(media, self.settings, hasher_for(self.index.scheme))
        matches = pipeline.match_hashed(hashed, self.index, self.settings)
        report = build_report(hashed, matches, self.index, self.settings)
        # The report goes first: if indexing then fails, the retry rewrites it.
        path = self._write_report(item, report) if report.matches else None
        video_id = pipeline.add_fetched(media, hashed, self.index, self.settings).video_id
        return ("matched" if path else "indexed"), video_id, report, path

    def _seen_at(self, video_id: int, source: str) -> bool:
        record = self.index.video(video_id)
        return bool(record) and any(s.metadata.source == source for s in record.sightings)

    def _update(self, item: QueuedItem, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.index.transaction() as db:
            db.execute(f"UPDATE feed_items SET {assignments} WHERE feed = ? AND item_key = ?",
                       (*columns.values(), item.feed.name, item.key))

    def _write_report(self, item: QueuedItem, report: Report) -> Path:
        folder = self.reports / item.feed.name / datetime.now(timezone.utc).date().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        path = (folder / f"{safe_id(item.key)}.json").absolute()
        partial = path.with_name(path.name + ".partial")
        partial.write_text(to_json(report), encoding="utf-8")
        os.replace(partial, path)
        return path

    def _alert(self, item: QueuedItem, report: Report, path: Path) -> None:
        target = item.feed.webhook or self.config.webhook
        if not target:
            return
        if target in self.dead_webhooks:  # don't stall the batch on a webhook that is down
            log.warning("webhook %s failed earlier in this run; no alert for %s (report %s)",
                        clean(target), clean(item.url), path)
        elif not post_webhook(target, alert_body(item.feed.name, item.url, report, path)):
            self.dead_webhooks.add(target)

    def _write_summary(self) -> None:
        folder = self.reports / "runs"
        stamp = self.summary.started_at.replace("-", "").replace(":", "")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for n in itertools.count(1):  # two runs in the same second get two files
                path = (folder / (f"{stamp}.json" if n == 1 else f"{stamp}-{n}.json")).absolute()
                try:
                    handle = open(path, "x", encoding="utf-8")
                except FileExistsError:
                    continue
                self.summary.run_report = str(path)
                with handle:
                    json.dump(self.summary.to_dict(), handle, indent=1, ensure_ascii=False)
                return
        except OSError as exc:
            log.error("cannot write the run summary under %s: %s", folder, exc)


def with_feed_time(media: FetchedMedia, item: QueuedItem) -> FetchedMedia:
    """The feed's date for the sighting, when the platform gave no better one."""
    # "server" is a direct file's Last-Modified header: when the file was last
    # touched, not when anyone published it. The feed's own date beats it.
    if not item.published or media.metadata.upload_time.source not in ("none", "server"):
        return media
    precision = "second" if "T" in item.published else "day"
    metadata = dataclasses.replace(media.metadata,
                                   upload_time=UploadTime(item.published, precision, "feed"))
    return dataclasses.replace(media, metadata=metadata)


def _dry_run(feeds: list[FeedConfig], settings: Settings, since: date | None,
             max_items: int | None) -> RunSummary:
    summary = RunSummary(now_utc(), dry_run=True)
    known = _known_keys(Path(settings.db_path))
    for feed in feeds:
        result = FeedResult(feed.name, feed.kind)
        summary.feeds.append(result)
        cap = max_items or feed.max_items
        listing = _list(feed, settings, result, cap)  # no validators: show the whole feed
        if listing is None:
            continue
        result.seen = len(listing.entries)
        fresh = {e.key: e for e in listing.entries if (feed.name, e.key) not in known}
        result.new = len(fresh)
        for entry in sorted(fresh.values(), key=lambda e: e.published or "~"):
            if _before(entry.published, since):
                result.skipped += 1
            elif cap is not None and len(result.new_items) >= cap:
                result.deferred += 1
            else:
                result.new_items.append({"url": entry.url, "published": entry.published,
                                         "title": entry.title})
    summary.finished_at = now_utc()
    return summary


def _known_keys(db_path: Path) -> set[tuple[str, str]]:
    """Feed items already recorded, read without creating or changing the index."""
    if not db_path.is_file():
        return set()
    try:
        db = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            return set(db.execute("SELECT feed, item_key FROM feed_items").fetchall())
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # an index from before feeds existed
            return set()
        raise IndexDatabaseError(f"index {db_path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise IndexDatabaseError(f"index {db_path}: {exc}") from exc


def _verbose_logging():
    logger = logging.getLogger("provenance")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return restore
