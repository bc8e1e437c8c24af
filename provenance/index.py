"""Index stage: the SQLite store of videos, their sightings and keyframe hashes.

Contract: one ``Index`` per database file. A video is stored once per content
(SHA-256); every place it was seen (file path or URL, uploader, upload time)
is a *sighting*. Every multi-row write runs in one ``BEGIN IMMEDIATE``
transaction, so a killed process leaves either the whole video or nothing.
The database runs in WAL mode with a busy timeout, so a cron batch and a
journalist's check can share it. Keypoints (features) are stored beside the
hashes, a row per described frame. Hash words are unsigned 64-bit values stored
as SQLite's signed integers (two's complement) and read back losslessly.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from .errors import IndexDatabaseError
from .features import FEATURES_VERSION, FrameFeatures, from_blobs, to_blobs
from .fetch import FetchedMedia, SourceMetadata, UploadTime, now_utc, printable_path
from .keyframes import SAMPLING_VERSION

BUSY_TIMEOUT_S = 60.0

# Numbered migrations: position i brings the schema from version i to i+1.
# Never edit a released one; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE videos (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        size_bytes INTEGER NOT NULL,
        duration_s REAL,
        width INTEGER,
        height INTEGER,
        media_path TEXT,
        container_tags TEXT NOT NULL DEFAULT '{}',
        keyframe_count INTEGER NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE sightings (
        id INTEGER PRIMARY KEY,
        video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        url TEXT,
        extractor TEXT,
        platform_id TEXT,
        uploader TEXT,
        uploader_id TEXT,
        channel TEXT,
        title TEXT,
        description TEXT,
        duration_s REAL,
        upload_time TEXT,
        upload_time_precision TEXT NOT NULL DEFAULT 'unknown'
            CHECK (upload_time_precision IN ('second', 'day', 'unknown')),
        upload_time_source TEXT NOT NULL DEFAULT 'none',
        retrieved_at TEXT NOT NULL,
        info_json_path TEXT,
        UNIQUE (video_id, source)
    );
    CREATE INDEX sightings_by_source ON sightings(source);
    CREATE TABLE frames (
        video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        t REAL NOT NULL,
        detail REAL NOT NULL,
        h0 INTEGER NOT NULL,
        h1 INTEGER,
        h2 INTEGER,
        h3 INTEGER,
        PRIMARY KEY (video_id, seq)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE feed_items (
        feed TEXT NOT NULL,
        item_key TEXT NOT NULL,
        url TEXT NOT NULL,
        published TEXT,
        first_seen_at TEXT NOT NULL,
        last_attempt_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'indexed', 'matched', 'failed', 'gave_up')),
        error TEXT,
        video_id INTEGER REFERENCES videos(id) ON DELETE SET NULL,
        report_path TEXT,
        PRIMARY KEY (feed, item_key)
    ) WITHOUT ROWID;
    CREATE TABLE feed_state (
        feed TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_run_at TEXT
    );
    """,
    # View 0 hashes the footage inside any padding; view 1, stored only when
    # padding was found, hashes the whole picture, so a copy whose padding
    # was judged differently still meets one of the two. (Views 2 and 3, their
    # centres, came later and need no change of schema: VIEW_CENTRE.)
    """
    ALTER TABLE frames ADD COLUMN view INTEGER NOT NULL DEFAULT 0;
    """,
    # Every change to the set of indexed frames, in order, so the on-disk search
    # structure (frame_search) can catch up by replaying what it has not seen.
    # AUTOINCREMENT: a generation is never reused, even after deletes.
    """
    CREATE TABLE frame_log (
        generation INTEGER PRIMARY KEY AUTOINCREMENT,
        video_id INTEGER NOT NULL,
        change TEXT NOT NULL CHECK (change IN ('add', 'remove'))
    );
    INSERT INTO frame_log (video_id, change) SELECT id, 'add' FROM videos ORDER BY id;
    INSERT INTO meta VALUES ('index_uuid', lower(hex(randomblob(16))));
    """,
    # The sampling (keyframes.SAMPLING_VERSION) each video's keyframes were taken
    # with; videos indexed before it was recorded were sampled under version 1.
    """
    ALTER TABLE videos ADD COLUMN sampling INTEGER NOT NULL DEFAULT 1;
    """,
    # A random token on each change, which the search structure records with the
    # generation it reflects: a .db restored from a backup gives the generations
    # after the backup to other changes, and the structure must see it is stale.
    # (Changes logged before this migration have none.)
    """
    ALTER TABLE frame_log ADD COLUMN token INTEGER;
    """,
    # Keypoints of about a frame a second (features.FrameFeatures), for copies no
    # whole-picture hash meets; videos indexed before have none (version 0)
    # until hashed again.
    """
    CREATE TABLE features (
        video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
        t REAL NOT NULL,
        points BLOB NOT NULL,
        descriptors BLOB NOT NULL,
        PRIMARY KEY (video_id, t)
    ) WITHOUT ROWID;
    ALTER TABLE videos ADD COLUMN features_version INTEGER NOT NULL DEFAULT 0;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def to_signed(word: int) -> int:
    return word - (1 << 64) if word >= (1 << 63) else word


def to_unsigned(word: int) -> int:
    return word + (1 << 64) if word < 0 else word


class ContentAlreadyIndexed(Exception):
    """Another writer stored the same file (same SHA-256) while this one was
    hashing it; nothing was written."""

    def __init__(self, video_id: int) -> None:
        super().__init__(f"already indexed as video #{video_id}")
        self.video_id = video_id


@dataclass(frozen=True)
class Sighting:
    id: int
    metadata: SourceMetadata


@dataclass(frozen=True)
class VideoRecord:
    id: int
    sha256: str
    size_bytes: int
    duration_s: float | None
    width: int | None
    height: int | None
    media_path: str | None
    container_tags: dict[str, str]
    keyframe_count: int
    added_at: str
    sampling: int  # the version of keyframe sampling (keyframes.SAMPLING_VERSION)
    sightings: list[Sighting] = field(default_factory=list)


# What each stored hash of a keyframe shows (frames.view): see views.index_views.
VIEW_FOOTAGE = 0  # the footage inside any padding
VIEW_WHOLE_PICTURE = 1  # the uncropped frame, stored only when padding was found
VIEW_CENTRE = 2  # the centre of the footage (views.CENTRE_SHARE), met by zoomed queries
VIEW_WHOLE_CENTRE = 3  # the centre of the uncropped frame, stored only when padding was found
VIEW_STRIP = 4  # the footage's centred full-height 9:16 part (views.reframings)
VIEW_BAND = 5  # the footage's centred full-width 16:9 part (views.reframings)
VIEW_WHOLE_STRIP = 6  # those of the uncropped frame, stored only when padding was found
VIEW_WHOLE_BAND = 7
STORED_VIEWS = (VIEW_FOOTAGE, VIEW_WHOLE_PICTURE, VIEW_CENTRE, VIEW_WHOLE_CENTRE, VIEW_STRIP,
                VIEW_BAND, VIEW_WHOLE_STRIP, VIEW_WHOLE_BAND)
CENTRE_VIEWS = (VIEW_CENTRE, VIEW_WHOLE_CENTRE)
REFRAMED_VIEWS = (VIEW_STRIP, VIEW_BAND, VIEW_WHOLE_STRIP, VIEW_WHOLE_BAND)  # one at least
# A video stored before any of these was kept lacks what queries now meet:
# crops, captions and logos meet the centre, platform crops the reframings.
_LATER_VIEWS_SQL = [",".join(map(str, group)) for group in (CENTRE_VIEWS, REFRAMED_VIEWS)]


@dataclass(frozen=True)
class FrameArrays:
    """Stored frame hashes, column-wise, for the matcher."""

    video_ids: np.ndarray  # int64
    times: np.ndarray  # float64 seconds since the video's first frame
    hashes: np.ndarray  # (n, words) uint64
    views: np.ndarray  # int8, VIEW_*


@contextlib.contextmanager
def _translated(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise IndexDatabaseError(_explain(path, exc, busy_timeout_s)) from exc


def _explain(path: Path, exc: sqlite3.Error, busy_timeout_s: float = BUSY_TIMEOUT_S) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"index {path} is corrupt or not a provenance index ({text})"
    if "locked" in text or "busy" in text:
        return f"index {path} is busy: another process held it for over {busy_timeout_s:g} s"
    if "readonly" in text or "read-only" in text or (
            "unable to open" in text and path.parent.is_dir()
            and not os.access(path.parent, os.W_OK)):
        # a WAL index on a read-only mount cannot even be opened (no -shm file)
        return f"index {path} is read-only: cannot write to it"
    if "unable to open" in text:
        return f"index {path} cannot be opened (missing folder or no permission)"
    if "full" in text or ("disk I/O error" in text and _free_bytes(path.parent) < 1 << 20):
        # with no byte free SQLite cannot create the -shm file: an I/O error, not FULL
        return f"index {path}: the disk is full; nothing was written"
    return f"index {path}: {text}"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


class Index:
    def __init__(self, path: Path, *, default_scheme: str = "phash-64-v1",
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        with _translated(self.path, busy_timeout_s):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise IndexDatabaseError(f"index {self.path}: cannot create its folder ({exc})") from exc
            self.db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self.db.close()
                raise self._newer(version)
            self._use_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(version, default_scheme)
            self.scheme = self._meta("hash_scheme")

    def _use_wal(self) -> None:
        """Switch a new database to WAL. The switch takes an exclusive lock that
        SQLite does not wait for: two processes opening a new index at once
        got "database is locked" in 47 of 300 tries. Retried for as long as any
        other lock is waited for."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with _translated(self.path, self.busy_timeout_s):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _newer(self, version: int) -> IndexDatabaseError:
        return IndexDatabaseError(
            f"index {self.path} has schema version {version}, newer than this "
            f"provenance understands ({SCHEMA_VERSION}); upgrade provenance")

    def _migrate(self, version: int, default_scheme: str) -> None:
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            # Re-read under the write lock: another process may have migrated,
            # perhaps a newer release past this one's schema.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise self._newer(version)
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                if number == 0:
                    db.execute("INSERT INTO meta VALUES ('hash_scheme', ?)", (default_scheme,))
                    db.execute("INSERT INTO meta VALUES ('created_at', ?)", (now_utc(),))
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _meta(self, key: str) -> str:
        with _translated(self.path, self.busy_timeout_s):
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise IndexDatabaseError(f"index {self.path} lacks its {key!r} setting")
        return row[0]

    # -- writes ---------------------------------------------------------------

    def video_id_for(self, sha256: str) -> int | None:
        with _translated(self.path, self.busy_timeout_s):
            row = self.db.execute("SELECT id FROM videos WHERE sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    def add_sighting(self, video_id: int, meta: SourceMetadata) -> bool:
        """Record one more place the video was seen; False if this source is known."""
        with self.transaction() as db:
            return self._insert_sighting(db, video_id, meta)

    def add_video(self, media: FetchedMedia, *, duration_s: float | None, width: int,
                  height: int, container_tags: dict[str, str], sampling: int,
                  times: list[float], details: list[float], hashes: np.ndarray,
                  views: Mapping[int, np.ndarray] | None = None,
                  features: Sequence[FrameFeatures] = ()) -> int:
        """Store a new video with its first sighting, all its frames and their
        keypoints (``features``), atomically;
        ContentAlreadyIndexed, and nothing written, if its file is indexed already.

        ``hashes`` are of the footage (VIEW_FOOTAGE); ``views``, of the other
        views stored (VIEW_* -> hashes; see views.index_views). One row per
        keyframe each, taken with keyframe sampling version ``sampling``.
        """
        rows = self._frame_rows(times, details, hashes, views or {})
        with self.transaction() as db:
            # Checked again under the write lock: hashing takes seconds, and two
            # runs may have been given the same file.
            known = db.execute("SELECT id FROM videos WHERE sha256 = ?", (media.sha256,)).fetchone()
            if known is not None:
                raise ContentAlreadyIndexed(known[0])
            cursor = db.execute(
                "INSERT INTO videos (sha256, size_bytes, duration_s, width, height, media_path,"
                " container_tags, keyframe_count, added_at, sampling, features_version)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (media.sha256, media.size_bytes, duration_s, width, height,
                 printable_path(media.path),
                 json.dumps(container_tags, ensure_ascii=False), len(times), now_utc(), sampling,
                 FEATURES_VERSION))
            video_id = cursor.lastrowid
            self._insert_frames(db, video_id, rows)
            self._insert_features(db, video_id, features)
            self._insert_sighting(db, video_id, media.metadata)
            _log_changes(db, video_id, "add")
        return video_id

    def replace_frames(self, video_id: int, sha256: str, *, sampling: int, times: list[float],
                       details: list[float], hashes: np.ndarray,
                       views: Mapping[int, np.ndarray] | None = None,
                       features: Sequence[FrameFeatures] = ()) -> bool:
        """Store a video's keyframes anew (taken again from its file by a newer
        sampling or version of the views), atomically; its sightings stay. False if the index
        no longer holds that file under that id (removed meanwhile, and the id
        perhaps given to another video)."""
        rows = self._frame_rows(times, details, hashes, views or {})
        with self.transaction() as db:
            if db.execute("UPDATE videos SET keyframe_count = ?, sampling = ?,"
                          " features_version = ? WHERE id = ? AND sha256 = ?",
                          (len(times), sampling, FEATURES_VERSION, video_id,
                           sha256)).rowcount != 1:
                return False
            db.execute("DELETE FROM frames WHERE video_id = ?", (video_id,))
            db.execute("DELETE FROM features WHERE video_id = ?", (video_id,))
            self._insert_frames(db, video_id, rows)
            self._insert_features(db, video_id, features)
            # The search structure drops the old rows and takes the new ones.
            _log_changes(db, video_id, "remove", "add")
        return True

    @staticmethod
    def _insert_frames(db: sqlite3.Connection, video_id: int, rows: list[tuple]) -> None:
        db.executemany("INSERT INTO frames (video_id, seq, t, detail, h0, h1, h2, h3, view)"
                       " VALUES (?,?,?,?,?,?,?,?,?)", ((video_id, *row) for row in rows))

    @staticmethod
    def _insert_features(db: sqlite3.Connection, video_id: int,
                         features: Sequence[FrameFeatures]) -> None:
        db.executemany("INSERT INTO features (video_id, t, points, descriptors) VALUES (?,?,?,?)",
                       ((video_id, f.t, *to_blobs(f)) for f in features))

    def videos_to_rehash(self, video_id: int | None = None) -> list[int]:
        """Videos indexed before the centre or the reframings of each keyframe were
        stored (crops, captions, logos and platform crops are found against them
        only once hashed again) or sampled under an older version than
        SAMPLING_VERSION; given ``video_id``, that one if so."""
        only = "" if video_id is None else " AND id = ?"
        lacking = " OR ".join(f"NOT EXISTS (SELECT 1 FROM frames WHERE frames.video_id ="
                              f" videos.id AND view IN ({group}))" for group in _LATER_VIEWS_SQL)
        with _translated(self.path, self.busy_timeout_s):
            return [row[0] for row in self.db.execute(
                f"SELECT id FROM videos WHERE (sampling < ? OR features_version < ? OR {lacking})"
                f"{only} ORDER BY id",
                (SAMPLING_VERSION, FEATURES_VERSION) + (() if video_id is None else (video_id,)))]

    def _frame_rows(self, times: list[float], details: list[float], hashes: np.ndarray,
                    views: Mapping[int, np.ndarray]) -> list[tuple]:
        """(seq, t, detail, h0..h3, view) for every stored hash of a video's keyframes."""
        if hashes.ndim != 2 or len(hashes) != len(times) or len(times) != len(details):
            raise ValueError("times, details and hashes must have one row per keyframe")
        unknown = set(views) - (set(STORED_VIEWS) - {VIEW_FOOTAGE})
        if unknown:
            raise ValueError(f"not a view stored besides the footage: {sorted(unknown)}")
        views = [(VIEW_FOOTAGE, hashes)] + sorted(views.items(), key=lambda item: item[0])
        words_per_hash = int(self.scheme.split("-")[1]) // 64
        rows = []
        for view, view_hashes in views:
            if len(view_hashes) != len(times):
                raise ValueError("every view needs one hash per keyframe")
            # A wider hash would otherwise lose its extra words without a sound.
            if view_hashes.ndim != 2 or view_hashes.shape[1] != words_per_hash:
                raise ValueError(f"this index holds {self.scheme} hashes of {words_per_hash} "
                                 f"64-bit words, not {view_hashes.shape[1:]}")
            for t, d, row in zip(times, details, view_hashes):
                words = [to_signed(int(w)) for w in row] + [None] * (4 - len(row))
                rows.append((len(rows), t, d, *words, view))
        return rows

    @staticmethod
    def _insert_sighting(db: sqlite3.Connection, video_id: int, m: SourceMetadata) -> bool:
        cursor = db.execute(
            "INSERT INTO sightings (video_id, source, url, extractor, platform_id,"
            " uploader, uploader_id, channel, title, description, duration_s, upload_time,"
            " upload_time_precision, upload_time_source, retrieved_at, info_json_path)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            # Only a repeat of (video, source) is a no-op; OR IGNORE would also
            # swallow NOT NULL and CHECK violations.
            " ON CONFLICT (video_id, source) DO NOTHING",
            (video_id, m.source, m.url, m.extractor, m.platform_id, m.uploader, m.uploader_id,
             m.channel, m.title, m.description, m.duration_s, m.upload_time.value,
             m.upload_time.precision, m.upload_time.source, m.retrieved_at, m.info_json_path))
        return cursor.rowcount == 1

    def remove(self, video_id: int) -> bool:
        with self.transaction() as db:
            if db.execute("DELETE FROM videos WHERE id = ?", (video_id,)).rowcount != 1:
                return False
            _log_changes(db, video_id, "remove")
            return True

    # -- reads ----------------------------------------------------------------

    def video(self, video_id: int) -> VideoRecord | None:
        found = self._videos("WHERE id = ?", (video_id,))
        return found[0] if found else None

    def videos(self) -> list[VideoRecord]:
        return self._videos("", ())

    def _videos(self, where: str, args: tuple) -> list[VideoRecord]:
        with _translated(self.path, self.busy_timeout_s):
            rows = self.db.execute(
                "SELECT id, sha256, size_bytes, duration_s, width, height, media_path,"
                " container_tags, keyframe_count, added_at, sampling"
                f" FROM videos {where} ORDER BY id",
                args).fetchall()
            records = []
            for row in rows:
                sightings = self.db.execute(
                    "SELECT id, source, url, extractor, platform_id, uploader, uploader_id,"
                    " channel, title, description, duration_s, upload_time,"
                    " upload_time_precision, upload_time_source, retrieved_at, info_json_path"
                    " FROM sightings WHERE video_id = ? ORDER BY id", (row[0],)).fetchall()
                records.append(VideoRecord(*row[:7], json.loads(row[7]), *row[8:],
                                           sightings=[_sighting(s) for s in sightings]))
        return records

    def durations(self, video_ids: list[int]) -> dict[int, float | None]:
        """Each video's duration; where its container stated none, the time of its
        last keyframe (a segment is clamped to it, a coverage taken of it)."""
        with _translated(self.path, self.busy_timeout_s):
            return {vid: duration for where, args in _id_chunks("id", video_ids)
                    for vid, duration in self.db.execute(
                        "SELECT id, coalesce(nullif(duration_s, 0), (SELECT max(t) FROM frames"
                        f" WHERE frames.video_id = videos.id)) FROM videos {where}",
                        args).fetchall()}

    # -- the change log the search structure replays ----------------------------

    @property
    def uuid(self) -> str:
        return self._meta("index_uuid")

    def generation(self) -> int:
        """The latest change to the indexed frames; 0 for an empty log."""
        with _translated(self.path, self.busy_timeout_s):
            return self.db.execute("SELECT coalesce(max(generation), 0) FROM frame_log").fetchone()[0]

    def log_head(self) -> tuple[int, int | None]:
        """The latest change's generation (0 for an empty log) and token."""
        with _translated(self.path, self.busy_timeout_s):
            row = self.db.execute(
                "SELECT generation, token FROM frame_log ORDER BY generation DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, None)

    def log_token(self, generation: int) -> int | None:
        """The token of the change at ``generation``; None for none (or one logged
        before changes had tokens)."""
        with _translated(self.path, self.busy_timeout_s):
            row = self.db.execute("SELECT token FROM frame_log WHERE generation = ?",
                                  (generation,)).fetchone()
        return row[0] if row else None

    def changes_since(self, generation: int) -> list[tuple[int, int, str]]:
        """(generation, video_id, 'add'|'remove') after ``generation``, oldest first."""
        with _translated(self.path, self.busy_timeout_s):
            return self.db.execute(
                "SELECT generation, video_id, change FROM frame_log WHERE generation > ?"
                " ORDER BY generation", (generation,)).fetchall()

    def frames_of_videos(self, video_ids: list[int]) -> FrameArrays:
        """Every stored hash (all views) of these videos, for the search structure."""
        parts = [self._frames(where, args) for where, args in _id_chunks("video_id", video_ids)]
        if not parts:
            return self._frames("WHERE 0", ())
        return FrameArrays(*(np.concatenate([getattr(p, column) for p in parts])
                             for column in ("video_ids", "times", "hashes", "views")))

    def frames_of(self, video_id: int) -> FrameArrays:
        """The video's keyframes as stored for search (view 0, the footage)."""
        return self._frames("WHERE video_id = ? AND view = 0", (video_id,))

    def frame_arrays(self) -> FrameArrays:
        return self._frames("", ())

    def _frames(self, where: str, args: tuple) -> FrameArrays:
        words = int(self.scheme.split("-")[1]) // 64
        columns = ", ".join(f"h{i}" for i in range(words))
        with _translated(self.path, self.busy_timeout_s):
            rows = self.db.execute(
                f"SELECT video_id, t, view, {columns} FROM frames {where}"
                " ORDER BY video_id, seq", args).fetchall()
        if not rows:
            return FrameArrays(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, words), np.uint64),
                               np.zeros(0, np.int8))
        hashes = np.array([row[3:] for row in rows], dtype=np.int64).view(np.uint64)
        return FrameArrays(np.array([row[0] for row in rows], dtype=np.int64),
                           np.array([row[1] for row in rows], dtype=np.float64), hashes,
                           np.array([row[2] for row in rows], dtype=np.int8))

    def features(self) -> Iterator[tuple[int, FrameFeatures]]:
        """(video id, keypoints of one frame) of every described frame, in video
        and time order."""
        with _translated(self.path, self.busy_timeout_s):
            rows = self.db.execute("SELECT video_id, t, points, descriptors FROM features"
                                   " ORDER BY video_id, t").fetchall()
        for video_id, t, points, descriptors in rows:
            yield video_id, from_blobs(t, points, descriptors)

    def summary(self) -> dict[str, int]:
        """Videos and keyframes, as every report states them: two cheap reads, where
        a count of the frames table reads every row (1 s at 10 M frames)."""
        with _translated(self.path, self.busy_timeout_s):
            videos, keyframes = self.db.execute(
                "SELECT count(*), coalesce(sum(keyframe_count), 0) FROM videos").fetchone()
        return {"videos": videos, "keyframes": keyframes}

    def stats(self) -> dict[str, object]:
        with _translated(self.path, self.busy_timeout_s):
            one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
            return {
                "path": str(self.path),
                "schema_version": SCHEMA_VERSION,
                "hash_scheme": self.scheme,
                "videos": one("SELECT count(*) FROM videos"),
                "sightings": one("SELECT count(*) FROM sightings"),
                "keyframes": one("SELECT count(*) FROM frames WHERE view = 0"),
                "hashes": one("SELECT count(*) FROM frames"),
                "to_rehash": len(self.videos_to_rehash()),
                "indexed_seconds": round(one("SELECT coalesce(sum(duration_s), 0) FROM videos"), 1),
                # The write-ahead log holds recent writes until a checkpoint.
                "size_bytes": sum(p.stat().st_size for p in (
                    self.path, self.path.with_name(self.path.name + "-wal")) if p.exists()),
            }

    def integrity_ok(self) -> bool:
        with _translated(self.path, self.busy_timeout_s):
            return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _log_changes(db: sqlite3.Connection, video_id: int, *changes: str) -> None:
    """Log changes to a video's frames for the search structure, each with a random
    token (SQLite's random()) that tells this history from a restored backup's."""
    db.executemany("INSERT INTO frame_log (video_id, change, token) VALUES (?, ?, random())",
                   [(video_id, change) for change in changes])


def _id_chunks(column: str, video_ids: list[int],
               size: int = 500) -> Iterator[tuple[str, tuple[int, ...]]]:
    """WHERE clauses on ``column`` over ``video_ids``, a few hundred at a time
    (SQLite caps the number of bound parameters)."""
    for start in range(0, len(video_ids), size):
        chunk = tuple(int(v) for v in video_ids[start:start + size])
        yield f"WHERE {column} IN ({','.join('?' * len(chunk))})", chunk


def _sighting(row: tuple) -> Sighting:
    (sid, source, url, extractor, platform_id, uploader, uploader_id, channel, title,
     description, duration_s, upload_time, precision, time_source, retrieved_at, info_json) = row
    meta = SourceMetadata(
        source=source, retrieved_at=retrieved_at, url=url, extractor=extractor,
        platform_id=platform_id, uploader=uploader, uploader_id=uploader_id, channel=channel,
        title=title, description=description, duration_s=duration_s,
        upload_time=UploadTime(upload_time, precision, time_source), info_json_path=info_json)
    return Sighting(sid, meta)
